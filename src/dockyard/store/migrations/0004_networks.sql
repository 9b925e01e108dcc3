-- Networks: the three predefined ones and the users'; spec is the store/codec JSON of NetworkSpec.
-- Endpoints are not here: a container's endpoints live in its own spec and state.
CREATE TABLE networks (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created     TEXT NOT NULL,
    spec        TEXT NOT NULL
);

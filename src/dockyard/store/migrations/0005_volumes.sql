-- Volumes of the local driver; spec is the store/codec JSON of model.volumes.Volume.
CREATE TABLE volumes (
    name        TEXT PRIMARY KEY,
    spec        TEXT NOT NULL
);

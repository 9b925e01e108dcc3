-- Images: the id is the sha256 of the config blob, which lives in content/.
CREATE TABLE images (
    id          TEXT PRIMARY KEY,
    parent      TEXT,
    loaded_at   TEXT NOT NULL,
    top_layer   TEXT REFERENCES layers(chain_id)
);

-- Repository tags and digests: "docker.io/library/busybox:latest" -> image.
CREATE TABLE tags (
    name        TEXT PRIMARY KEY,
    image_id    TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    tagged_at   TEXT NOT NULL
);
CREATE INDEX tags_by_image ON tags(image_id);

-- Read-only layers, one overlay directory each, shared between images.
CREATE TABLE layers (
    chain_id    TEXT PRIMARY KEY,
    diff_id     TEXT NOT NULL,
    parent      TEXT REFERENCES layers(chain_id),
    cache_id    TEXT NOT NULL UNIQUE,
    size        INTEGER NOT NULL
);

-- Containers: spec is the merged intent, state the last observed state (store/codec JSON).
CREATE TABLE containers (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    image_id    TEXT NOT NULL REFERENCES images(id),
    created     TEXT NOT NULL,
    runtime     TEXT NOT NULL,
    rw_layer    TEXT NOT NULL,
    spec        TEXT NOT NULL,
    state       TEXT NOT NULL
);

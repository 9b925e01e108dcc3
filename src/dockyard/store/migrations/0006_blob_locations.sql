-- Where a layer's compressed blob is known to be: which digest (and size, media type) a layer
-- (its diff id) had in which repository of which registry. Filled by pull and push; push
-- reads it to HEAD or mount instead of uploading. A cache of remote facts, never of local data.
CREATE TABLE blob_locations (
    diff_id     TEXT NOT NULL,
    digest      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    media_type  TEXT NOT NULL,
    registry    TEXT NOT NULL,
    repository  TEXT NOT NULL,
    seen_at     TEXT NOT NULL,
    PRIMARY KEY (diff_id, digest, registry, repository)
);

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

-- The image manifest a pull fetched (the chosen platform's, for an index): pushing the image
-- back where all its blobs are sends these same bytes, so the digest stays the same.
CREATE TABLE pulled_manifests (
    digest      TEXT PRIMARY KEY,
    image_id    TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    media_type  TEXT NOT NULL,
    raw         BLOB NOT NULL
);
CREATE INDEX pulled_manifests_by_image ON pulled_manifests(image_id);

-- A container's healthcheck status and last results (store/codec JSON); NULL: no healthcheck yet.
ALTER TABLE containers ADD COLUMN health TEXT;

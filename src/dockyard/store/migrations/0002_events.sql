-- Published events, one row each; store/events.py keeps the newest ones and trims the rest.
-- seq is the publish order (the bus numbers events; time can step back), time_nano the
-- event's unix time in nanoseconds, attributes the actor's attributes as a JSON object.
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    time_nano   INTEGER NOT NULL,
    type        TEXT NOT NULL,
    action      TEXT NOT NULL,
    actor_id    TEXT NOT NULL,
    attributes  TEXT NOT NULL,
    scope       TEXT NOT NULL
);
CREATE INDEX events_by_time ON events(time_nano);

-- Alerts (issue 13): each channel's state per condition (a failure group,
-- a circuit, a route's silence, ...): firing or not, how many alerts went
-- out for it (the next one's dedupe key), when the last went out and with
-- what count, and how many were held back by the throttle since.
CREATE TABLE alert_state (
    channel      TEXT NOT NULL,
    key          TEXT NOT NULL,
    firing       INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    opened_ms    INTEGER NOT NULL,
    last_sent_ms INTEGER NOT NULL,
    last_count   INTEGER NOT NULL,
    suppressed   INTEGER NOT NULL,
    PRIMARY KEY (channel, key)
);
-- The newest message each route received, as every instance last saw it
-- (the silence detector's view across instances).
CREATE TABLE route_traffic (
    route            TEXT PRIMARY KEY,
    last_received_ms INTEGER NOT NULL
);

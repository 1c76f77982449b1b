-- capledger schema, version 1: counter rows, holds, and the append-only journal.

CREATE TABLE IF NOT EXISTS capledger_accounts (
    scope           TEXT    NOT NULL,
    unit            TEXT    NOT NULL,
    period          TEXT    NOT NULL,
    cap             INTEGER,            -- NULL: tracked with no cap
    spent           INTEGER NOT NULL,   -- in the current window
    held            INTEGER NOT NULL,   -- by open holds
    window_start_us INTEGER NOT NULL,
    window_end_us   INTEGER,            -- NULL for the total period
    tz              TEXT    NOT NULL,
    anchor_us       INTEGER NOT NULL,
    alert_bp        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, unit, period)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS capledger_holds (
    id          TEXT    PRIMARY KEY,
    request_id  TEXT    UNIQUE,
    scopes      TEXT    NOT NULL,   -- JSON list
    amounts     TEXT    NOT NULL,   -- JSON {unit: held}
    state       TEXT    NOT NULL,
    created_us  INTEGER NOT NULL,
    expires_us  INTEGER NOT NULL,
    tags        TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    settled     TEXT,               -- JSON {unit: actual}
    closed_us   INTEGER,
    flags       TEXT    NOT NULL DEFAULT ''
);

-- Lazy expiry and sweeps look only at open holds, oldest expiry first.
CREATE INDEX IF NOT EXISTS capledger_holds_open_expiry
    ON capledger_holds (expires_us) WHERE state = 'open';

CREATE TABLE IF NOT EXISTS capledger_journal (
    id         INTEGER PRIMARY KEY,
    ts_us      INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    hold_id    TEXT,
    request_id TEXT,
    scopes     TEXT    NOT NULL,
    amounts    TEXT    NOT NULL,
    tags       TEXT    NOT NULL,
    flags      TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX IF NOT EXISTS capledger_journal_ts ON capledger_journal (ts_us);

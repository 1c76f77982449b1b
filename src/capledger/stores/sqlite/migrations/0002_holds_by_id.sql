-- capledger schema, version 2: holds are keyed by their id alone.
--
-- Version 1 kept holds in a rowid table, so every new hold also wrote a separate index of
-- ids, and a UNIQUE request_id index that listed every hold, most with no request_id. A
-- WITHOUT ROWID table keyed by id and a partial unique index over the request_ids given
-- write two fewer pages per reserve. The rows are copied as they are.

CREATE TABLE capledger_holds_v2 (
    id          TEXT    NOT NULL PRIMARY KEY,
    request_id  TEXT,
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
) WITHOUT ROWID;

INSERT INTO capledger_holds_v2
    (id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
     settled, closed_us, flags)
SELECT id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
       settled, closed_us, flags
  FROM capledger_holds;

DROP TABLE capledger_holds;

ALTER TABLE capledger_holds_v2 RENAME TO capledger_holds;

-- A request_id is unique where one is given: concurrent duplicates cannot both land.
CREATE UNIQUE INDEX capledger_holds_request
    ON capledger_holds (request_id) WHERE request_id IS NOT NULL;

-- Lazy expiry and sweeps look only at open holds, oldest expiry first.
CREATE INDEX capledger_holds_open_expiry
    ON capledger_holds (expires_us) WHERE state = 'open';

-- Named queries of the SQLite store. Each block starts with "-- name: NAME".

-- name: load_accounts
SELECT scope, unit, period, cap, spent, held, window_start_us, window_end_us, tz, anchor_us,
       alert_bp
  FROM capledger_accounts WHERE scope = ?;

-- name: all_accounts
SELECT scope, unit, period, cap, spent, held, window_start_us, window_end_us, tz, anchor_us,
       alert_bp
  FROM capledger_accounts ORDER BY scope, unit, period;

-- name: insert_account
INSERT INTO capledger_accounts
    (scope, unit, period, cap, spent, held, window_start_us, window_end_us, tz, anchor_us,
     alert_bp)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: update_account
UPDATE capledger_accounts
   SET cap = ?, spent = ?, held = ?, window_start_us = ?, window_end_us = ?, tz = ?,
       anchor_us = ?, alert_bp = ?
 WHERE scope = ? AND unit = ? AND period = ?;

-- name: delete_account
DELETE FROM capledger_accounts WHERE scope = ? AND unit = ? AND period = ?;

-- name: load_hold
SELECT id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
       settled, closed_us, flags
  FROM capledger_holds WHERE id = ?;

-- name: load_hold_by_request
SELECT id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
       settled, closed_us, flags
  FROM capledger_holds WHERE request_id = ?;

-- name: load_overdue
SELECT id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
       settled, closed_us, flags
  FROM capledger_holds WHERE state = 'open' AND expires_us <= ?
 ORDER BY expires_us LIMIT ?;

-- name: load_open_holds_on
SELECT h.id, h.request_id, h.scopes, h.amounts, h.state, h.created_us, h.expires_us, h.tags,
       h.fingerprint, h.settled, h.closed_us, h.flags
  FROM capledger_holds AS h, json_each(h.scopes) AS s
 WHERE h.state = 'open' AND s.value = ?;

-- name: list_holds
SELECT id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
       settled, closed_us, flags
  FROM capledger_holds
 WHERE state IN (SELECT value FROM json_each(?))
   AND (? IS NULL OR EXISTS (SELECT 1 FROM json_each(capledger_holds.scopes) AS s
                              WHERE s.value = ?))
 ORDER BY created_us, id LIMIT ?;

-- name: list_holds_newest
SELECT id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
       settled, closed_us, flags
  FROM capledger_holds
 WHERE state IN (SELECT value FROM json_each(?))
   AND (? IS NULL OR EXISTS (SELECT 1 FROM json_each(capledger_holds.scopes) AS s
                              WHERE s.value = ?))
 ORDER BY created_us DESC, id DESC LIMIT ?;

-- name: insert_hold
INSERT INTO capledger_holds
    (id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
     settled, closed_us, flags)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: update_hold
UPDATE capledger_holds
   SET amounts = ?, state = ?, expires_us = ?, tags = ?, settled = ?, closed_us = ?, flags = ?
 WHERE id = ?;

-- name: spent_since
SELECT j.amounts
  FROM capledger_journal AS j, json_each(j.scopes) AS s
 WHERE j.kind = 'settled' AND j.ts_us >= ? AND s.value = ?;

-- name: insert_entry
INSERT INTO capledger_journal (ts_us, kind, hold_id, request_id, scopes, amounts, tags, flags)
VALUES (?, ?, ?, ?, ?, ?, ?, ?);

-- name: journal
SELECT ts_us, kind, hold_id, request_id, scopes, amounts, tags, flags
  FROM capledger_journal WHERE ts_us >= ? AND ts_us < ? ORDER BY id;

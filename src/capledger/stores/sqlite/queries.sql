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
       settled, closed_us, flags, deadline_us, boot_id
  FROM capledger_holds WHERE id = ?;

-- name: load_hold_by_request
SELECT id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
       settled, closed_us, flags, deadline_us, boot_id
  FROM capledger_holds WHERE request_id = ?;

-- name: load_overdue
-- Parameters: this boot's id, the time on its deadline clock, the wall-clock time, limit.
-- Holds of this boot past their deadline; holds measured on the wall clock (boot id '')
-- past their wall-clock expiry; and every hold stamped under another boot. Each part is a
-- range of the open-expiry index. The store decides again on the rows (see store.py).
SELECT * FROM (
    SELECT id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
           settled, closed_us, flags, deadline_us, boot_id
      FROM capledger_holds WHERE state = 'open' AND boot_id = ?1 AND deadline_us <= ?2
    UNION ALL
    SELECT id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
           settled, closed_us, flags, deadline_us, boot_id
      FROM capledger_holds WHERE state = 'open' AND boot_id = '' AND expires_us <= ?3
    UNION ALL
    SELECT id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
           settled, closed_us, flags, deadline_us, boot_id
      FROM capledger_holds WHERE state = 'open' AND boot_id > '' AND boot_id < ?1
    UNION ALL
    SELECT id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
           settled, closed_us, flags, deadline_us, boot_id
      FROM capledger_holds WHERE state = 'open' AND boot_id > ?1
) LIMIT ?4;

-- name: load_open_holds_on
SELECT h.id, h.request_id, h.scopes, h.amounts, h.state, h.created_us, h.expires_us, h.tags,
       h.fingerprint, h.settled, h.closed_us, h.flags, h.deadline_us, h.boot_id
  FROM capledger_holds AS h, json_each(h.scopes) AS s
 WHERE h.state = 'open' AND s.value = ?;

-- name: list_holds
SELECT id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
       settled, closed_us, flags, deadline_us, boot_id
  FROM capledger_holds
 WHERE state IN (SELECT value FROM json_each(?))
   AND (? IS NULL OR EXISTS (SELECT 1 FROM json_each(capledger_holds.scopes) AS s
                              WHERE s.value = ?))
 ORDER BY created_us, id LIMIT ?;

-- name: list_holds_newest
SELECT id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
       settled, closed_us, flags, deadline_us, boot_id
  FROM capledger_holds
 WHERE state IN (SELECT value FROM json_each(?))
   AND (? IS NULL OR EXISTS (SELECT 1 FROM json_each(capledger_holds.scopes) AS s
                              WHERE s.value = ?))
 ORDER BY created_us DESC, id DESC LIMIT ?;

-- name: insert_hold
INSERT INTO capledger_holds
    (id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
     settled, closed_us, flags, deadline_us, boot_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: update_hold
UPDATE capledger_holds
   SET amounts = ?, state = ?, expires_us = ?, tags = ?, settled = ?, closed_us = ?, flags = ?,
       deadline_us = ?, boot_id = ?
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

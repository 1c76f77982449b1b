-- Named queries of the PostgreSQL store. Each block starts with "-- name: NAME".
-- Parameters are psycopg's %(name)s. Tables are unqualified: search_path names the schema.
--
-- A transaction is two round trips, each one pipelined batch of statements:
--   1. BEGIN, lock_holds, lock_accounts_new, lock_scopes, lock_accounts, lock_overdue, clock
--      (and what a set_limit reads: open_holds_on, spent_since)
--   2. the writes (delete/insert/update accounts, insert/update holds, insert_entries) as one
--      statement, COMMIT
-- Locks are always taken holds first (sorted by id), then accounts (sorted by key), so two
-- transactions never wait on each other in a cycle, whatever order callers list scopes in.

-- name: index_scans
-- First in a batch's transaction, so that the generic plans its statements get (made once
-- per connection, kept until the tables' statistics change) are index lookups even when
-- made on a young database: before its first ANALYZE the planner takes every "= ANY(ids)"
-- to match 10 rows of a table it assumes is 10 pages, and a sequential scan of holds then
-- stays in the plan until autovacuum analyzes them (a fresh database's Python path ran 28%
-- slower). Every statement of the transaction is an index lookup at any size (EXPLAIN at
-- 10,000 rows shows it without this setting); reads and other sessions plan as usual.
SET LOCAL enable_seqscan TO off;

-- name: lock_holds
-- The holds the batch settles, releases or extends (and reserve retries look up), locked
-- in id order before any account.
SELECT id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
       settled, closed_us, flags
  FROM capledger_holds
 WHERE id = ANY(%(ids)s::text[])
 ORDER BY id
   FOR UPDATE;

-- name: lock_holds_and_requests
-- The same, when reserves with a request_id also need their earlier hold, if any.
SELECT id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
       settled, closed_us, flags
  FROM capledger_holds
 WHERE id = ANY(%(ids)s::text[]) OR request_id = ANY(%(request_ids)s::text[])
 ORDER BY id
   FOR UPDATE;

-- name: lock_accounts_new
-- Every account row of every scope the batch can touch, locked in key order: the scopes the
-- operations name, the scopes of the holds locked above, and the scopes of the oldest
-- overdue holds (lazy expiry needs their accounts too). The ARRAY(...) subqueries run once,
-- so the scan is an index scan on the primary key whatever the table's size.
-- First, the advisory lock of each named scope with no account yet (a brand-new scope, no
-- row to lock), in scope order: whatever creates a scope's first account (a first reserve's
-- total, a set_limit's account, which counts the open holds) takes it, so the second of two
-- transactions that found the scope empty sees what the first committed. Hash collisions
-- only make two scopes queue for each other. The rows it waited for are locked by
-- lock_scopes, then every row is read by lock_accounts (see _load.py).
WITH new_scopes AS MATERIALIZED (
    SELECT pg_advisory_xact_lock(hashtextextended('capledger.scope:' || s.scope, 0))
      FROM (SELECT DISTINCT u.scope FROM unnest(%(scopes)s::text[]) AS u(scope)
             WHERE NOT EXISTS (SELECT 1 FROM capledger_accounts AS e WHERE e.scope = u.scope)
             ORDER BY u.scope) AS s
)
SELECT a.scope
  FROM capledger_accounts AS a
 WHERE (SELECT count(*) FROM new_scopes) >= 0
   AND a.scope = ANY(
           %(scopes)s::text[]
           || ARRAY(SELECT jsonb_array_elements_text(h.scopes)
                      FROM capledger_holds AS h
                     WHERE h.id = ANY(%(ids)s::text[]))
           || ARRAY(SELECT jsonb_array_elements_text(o.scopes)
                      FROM (SELECT scopes FROM capledger_holds
                             WHERE state = 'open'
                               AND expires_us <= coalesce(%(now_us)s::bigint,
                                   (extract(epoch FROM statement_timestamp()) * 1000000)::bigint)
                             ORDER BY expires_us
                             LIMIT %(expire_limit)s) AS o))
 ORDER BY a.scope, a.unit, a.period
   FOR UPDATE OF a;

-- name: lock_accounts
-- lock_accounts_new again, sent after it and lock_scopes, once every lock is held: a
-- statement sees the rows committed when it started, so one that waited for a transaction
-- that added an account to a scope (set_limit) locked the rows it waited for but never saw
-- the new one. This one starts after every lock is granted and sees them all; no account
-- can be added to these scopes until this transaction ends (the adder must lock the rows,
-- or the advisory lock of an empty scope, too).
SELECT a.scope, a.unit, a.period, a.cap, a.spent, a.held, a.window_start_us, a.window_end_us,
       a.tz, a.anchor_us, a.alert_bp
  FROM capledger_accounts AS a
 WHERE a.scope = ANY(
           %(scopes)s::text[]
           || ARRAY(SELECT jsonb_array_elements_text(h.scopes)
                      FROM capledger_holds AS h
                     WHERE h.id = ANY(%(ids)s::text[]))
           || ARRAY(SELECT jsonb_array_elements_text(o.scopes)
                      FROM (SELECT scopes FROM capledger_holds
                             WHERE state = 'open'
                               AND expires_us <= coalesce(%(now_us)s::bigint,
                                   (extract(epoch FROM statement_timestamp()) * 1000000)::bigint)
                             ORDER BY expires_us
                             LIMIT %(expire_limit)s) AS o))
 ORDER BY a.scope, a.unit, a.period
   FOR UPDATE OF a;

-- name: lock_overdue
-- Overdue open holds for lazy expiry. SKIP LOCKED: one that another transaction is settling
-- or expiring right now is that transaction's business, not a reason to wait.
SELECT id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
       settled, closed_us, flags
  FROM capledger_holds
 WHERE state = 'open'
   AND expires_us <= coalesce(%(now_us)s::bigint,
           (extract(epoch FROM statement_timestamp()) * 1000000)::bigint)
 ORDER BY expires_us
 LIMIT %(expire_limit)s
   FOR UPDATE SKIP LOCKED;

-- name: clock
-- Read after every lock above is granted, so a transaction that waited for another one
-- never decides at an earlier time than the one it waited for. The transaction id lets a
-- client that lost its connection during COMMIT ask whether the commit happened.
SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint, pg_current_xact_id()::text;

-- name: fast_reserve
-- The one-round-trip fast path (capledger_*_v1 in schema.sql): sent between BEGIN and
-- COMMIT in one round. No row back means "not the common case; nothing was written".
SELECT id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
       settled, closed_us, flags
  FROM capledger_reserve_v1(%(id)s, %(request_id)s, %(scopes)s::jsonb, %(amounts)s::jsonb,
                            %(ttl_us)s::bigint, %(tags)s::jsonb, %(fingerprint)s,
                            %(now_us)s::bigint);

-- name: fast_settle
SELECT id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
       settled, closed_us, flags
  FROM capledger_settle_v1(%(id)s, %(amounts)s::jsonb, %(tags)s::jsonb,
                           %(threshold_bps)s::integer[], %(now_us)s::bigint);

-- name: xact_status
SELECT pg_xact_status(%(xid)s::xid8);

-- name: lock_scopes
-- The named scopes' rows, locked (see lock_accounts_new and _load.py).
SELECT 1
  FROM capledger_accounts WHERE scope = ANY(%(scopes)s::text[])
 ORDER BY scope, unit, period
   FOR UPDATE;

-- name: open_holds_on
-- A new limit counts the open holds on its scope (read, not locked: the accounts of their
-- scopes, locked, keep them from closing meanwhile).
SELECT id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
       settled, closed_us, flags
  FROM capledger_holds WHERE state = 'open' AND scopes ?| %(scopes)s::text[];

-- name: spent_since
SELECT coalesce(sum((amounts ->> %(unit)s)::bigint), 0)::bigint
  FROM capledger_journal
 WHERE kind = 'settled' AND ts_us >= %(since_us)s AND scopes ? %(scope)s;

-- name: delete_accounts
-- The writes. Each carries its rows as one JSON array of objects (json_to_recordset), so
-- a batch of any size is one parameter per table; the keys are the column names. A batch's
-- writes are sent as one statement (each but the last in a writable CTE, see _flow.py).
-- The extra "= ANY(...)" conditions are redundant for the result, but they give the
-- (generic) plans an index condition, so a write costs the same however large the table.
DELETE FROM capledger_accounts AS a
 USING json_to_recordset(%(rows)s::json) AS d(scope text, unit text, period text)
 WHERE a.scope = d.scope AND a.unit = d.unit AND a.period = d.period
   AND a.scope = ANY(%(scopes)s::text[]);

-- name: insert_accounts
-- A plain INSERT: if another transaction created the same account meanwhile, the unique
-- violation makes the store retry, and the retry locks and reads the committed row.
INSERT INTO capledger_accounts
    (scope, unit, period, cap, spent, held, window_start_us, window_end_us, tz, anchor_us,
     alert_bp)
SELECT scope, unit, period, cap, spent, held, window_start_us, window_end_us, tz, anchor_us,
       alert_bp
  FROM json_to_recordset(%(rows)s::json)
    AS n(scope text, unit text, period text, cap bigint, spent bigint, held bigint,
         window_start_us bigint, window_end_us bigint, tz text, anchor_us bigint,
         alert_bp integer);

-- name: update_accounts
UPDATE capledger_accounts AS a
   SET cap = u.cap, spent = u.spent, held = u.held, window_start_us = u.window_start_us,
       window_end_us = u.window_end_us, tz = u.tz, anchor_us = u.anchor_us,
       alert_bp = u.alert_bp
  FROM json_to_recordset(%(rows)s::json)
    AS u(scope text, unit text, period text, cap bigint, spent bigint, held bigint,
         window_start_us bigint, window_end_us bigint, tz text, anchor_us bigint,
         alert_bp integer)
 WHERE a.scope = u.scope AND a.unit = u.unit AND a.period = u.period
   AND a.scope = ANY(%(scopes)s::text[]);

-- name: insert_holds
INSERT INTO capledger_holds
    (id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
     settled, closed_us, flags)
SELECT id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
       settled, closed_us, flags
  FROM json_to_recordset(%(rows)s::json)
    AS n(id text, request_id text, scopes jsonb, amounts jsonb, state text,
         created_us bigint, expires_us bigint, tags jsonb, fingerprint text, settled jsonb,
         closed_us bigint, flags text);

-- name: update_holds
UPDATE capledger_holds AS h
   SET amounts = u.amounts, state = u.state, expires_us = u.expires_us, tags = u.tags,
       settled = u.settled, closed_us = u.closed_us, flags = u.flags
  FROM json_to_recordset(%(rows)s::json)
    AS u(id text, amounts jsonb, state text, expires_us bigint, tags jsonb, settled jsonb,
         closed_us bigint, flags text)
 WHERE h.id = u.id
   AND h.id = ANY(%(ids)s::text[]);

-- name: insert_entries
-- WITH ORDINALITY keeps the batch's order in the identity column.
INSERT INTO capledger_journal
    (ts_us, kind, hold_id, request_id, scopes, amounts, tags, flags)
SELECT ts_us, kind, hold_id, request_id, scopes, amounts, tags, flags
  FROM ROWS FROM (json_to_recordset(%(rows)s::json)
                  AS (ts_us bigint, kind text, hold_id text, request_id text, scopes jsonb,
                      amounts jsonb, tags jsonb, flags text))
       WITH ORDINALITY AS e(ts_us, kind, hold_id, request_id, scopes, amounts, tags, flags, n)
 ORDER BY n;

-- name: all_accounts
SELECT scope, unit, period, cap, spent, held, window_start_us, window_end_us, tz, anchor_us,
       alert_bp
  FROM capledger_accounts ORDER BY scope, unit, period;

-- name: scope_accounts
SELECT scope, unit, period, cap, spent, held, window_start_us, window_end_us, tz, anchor_us,
       alert_bp
  FROM capledger_accounts WHERE scope = %(scope)s ORDER BY unit, period;

-- name: snapshot_accounts
-- snapshot(): every account of the scopes, in the order the scopes were given. Sent with
-- snapshot_holds between BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY and COMMIT, so the
-- two read one instant; no FOR UPDATE: a read never waits for a write, nor makes one wait.
SELECT scope, unit, period, cap, spent, held, window_start_us, window_end_us, tz, anchor_us,
       alert_bp
  FROM capledger_accounts
 WHERE scope = ANY(%(scopes)s::text[])
 ORDER BY array_position(%(scopes)s::text[], scope), unit, period;

-- name: snapshot_holds
SELECT id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
       settled, closed_us, flags
  FROM capledger_holds
 WHERE state = 'open' AND scopes ?| %(scopes)s::text[]
 ORDER BY created_us, id;

-- name: list_holds
SELECT id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
       settled, closed_us, flags
  FROM capledger_holds
 WHERE state = ANY(%(states)s::text[])
   AND (%(scope)s::text IS NULL OR scopes ? %(scope)s::text)
 ORDER BY created_us, id
 LIMIT %(limit)s;

-- name: list_holds_newest
SELECT id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
       settled, closed_us, flags
  FROM capledger_holds
 WHERE state = ANY(%(states)s::text[])
   AND (%(scope)s::text IS NULL OR scopes ? %(scope)s::text)
 ORDER BY created_us DESC, id DESC
 LIMIT %(limit)s;

-- name: journal
SELECT ts_us, kind, hold_id, request_id, scopes, amounts, tags, flags
  FROM capledger_journal WHERE ts_us >= %(since_us)s AND ts_us < %(until_us)s ORDER BY id;

-- name: migration_lock
-- One migrator at a time per schema: concurrent first users queue here instead of racing.
SELECT pg_advisory_xact_lock(hashtext('capledger.migrate:' || %(schema)s));

-- name: schema_exists
SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %(schema)s);

-- name: schema_migrated
-- Whether ``migrate`` ever ran on the schema (checked once by a store with migrate=off).
SELECT EXISTS (
    SELECT 1 FROM pg_tables WHERE schemaname = %(schema)s AND tablename = 'capledger_migrations'
);

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS capledger_migrations (
    version    integer     NOT NULL,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT capledger_migrations_pkey PRIMARY KEY (version)
);

-- name: applied_migrations
SELECT version FROM capledger_migrations ORDER BY version;

-- name: record_migration
INSERT INTO capledger_migrations (version, name) VALUES (%(version)s, %(name)s);

-- name: schema_version
SELECT max(version) FROM capledger_migrations;

-- capledger schema for PostgreSQL, complete at the latest migration (see migrations/).
-- A fresh database gets this file; an existing one gets the migrations it lacks. A test
-- asserts that both paths give the same schema.
--
-- Tables are unqualified: the store sets search_path to the configured schema.
-- Money and counters are bigint (nano-USD, tokens, requests): never a float.

CREATE TABLE capledger_accounts (
    scope           text    NOT NULL,
    unit            text    NOT NULL,
    period          text    NOT NULL,
    cap             bigint,             -- NULL: tracked with no cap
    spent           bigint  NOT NULL,   -- in the current window
    held            bigint  NOT NULL,   -- by open holds
    window_start_us bigint  NOT NULL,
    window_end_us   bigint,             -- NULL for the total period
    tz              text    NOT NULL,
    anchor_us       bigint  NOT NULL,
    alert_bp        integer NOT NULL DEFAULT 0,
    CONSTRAINT capledger_accounts_pkey PRIMARY KEY (scope, unit, period),
    CONSTRAINT capledger_accounts_counters_check CHECK (spent >= 0 AND held >= 0)
);

CREATE TABLE capledger_holds (
    id          text    NOT NULL,
    request_id  text,
    scopes      jsonb   NOT NULL,   -- ["kind:id", ...]
    amounts     jsonb   NOT NULL,   -- {unit: held}
    state       text    NOT NULL,
    created_us  bigint  NOT NULL,
    expires_us  bigint  NOT NULL,
    tags        jsonb   NOT NULL,
    fingerprint text    NOT NULL,
    settled     jsonb,              -- {unit: actual}
    closed_us   bigint,
    flags       text    NOT NULL DEFAULT '',
    CONSTRAINT capledger_holds_pkey PRIMARY KEY (id),
    -- Two processes racing one request_id: the loser's insert fails on this constraint, and
    -- the store retries its transaction, which then finds the winner's hold.
    CONSTRAINT capledger_holds_request_id_key UNIQUE (request_id),
    CONSTRAINT capledger_holds_state_check
        CHECK (state IN ('open', 'settled', 'released', 'expired'))
);

-- Lazy expiry, sweeps and listings look only at open holds, oldest expiry first. Partial, so
-- its size follows the open holds, not the history.
CREATE INDEX capledger_holds_open_expiry ON capledger_holds (expires_us) WHERE state = 'open';

CREATE TABLE capledger_journal (
    id         bigint  GENERATED ALWAYS AS IDENTITY,
    ts_us      bigint  NOT NULL,
    kind       text    NOT NULL,
    hold_id    text,
    request_id text,
    scopes     jsonb   NOT NULL,
    amounts    jsonb   NOT NULL,
    tags       jsonb   NOT NULL,
    flags      text    NOT NULL DEFAULT '',
    CONSTRAINT capledger_journal_pkey PRIMARY KEY (id)
);

-- Reports and a new limit's starting spend read the journal by time; the hot path never does.
CREATE INDEX capledger_journal_ts ON capledger_journal (ts_us);

-- The one-round-trip fast path (see docs/postgres.md): a reserve or a settle in the common
-- case, decided exactly as the Python core decides it (capledger/_core/decide.py: _reserve,
-- _settle). Anything else returns no row, having written nothing, and the store runs the
-- Python core for that operation: an account to create, a window to roll over, an overdue
-- hold anywhere (lazy expiry), a refusal, an overrun, a threshold crossing, a closed, late
-- or unknown hold, a repeated hold id or request_id. Locks are taken as the Python path
-- takes them: the hold first, then every account of its scopes in key order.
-- p_now_us: the injected clock, or NULL for the server's clock read after the locks.

CREATE FUNCTION capledger_reserve_v1(
    p_id text, p_request_id text, p_scopes jsonb, p_amounts jsonb, p_ttl_us bigint,
    p_tags jsonb, p_fingerprint text, p_now_us bigint
) RETURNS SETOF capledger_holds
LANGUAGE plpgsql AS $$
DECLARE
    v_scopes text[] := ARRAY(SELECT jsonb_array_elements_text(p_scopes));
    v_units  text[] := ARRAY(SELECT jsonb_object_keys(p_amounts));
    v_now    bigint;
    v_hold   capledger_holds;
    v_locked bigint;
BEGIN
    -- Every statement below starts after these locks are granted, so it sees every account
    -- of each scope locked here, including one added by a transaction this one waited for.
    -- A scope with no account yet has nothing to lock (the Python path takes its advisory
    -- lock): hand it over, even if the checks below would see accounts made meanwhile.
    SELECT count(DISTINCT l.scope) INTO v_locked
      FROM (SELECT scope FROM capledger_accounts
             WHERE scope = ANY(v_scopes) ORDER BY scope, unit, period FOR UPDATE) AS l;
    IF v_locked <> cardinality(v_scopes) THEN
        RETURN;
    END IF;
    v_now := coalesce(p_now_us, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);
    IF cardinality(v_scopes) <> (SELECT count(DISTINCT s) FROM unnest(v_scopes) AS s)
       -- a repeated hold id or request_id: the core returns the hold, or a conflict
       OR EXISTS (SELECT 1 FROM capledger_holds WHERE id = p_id)
       OR EXISTS (SELECT 1 FROM capledger_holds WHERE request_id = p_request_id)
       -- lazy expiry is due (apply_batch would expire it first)
       OR EXISTS (SELECT 1 FROM capledger_holds WHERE state = 'open' AND expires_us <= v_now)
       -- a (scope, unit) without its total account: the core creates it
       OR EXISTS (SELECT 1 FROM unnest(v_scopes) AS s(scope), unnest(v_units) AS u(unit)
                   WHERE NOT EXISTS (SELECT 1 FROM capledger_accounts AS a
                                      WHERE a.scope = s.scope AND a.unit = u.unit
                                        AND a.window_end_us IS NULL))
       -- a window to roll over, or a refusal (BudgetExceeded is built by the core): past
       -- the cap, or past MAX_COUNTER (capledger/bounds.py), the bound of an uncapped account
       OR EXISTS (SELECT 1 FROM capledger_accounts AS a
                   WHERE a.scope = ANY(v_scopes) AND a.unit = ANY(v_units)
                     AND (v_now >= a.window_end_us
                          OR a.spent::numeric + a.held + (p_amounts ->> a.unit)::numeric
                             > coalesce(a.cap, 4611686018427387904)))
    THEN
        RETURN;
    END IF;
    UPDATE capledger_accounts AS a SET held = a.held + (p_amounts ->> a.unit)::bigint
     WHERE a.scope = ANY(v_scopes) AND a.unit = ANY(v_units);
    INSERT INTO capledger_holds
        (id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
         settled, closed_us, flags)
    VALUES (p_id, p_request_id, p_scopes, p_amounts, 'open', v_now, v_now + p_ttl_us, p_tags,
            p_fingerprint, NULL, NULL, '')
    RETURNING * INTO v_hold;
    INSERT INTO capledger_journal (ts_us, kind, hold_id, request_id, scopes, amounts, tags, flags)
    VALUES (v_now, 'reserved', p_id, p_request_id, p_scopes, p_amounts, p_tags, '');
    RETURN NEXT v_hold;
END
$$;

CREATE FUNCTION capledger_settle_v1(
    p_id text, p_amounts jsonb, p_tags jsonb, p_threshold_bps integer[], p_now_us bigint
) RETURNS SETOF capledger_holds
LANGUAGE plpgsql AS $$
DECLARE
    v_hold   capledger_holds;
    v_scopes text[];
    v_units  text[];
    v_actual jsonb;
    v_now    bigint;
BEGIN
    SELECT * INTO v_hold FROM capledger_holds WHERE id = p_id FOR UPDATE;
    IF NOT FOUND OR v_hold.state <> 'open' THEN
        RETURN;  -- unknown, or a repeat, a late or a refused settle
    END IF;
    v_scopes := ARRAY(SELECT jsonb_array_elements_text(v_hold.scopes));
    PERFORM 1 FROM capledger_accounts
     WHERE scope = ANY(v_scopes) ORDER BY scope, unit, period FOR UPDATE;
    v_now := coalesce(p_now_us, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);
    -- units not given settle at their held amount
    v_actual := v_hold.amounts || p_amounts;
    v_units := ARRAY(SELECT jsonb_object_keys(v_actual));
    IF v_now >= v_hold.expires_us
       OR cardinality(v_scopes) <> (SELECT count(DISTINCT s) FROM unnest(v_scopes) AS s)
       OR EXISTS (SELECT 1 FROM capledger_holds WHERE state = 'open' AND expires_us <= v_now)
       -- a unit the hold lacks, or above the hold: an overrun
       OR EXISTS (SELECT 1 FROM jsonb_each_text(p_amounts) AS g(unit, amount)
                   WHERE NOT v_hold.amounts ? g.unit
                      OR g.amount::numeric > (v_hold.amounts ->> g.unit)::numeric)
       OR EXISTS (SELECT 1 FROM unnest(v_scopes) AS s(scope), unnest(v_units) AS u(unit)
                   WHERE NOT EXISTS (SELECT 1 FROM capledger_accounts AS a
                                      WHERE a.scope = s.scope AND a.unit = u.unit
                                        AND a.window_end_us IS NULL))
       OR EXISTS (
           SELECT 1
             FROM capledger_accounts AS a,
                  LATERAL (SELECT a.spent::numeric + (v_actual ->> a.unit)::numeric AS spent,
                                  a.held::numeric - (v_hold.amounts ->> a.unit)::numeric
                                      AS held) AS n
            WHERE a.scope = ANY(v_scopes) AND a.unit = ANY(v_units)
              AND (v_now >= a.window_end_us
                   OR n.held < 0  -- a broken invariant: the core raises it
                   OR n.spent + n.held > a.cap  -- over the cap after: an overrun
                   OR (a.cap <> 0 AND EXISTS (
                           SELECT 1 FROM unnest(p_threshold_bps) AS t(bp)
                            WHERE a.alert_bp < t.bp AND n.spent * 10000 >= t.bp::numeric * a.cap))))
    THEN
        RETURN;
    END IF;
    UPDATE capledger_accounts AS a
       SET held = a.held - (v_hold.amounts ->> a.unit)::bigint,
           spent = a.spent + (v_actual ->> a.unit)::bigint
     WHERE a.scope = ANY(v_scopes) AND a.unit = ANY(v_units);
    UPDATE capledger_holds
       SET state = 'settled', settled = v_actual, closed_us = v_now, flags = '',
           tags = tags || p_tags
     WHERE id = p_id
    RETURNING * INTO v_hold;
    INSERT INTO capledger_journal (ts_us, kind, hold_id, request_id, scopes, amounts, tags, flags)
    VALUES (v_now, 'settled', p_id, v_hold.request_id, v_hold.scopes, v_actual, v_hold.tags, '');
    RETURN NEXT v_hold;
END
$$;

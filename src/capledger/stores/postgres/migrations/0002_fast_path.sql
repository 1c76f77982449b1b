-- capledger PostgreSQL schema, version 2: the one-round-trip fast path as stored functions.
-- Never edit a released migration: add the next NNNN_name.sql and update schema.sql.

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
BEGIN
    PERFORM 1 FROM capledger_accounts
     WHERE scope = ANY(v_scopes) ORDER BY scope, unit, period FOR UPDATE;
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
       -- a window to roll over, or a refusal (BudgetExceeded is built by the core)
       OR EXISTS (SELECT 1 FROM capledger_accounts AS a
                   WHERE a.scope = ANY(v_scopes) AND a.unit = ANY(v_units)
                     AND (v_now >= a.window_end_us
                          OR a.spent::numeric + a.held + (p_amounts ->> a.unit)::numeric
                             > a.cap))
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

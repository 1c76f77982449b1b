-- capledger PostgreSQL schema, version 4: the fast reserve hands a hold that would take an
-- uncapped account past MAX_COUNTER (capledger/bounds.py) over to the Python path, which
-- refuses it (CounterLimitReached), so that every settle has room in a bigint counter.
-- Never edit a released migration: add the next NNNN_name.sql and update schema.sql.

-- capledger_reserve_v1 keeps its arguments and its contract (a row when decided, none when
-- handed over), so code of versions 2 to 4 can run side by side; only a case it used to
-- decide is now handed over.

CREATE OR REPLACE FUNCTION capledger_reserve_v1(
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

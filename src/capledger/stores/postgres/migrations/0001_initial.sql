-- capledger PostgreSQL schema, version 1: counter rows, holds, and the append-only journal.
-- Never edit a released migration: add the next NNNN_name.sql and update schema.sql.

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

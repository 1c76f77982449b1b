-- capledger schema, version 3: hold deadlines on a clock that does not step.
--
-- A hold's deadline was its wall-clock ``expires_us``, so a wall clock stepping forward, or
-- a second process running ahead, expired live holds. A hold now also keeps its deadline on
-- the host's boot-time clock (``deadline_us``) and the id of that boot (``boot_id``).
-- Holds from before this version (and holds written by a process whose clock has no
-- deadline clock) have the boot id '': they are judged on the wall clock, as before.

ALTER TABLE capledger_holds ADD COLUMN deadline_us INTEGER;

ALTER TABLE capledger_holds ADD COLUMN boot_id TEXT NOT NULL DEFAULT '';

UPDATE capledger_holds SET deadline_us = expires_us;

DROP INDEX capledger_holds_open_expiry;

-- Lazy expiry and sweeps look only at open holds: those of this boot past their deadline,
-- and every one stamped under another boot.
CREATE INDEX capledger_holds_open_expiry
    ON capledger_holds (boot_id, deadline_us) WHERE state = 'open';

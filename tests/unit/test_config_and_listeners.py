"""The core's Config is immutable; a ledger keeps its listeners apart and hands the store a
new Config when they change, while an operation under way keeps the one it began with."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from capledger import AsyncLedger, Event, Ledger, ManualClock
from capledger._core import Config, Op, Outcome
from capledger.stores.sqlite import SQLiteStore


def test_a_config_cannot_change() -> None:
    config = Config((9500, 8000))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.listened = frozenset({"settled"})  # type: ignore[misc]
    assert (config.threshold_bps, config.listened) == ((8000, 9500), frozenset())
    assert config.next_threshold_bp == {0: 8000, 8000: 9500, 9500: None}
    listening = dataclasses.replace(config, listened=frozenset({"settled"}))
    assert (listening.threshold_bps, listening.listened) == ((8000, 9500), {"settled"})
    assert listening.next_threshold_bp == config.next_threshold_bp
    assert config.listened == frozenset()  # the first is as it was


def _open(kind: str, tmp_path: Path) -> Ledger:
    if kind == "memory":  # no batcher: each operation goes through the store's executor
        return Ledger("memory://", clock=ManualClock())
    return Ledger(f"sqlite:///{tmp_path}/l.db", clock=ManualClock())  # through the batcher


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_listening_reaches_the_next_operation_and_leaves_old_configs_alone(
    kind: str, tmp_path: Path
) -> None:
    seen: list[Event] = []
    with _open(kind, tmp_path) as ledger:
        before = ledger._config
        ledger.reserve("user:a", usd="0.10").settle(usd="0.01")  # nobody listens
        ledger.on("settled", seen.append)
        ledger.on("released", seen.append)
        assert ledger._config.listened == {"settled", "released"}
        assert before.listened == frozenset()
        ledger.reserve("user:a", usd="0.10").settle(usd="0.02")
        ledger.off("settled", seen.append)
        assert ledger._config.listened == {"released"}
        ledger.reserve("user:a", usd="0.10").settle(usd="0.03")  # no longer heard
        ledger.off("released", seen.append)
        ledger.off("released", seen.append)  # not registered any more: nothing to do
        assert ledger._config.listened == frozenset()
        assert ledger._config.threshold_bps == before.threshold_bps
    assert [(event.kind, event.amounts["usd"]) for event in seen] == [("settled", Decimal("0.02"))]


def test_a_kind_stays_listened_while_one_of_its_callbacks_is_left() -> None:
    def first(event: Event) -> None: ...

    def second(event: Event) -> None: ...

    ledger = Ledger("memory://")
    ledger.on("settled", first)
    ledger.on("settled", second)
    ledger.off("settled", first)
    assert ledger._config.listened == {"settled"}
    assert ledger._listeners == {"settled": (second,)}
    ledger.off("settled", second)
    assert (ledger._config.listened, ledger._listeners) == (frozenset(), {})


class _PausingStore(SQLiteStore):
    """Records the config each batch is executed with; once ``pause`` is set, the next
    batch waits in the store until ``proceed`` is set."""

    configs: list[Config]
    pause: bool
    started: threading.Event
    proceed: threading.Event

    def execute(self, ops: Sequence[Op], config: Config) -> list[Outcome]:
        self.configs.append(config)
        if self.pause:
            self.pause = False
            self.started.set()
            assert self.proceed.wait(10)
        return super().execute(ops, config)


def test_a_batch_under_way_keeps_its_config_and_the_next_one_reads_the_new(
    tmp_path: Path,
) -> None:
    store = _PausingStore(f"sqlite:///{tmp_path}/l.db", ManualClock())
    store.configs, store.pause = [], False
    store.started, store.proceed = threading.Event(), threading.Event()
    seen: list[Event] = []
    with Ledger(store=store) as ledger:
        hold = ledger.reserve("user:a", usd="0.10")
        store.configs.clear()
        store.pause = True
        settling = threading.Thread(target=lambda: hold.settle(usd="0.05"))
        settling.start()
        assert store.started.wait(10)  # the settle's batch is in the store, undecided
        ledger.on("settled", seen.append)
        store.proceed.set()
        settling.join(10)
        ledger.reserve("user:a", usd="0.10").settle(usd="0.06")
    under_way, *after = store.configs
    assert under_way.listened == frozenset()  # decided whole with the config it began with
    assert [config.listened for config in after] == [{"settled"}, {"settled"}]
    assert [event.amounts["usd"] for event in seen] == [Decimal("0.06")]


def test_an_async_ledger_hands_its_new_config_on(tmp_path: Path) -> None:
    async def main(ledger: AsyncLedger) -> list[Event]:
        seen: list[Event] = []
        hold = await ledger.reserve("user:a", usd="0.10")
        ledger.on("settled", seen.append)
        await hold.settle(usd="0.04")
        return seen

    # memory: through the store's executor; SQLite: through the batcher.
    for url in ("memory://", f"sqlite:///{tmp_path}/l.db"):
        ledger = AsyncLedger(url, clock=ManualClock())
        try:
            [event] = asyncio.run(main(ledger))
        finally:
            asyncio.run(ledger.aclose())
        assert (event.kind, event.amounts["usd"]) == ("settled", Decimal("0.04"))

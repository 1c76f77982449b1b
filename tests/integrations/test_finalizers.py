"""A finalizer's ledger write never waits for the code the garbage collector interrupted."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Callable

import pytest

from capledger.integrations import _steps
from capledger.integrations._steps import outside_collection


class _Cyclic:
    """Garbage only the cyclic collector frees (it refers to itself)."""

    def __init__(self, on_collect: Callable[[], None]) -> None:
        self.me = self
        weakref.finalize(self, outside_collection, on_collect)


def _finalizer_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "capledger-finalizer"]


def test_a_write_from_a_collection_runs_beside_the_code_it_interrupted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The lock stands for a ledger batch this thread leads when the collection starts: a
    # write run inline would wait for it forever.
    batch = threading.Lock()
    written: list[str] = []

    def write() -> None:
        # Inline, this would wait for its own thread: give up instead of hanging the test.
        if not batch.acquire(timeout=5):
            raise AssertionError("the write waited for the batch it interrupted")
        written.append("settled")
        batch.release()

    monkeypatch.setattr(_steps, "FINALIZER_WAIT_S", 0.01)
    with batch:
        _Cyclic(write)
        gc.collect()  # returns: the write waits in a thread of its own
        assert written == []
        (worker,) = _finalizer_threads()
    worker.join()  # the batch is over: the write ran after it
    assert written == ["settled"]


def test_a_write_from_a_collection_is_done_when_it_returns() -> None:
    written: list[str] = []
    _Cyclic(lambda: written.append("settled"))
    gc.collect()
    assert written == ["settled"]
    assert _finalizer_threads() == []


def test_a_write_outside_a_collection_runs_here_and_raises() -> None:
    def failing() -> None:
        raise RuntimeError("the ledger is closed")

    with pytest.raises(RuntimeError, match="closed"):
        outside_collection(failing)

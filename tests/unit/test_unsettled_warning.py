"""A hold that leaves its block unsettled warns at the caller's ``with`` statement."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from capledger import AsyncLedger, Ledger, UnsettledHoldWarning


def test_the_warning_names_the_callers_with_statement() -> None:
    with Ledger("memory://") as ledger, pytest.warns(UnsettledHoldWarning) as caught:
        line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
        with ledger.reserve("user:a", usd="0.10"):
            pass
    assert (caught[0].filename, caught[0].lineno) == (__file__, line)


@pytest.mark.parametrize("awaited", [False, True])
def test_the_async_warning_names_the_callers_with_statement(awaited: bool) -> None:
    async def main() -> int:
        async with AsyncLedger("memory://") as ledger:
            if awaited:  # a hold awaited first, then entered
                hold = await ledger.reserve("user:a", usd="0.10")
                line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
                async with hold:
                    pass
            else:  # the pending hold entered directly
                line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
                async with ledger.reserve("user:a", usd="0.10"):
                    pass
        return line

    with pytest.warns(UnsettledHoldWarning) as caught:
        line = asyncio.run(main())
    assert (caught[0].filename, caught[0].lineno) == (__file__, line)

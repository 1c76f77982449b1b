"""Fixtures of the integration suites: ledgers on the SQLite default, a fake provider.

Each suite imports its SDK with ``pytest.importorskip``; ``tests/integrations/run_envs.py``
builds the environments in which every suite runs (the pins of LiteLLM and ``llm`` on
``openai`` cannot meet in one environment).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

# LiteLLM fetches its price map from the network at import unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from capledger import AsyncLedger, Ledger


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}") as opened:
        yield opened


@pytest.fixture
async def aledger(tmp_path: Path) -> AsyncIterator[AsyncLedger]:
    async with AsyncLedger(f"sqlite:///{tmp_path / 'ledger.db'}") as opened:
        yield opened

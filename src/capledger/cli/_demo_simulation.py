"""The demo's simulation: a thousand concurrent agents against three kinds of cap at once.

Every agent is charged to one user, that user's tenant and one feature, each with a daily
cap in dollars. An agent holds its worst-case cost on all three scopes in one atomic step
(``AsyncLedger.reserve``), "calls" a fake LLM (a few milliseconds of latency), and settles
what the call really cost (never more than the hold). Caps are set so that each kind of cap
refuses some calls. At the end the run recomputes every account from the journal
(``DemoResult``) so the command can say plainly whether every cap held.

The simulation is plain code (``run_demo``) so tests can drive it without the CLI; the
``capledger demo`` command that prints it is ``capledger.cli._demo``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Final

from capledger import (
    AsyncLedger,
    Balance,
    BudgetExceeded,
    ConfigurationError,
    LedgerError,
    VerifyReport,
)

__all__ = [
    "FEATURES",
    "PERIOD",
    "REFERENCE_AGENTS",
    "TENANTS",
    "USERS",
    "AgentPlan",
    "DemoResult",
    "check_empty",
    "demo_caps",
    "held_usd",
    "plan_agents",
    "run_demo",
]

#: The run the caps below are sized for; caps scale linearly with ``--agents``.
REFERENCE_AGENTS: Final = 1000

USERS: Final = tuple(f"user:u{number:02d}" for number in range(1, 21))
TENANTS: Final = ("tenant:acme", "tenant:globex")
FEATURES: Final = ("feature:chat", "feature:search", "feature:summarize")
PERIOD: Final = "day"

# Daily caps for the reference run of 1000 agents. A call holds 2,000 to 12,000 micro-dollars
# (6,000 on average) and spends 40-100 % of it, so each user asks for about $0.21, each
# tenant for $2.10 and each feature for $1.40. Each kind has scopes that run dry: every
# fifth user (u01, u06, u11, u16: both tenants have some), the acme tenant and the search
# feature. Scopes are checked in the order user, tenant, feature, and a refusal names the
# first cap that cannot pay, so the later kinds get caps low enough to still refuse.
_BASE_CAPS: Final[Mapping[str, Decimal]] = {
    **{
        user: Decimal("0.10") if index % 5 == 0 else Decimal("0.40")
        for index, user in enumerate(USERS)
    },
    "tenant:acme": Decimal("1.20"),
    "tenant:globex": Decimal("5.00"),
    "feature:chat": Decimal("4.00"),
    "feature:search": Decimal("0.60"),
    "feature:summarize": Decimal("4.00"),
}
#: Worst-case cost range per model, in micro-dollars (the fake LLM's price list).
_MODEL_COST_MICRO_USD: Final[Mapping[str, tuple[int, int]]] = {
    "gpt-4o-mini": (2_000, 6_000),
    "claude-haiku-4-5": (4_000, 12_000),
    "gemini-2.5-flash": (3_000, 9_000),
}
_MICRO: Final = Decimal("0.000001")
_CENT: Final = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class AgentPlan:
    """What one agent will do: fixed in advance by the seed, so a run can be repeated."""

    index: int
    scopes: tuple[str, str, str]  # user, tenant, feature
    model: str
    worst_usd: Decimal
    actual_usd: Decimal  # at most worst_usd: the provider enforces max_tokens
    start_delay_s: float
    latency_s: float


def plan_agents(agents: int, seed: int) -> list[AgentPlan]:
    """Draw every agent's scopes, model, costs and timing from ``random.Random(seed)``.

    Costs are whole micro-dollars made into ``Decimal`` exactly: no float touches money.
    """
    rng = random.Random(seed)
    plans = []
    for index in range(agents):
        user_number = rng.randrange(len(USERS))
        model = rng.choice(sorted(_MODEL_COST_MICRO_USD))
        low, high = _MODEL_COST_MICRO_USD[model]
        worst_micro = rng.randint(low, high)
        actual_micro = worst_micro * rng.randint(40, 100) // 100
        plans.append(
            AgentPlan(
                index=index,
                scopes=(
                    USERS[user_number],
                    TENANTS[user_number % len(TENANTS)],  # a user belongs to one tenant
                    rng.choice(FEATURES),
                ),
                model=model,
                worst_usd=worst_micro * _MICRO,
                actual_usd=actual_micro * _MICRO,
                # Agents arrive over 50 ms, so reserves interleave with settles as in a
                # real fleet instead of all landing before the first call returns.
                start_delay_s=rng.uniform(0, 0.05),
                latency_s=rng.uniform(0.002, 0.008),
            )
        )
    return plans


def demo_caps(agents: int) -> dict[str, Decimal]:
    """The daily cap of every demo scope for a run of ``agents`` (at least one cent)."""
    scale = Decimal(agents) / REFERENCE_AGENTS
    return {
        scope: max(_CENT, (cap * scale).quantize(_CENT, rounding=ROUND_DOWN))
        for scope, cap in _BASE_CAPS.items()
    }


@dataclass
class _Tally:
    allowed: Counter[str] = field(default_factory=Counter)
    denied: Counter[str] = field(default_factory=Counter)
    settled_usd: dict[str, Decimal] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class DemoResult:
    """What a demo run did and what the ledger says about it."""

    agents: int
    caps: dict[str, Decimal]
    allowed: Counter[str]
    denied: Counter[str]
    errors: Counter[str]
    balances: dict[str, Balance]
    verify: VerifyReport
    #: Settled spend per scope summed from the journal since the window start.
    journal_usd: dict[str, Decimal]
    #: Settled spend per scope summed from the whole journal (a run may cross midnight).
    journal_total_usd: dict[str, Decimal]
    #: Settled spend per scope as the agents themselves counted it.
    agents_usd: dict[str, Decimal]
    wall_s: float

    @property
    def calls_allowed(self) -> int:
        """Calls that got their hold (each is counted once, not once per scope)."""
        return sum(self.allowed[user] for user in USERS)

    @property
    def calls_denied(self) -> int:
        """Calls refused by some cap."""
        return sum(self.denied.values())

    def over_cap(self) -> list[str]:
        """Scopes where journal spend + held passes the cap (none, if the ledger is right)."""
        return [
            scope
            for scope, cap in self.caps.items()
            if self.journal_usd.get(scope, Decimal(0)) + held_usd(self.balances.get(scope)) > cap
        ]

    def lost_or_invented(self) -> list[str]:
        """Scopes where the journal disagrees with what the agents settled."""
        return [
            scope
            for scope in self.caps
            if self.journal_total_usd.get(scope, Decimal(0))
            != self.agents_usd.get(scope, Decimal(0))
        ]

    @property
    def caps_held(self) -> bool:
        """True when verify found nothing, no call errored, and no cap was passed."""
        return (
            self.verify.ok
            and not self.verify.overruns
            and not self.errors
            and not self.over_cap()
            and not self.lost_or_invented()
        )


def held_usd(balance: Balance | None) -> Decimal:
    """What ``balance`` holds in dollars (0 when there is no balance)."""
    if balance is None or not isinstance(balance.held, Decimal):
        return Decimal(0)
    return balance.held


async def _agent(
    ledger: AsyncLedger, plan: AgentPlan, run_id: str, tally: _Tally, done: Callable[[], object]
) -> None:
    try:
        await asyncio.sleep(plan.start_delay_s)
        async with ledger.reserve(
            plan.scopes,
            usd=plan.worst_usd,
            request_id=f"demo-{run_id}-{plan.index}",
            tags={"model": plan.model},
        ) as hold:
            await asyncio.sleep(plan.latency_s)  # the fake LLM call
            await hold.settle(usd=plan.actual_usd)
    except BudgetExceeded as refusal:
        tally.denied[refusal.scope] += 1
    except LedgerError as error:  # counted and shown; the demo then fails loudly
        tally.errors[type(error).__name__] += 1
    else:
        for scope in plan.scopes:
            tally.allowed[scope] += 1
            tally.settled_usd[scope] = tally.settled_usd.get(scope, Decimal(0)) + plan.actual_usd
    finally:
        done()


async def _refuse_unless_empty(ledger: AsyncLedger) -> None:
    if await ledger.limits() or await ledger.holds(state=None, limit=1):
        raise ConfigurationError(f"the demo needs an empty ledger, and {ledger.url} is not empty")


async def check_empty(url: str) -> None:
    """Raise ``ConfigurationError`` unless the ledger at ``url`` has no limits and no holds."""
    async with AsyncLedger(url) as ledger:
        await _refuse_unless_empty(ledger)


def _usd_by_scope(rows: Sequence[Mapping[str, object]]) -> dict[str, Decimal]:
    """``{scope: usd}`` from ``report(["scope"])`` rows (their ``usd`` is a ``Decimal``)."""
    return {str(row["scope"]): Decimal(str(row["usd"])) for row in rows}


async def run_demo(
    url: str, *, agents: int, seed: int, progress: Callable[[], object] = lambda: None
) -> DemoResult:
    """Run ``agents`` concurrent agents on the (empty) ledger at ``url`` and check it.

    Args:
        url: the store; it must hold no limits and no holds (see ``demo``).
        agents: how many agents, all started at once as asyncio tasks.
        seed: fixes every agent's plan (which calls are refused still depends on timing,
            as it would in production).
        progress: called once per finished agent.
    """
    caps = demo_caps(agents)
    plans = plan_agents(agents, seed)
    tally = _Tally()
    async with AsyncLedger(url) as ledger:
        await _refuse_unless_empty(ledger)
        for scope, cap in caps.items():
            await ledger.set_limit(scope, usd=cap, period=PERIOD)
        run_id = f"{seed}-{time.time_ns()}"
        started = time.perf_counter()
        await asyncio.gather(*(_agent(ledger, plan, run_id, tally, progress) for plan in plans))
        wall_s = time.perf_counter() - started
        balances = {}
        for scope in caps:
            for item in await ledger.balance(scope, unit="usd"):
                balances[scope] = item
        window_start = min(item.window_start for item in balances.values())
        rows = await ledger.report(["scope"], since=window_start)
        journal_usd = _usd_by_scope(rows)
        journal_total_usd = _usd_by_scope(await ledger.report(["scope"]))
        checked = await ledger.verify()
    return DemoResult(
        agents=agents,
        caps=caps,
        allowed=tally.allowed,
        denied=tally.denied,
        errors=tally.errors,
        balances=balances,
        verify=checked,
        journal_usd=journal_usd,
        journal_total_usd=journal_total_usd,
        agents_usd=tally.settled_usd,
        wall_s=wall_s,
    )


# --- the command ------------------------------------------------------------------------------

"""What a guarded call does when the budget cannot pay for its worst case."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, Literal, TypeAlias

from capledger.errors import BudgetExceeded, ConfigurationError

__all__ = ["Clamp", "Downgrade", "PolicyLike", "ShortBudget", "normalise_policy"]

#: How often ``clamp`` re-reads the balances and retries when a concurrent call took the
#: budget between the read and the reserve. Each retry reads fresh balances, so a retry only
#: fails again if another call won the race again.
MAX_CLAMP_ATTEMPTS: Final = 8
#: How many cheaper models a ``downgrade`` chain may walk (a cycle in the map stops here).
MAX_DOWNGRADE_STEPS: Final = 8


@dataclass(frozen=True, slots=True)
class Clamp:
    """Lower the request's output limit to what the budget can pay for.

    The limit (``max_tokens``, ``max_completion_tokens`` or ``max_output_tokens``) becomes the
    largest the scopes' smallest available budget affords (``affordable_max_tokens``), never
    above the request's own. Below ``floor`` tokens the call is refused with
    ``BudgetExceeded`` instead: a reply cut to a handful of tokens is rarely worth paying for.

    Args:
        floor: the smallest output limit worth sending (at least 1).
        attempts: how many times to re-read balances and retry when a concurrent call took
            the budget first (at most ``MAX_CLAMP_ATTEMPTS``).
    """

    floor: int = 1
    attempts: int = 4

    def __post_init__(self) -> None:
        if isinstance(self.floor, bool) or not isinstance(self.floor, int) or self.floor < 1:
            raise ConfigurationError(f"Clamp floor must be a whole number >= 1, not {self.floor!r}")
        if not 1 <= self.attempts <= MAX_CLAMP_ATTEMPTS:
            raise ConfigurationError(f"Clamp attempts must be within 1..{MAX_CLAMP_ATTEMPTS}")


@dataclass(frozen=True, slots=True)
class Downgrade:
    """Switch to a cheaper model when the budget cannot pay for the requested one.

    ``models`` maps a model to its cheaper replacement; the map is followed step by step
    (``gpt-4o -> gpt-4o-mini -> gpt-4.1-nano``), each step re-estimated and re-checked
    against the budget, until one fits. When none fits, ``then`` decides: ``raise``
    (``BudgetExceeded``) or ``clamp`` (clamp the last model tried).
    """

    models: Mapping[str, str]
    then: Literal["raise", "clamp"] = "raise"
    clamp: Clamp = field(default_factory=Clamp)

    def __post_init__(self) -> None:
        if not isinstance(self.models, Mapping) or not self.models:
            raise ConfigurationError("Downgrade needs a non-empty map of model -> cheaper model")
        if self.then not in ("raise", "clamp"):
            raise ConfigurationError("Downgrade then= must be 'raise' or 'clamp'")


@dataclass(frozen=True, slots=True)
class ShortBudget:
    """What a callable policy is told when the budget cannot pay for a request.

    Args:
        model: the model of the refused request.
        request: a copy of the request's keyword arguments (safe to modify and return).
        worst_case_usd: the hold that was refused.
        error: the ``BudgetExceeded`` the ledger raised (``.scope``, ``.available``...).
    """

    model: str
    request: dict[str, Any]
    worst_case_usd: Decimal
    error: BudgetExceeded


#: A callable policy returns the request to send instead (re-estimated and reserved once
#: more, without any further policy), or ``None`` to refuse with the original error.
PolicyCallable: TypeAlias = Callable[[ShortBudget], Mapping[str, Any] | None]
PolicyLike: TypeAlias = Literal["raise", "clamp"] | Clamp | Downgrade | PolicyCallable
Policy: TypeAlias = Literal["raise"] | Clamp | Downgrade | PolicyCallable


def normalise_policy(policy: object) -> Policy:
    """Turn what the user passed as ``policy=`` into one of the policy objects.

    Raises:
        ConfigurationError: an unknown name (``downgrade`` needs a ``Downgrade(models)``).
    """
    if policy == "raise":
        return "raise"
    if policy == "clamp":
        return Clamp()
    if isinstance(policy, Clamp | Downgrade):
        return policy
    if policy == "downgrade":
        raise ConfigurationError(
            "policy='downgrade' needs the cheaper models: pass "
            "policy=Downgrade({'gpt-4o': 'gpt-4o-mini'})"
        )
    if callable(policy):
        return policy
    raise ConfigurationError(
        f"unknown policy {policy!r}: use 'raise', 'clamp', Clamp(floor=...), "
        "Downgrade({...}) or a callable(ShortBudget) -> request | None"
    )

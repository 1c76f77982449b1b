# ruff: noqa: E402, E501  (imports after pytest.importorskip; the pinned table has long paths)
"""Audit of the whole public surface of the ``openai`` and ``anthropic`` clients.

Every attribute path of a client that can send a request (``sdk_surface.walk``) is called
once over a recording transport; what each one sent is pinned in ``EXPECTED`` (the end of
this file). A path the walker finds that is not pinned fails: a new SDK release added it,
and it must be classified before capledger can claim to guard it. Then every path is
called again on ``capledger.wrap(client, ledger)``, the recording transport inside the
guard: each request that leaves must be free, or priced and held (and the hold closed);
a path whose request the guard refuses raises ``UnguardedRequest`` and sends nothing; and
what is not refused still leaves. A WebSocket path (``connect()``), which no HTTP
transport sees, must be refused by the wrapped client itself.

After an SDK upgrade: ``python tests/integrations/sdk_surface.py --verdicts`` prints the
table of the installed SDKs and the verdict of each distinct request.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")

import sdk_surface as sdk
from sdk_surface import Outcome, Surface

from capledger import AsyncLedger, Ledger
from capledger.errors import UnguardedRequest

Recorded = dict[str, dict[str, tuple[Surface, list[Outcome]]]]

#: Paths walked (every dotted path found, local helpers included) must be at least this
#: many, per family and mode: about 90% of what openai 3.57 and anthropic 2.15 have, so a
#: walker that stops descending fails here rather than auditing a fraction of the surface.
FLOORS = {
    ("openai", "sync"): 3000,
    ("openai", "async"): 3000,
    ("anthropic", "sync"): 3150,
    ("anthropic", "async"): 3150,
}
VERDICTS = {"priced", "free", "refused"}
#: The scope the wrapped clients charge (uncapped: every priced call is held, none refused).
SCOPE = "tenant:audit"
#: The verdicts the transport guard's specification fixes, checked against ``classify``.
SPECIFIED = [
    ("openai", "POST", "/v1/chat/completions", "priced"),
    ("openai", "POST", "/v1/responses", "priced"),
    ("openai", "POST", "/v1/embeddings", "priced"),
    ("anthropic", "POST", "/v1/messages", "priced"),
    ("anthropic", "POST", "/v1/messages/count_tokens", "free"),
    ("openai", "POST", "/v1/responses/input_tokens", "free"),
    ("openai", "POST", "/v1/moderations", "free"),
    ("openai", "POST", "/v1/files", "free"),
    ("anthropic", "POST", "/v1/files", "free"),
    ("openai", "POST", "/v1/images/generations", "refused"),
    ("openai", "POST", "/v1/{path}", "refused"),
    ("anthropic", "POST", "/{path}", "refused"),
]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """Both SDKs, sync and async, every path called once over a recording transport."""
    workdir = sdk.Workdir.make(tmp_path_factory.mktemp("sdk-surface"))
    return {family: sdk.record(family, workdir) for family in sdk.FAMILIES}


def found_table(recorded: Recorded) -> sdk.Table:
    """The table of what the installed SDKs sent."""
    table: sdk.Table = {}
    for family, modes in recorded.items():
        by_mode = {
            mode: sdk.requests_by_path(surface, outcomes)
            for mode, (surface, outcomes) in modes.items()
        }
        table.update(sdk.table_of(family, by_mode))
    return table


def versions() -> str:
    """The installed SDK versions, for failure messages."""
    return f"openai {openai.__version__}, anthropic {anthropic.__version__}"


# --- the walk ------------------------------------------------------------------------------


def test_the_walk_reaches_the_whole_surface(recorded: Recorded) -> None:
    for family, modes in recorded.items():
        for mode, (surface, outcomes) in modes.items():
            walked = len(surface.representative) + len(surface.skipped)
            print(
                f"{family} {mode}: {walked} paths walked, {len(surface.functions)} behaviours,"
                f" {len(outcomes)} calls"
            )
            assert walked >= FLOORS[family, mode], (family, mode, walked)


def test_every_path_found_is_pinned(recorded: Recorded) -> None:
    found = found_table(recorded)
    added = sorted(key for key in found if key not in EXPECTED)
    assert not added, (
        f"a new SDK release ({versions()}) added paths that must be classified before"
        " wrap() can claim to guard them; look at what each sends, then regenerate the"
        " table with `python tests/integrations/sdk_surface.py` and paste it into EXPECTED:\n"
        + sdk.table_text({key: found[key] for key in added})
    )
    removed = sorted(key for key in EXPECTED if key not in found)
    assert not removed, f"paths no longer in the SDKs ({versions()}): {removed}"
    changed = sorted(key for key in found if found[key] != EXPECTED[key])
    assert not changed, (
        f"paths that now send other requests ({versions()}):\n"
        + sdk.table_text({key: found[key] for key in changed})
        + "\nwas:\n"
        + sdk.table_text({key: EXPECTED[key] for key in changed})
    )


def test_wrappers_send_what_they_wrap(recorded: Recorded) -> None:
    # with_raw_response / with_streaming_response at any level send the request of the
    # method they wrap (the table pins only the method).
    for family, modes in recorded.items():
        for mode, (surface, outcomes) in modes.items():
            by_path = sdk.requests_by_path(surface, outcomes)
            for dotted, sent in by_path.items():
                assert sent == by_path[sdk.canonical(dotted)], (family, mode, dotted)


def test_sync_and_async_clients_send_the_same(recorded: Recorded) -> None:
    for family, modes in recorded.items():
        sync = sdk.requests_by_path(*modes["sync"])
        async_ = sdk.requests_by_path(*modes["async"])
        both = sync.keys() & async_.keys()
        assert {
            path: (sync[path], async_[path]) for path in both if sync[path] != async_[path]
        } == {}, family


def test_every_path_sends_or_is_accounted_for(recorded: Recorded) -> None:
    for family, modes in recorded.items():
        for mode, (_, outcomes) in modes.items():
            for outcome in outcomes:
                kind = sdk.kind(family, outcome.dotted)
                where = (family, mode, outcome.dotted, outcome.error)
                if kind in {"factory", "builder"}:
                    assert outcome.result is not None, where
                elif kind == "websocket":
                    assert outcome.requests == (), where
                elif sdk.listed(sdk.FAILS_LOCALLY, family, outcome.dotted):
                    assert outcome.requests == (), ("no longer fails locally", *where)
                else:
                    assert outcome.requests, ("sent nothing", *where)
                    assert not isinstance(outcome.error, TimeoutError), where


def test_the_skip_lists_are_current(recorded: Recorded) -> None:
    # An entry for a path that no longer exists would hide nothing, but would mislead.
    seen = set()
    for family, modes in recorded.items():
        for surface, outcomes in modes.values():
            walked = [*surface.representative, *surface.skipped, *(o.dotted for o in outcomes)]
            for outcome in outcomes:
                if sdk.kind(family, outcome.dotted) == "builder" and outcome.result is not None:
                    prefix = f"{outcome.dotted}()."
                    walked += [dotted for dotted, _ in sdk.walk(outcome.result, family, prefix)]
            seen |= {f"{family}:{sdk.canonical(dotted)}" for dotted in walked}
    bare = {key.split(":", 1)[1] for key in seen}
    tables: list[Any] = [
        sdk.LOCAL_HELPERS,
        sdk.NOT_CALLED,
        sdk.BUILDERS,
        sdk.WEBSOCKETS,
        sdk.LONG_RUNNING,
        sdk.FAILS_LOCALLY,
        sdk.WRAPS_ERRORS,
        sdk.PATH_ARGUMENTS,
        sdk.CLIENT_FACTORIES,
    ]
    stale = [key for table in tables for key in table if key not in seen and key not in bare]
    assert stale == [], "entries of sdk_surface's tables for paths that no longer exist"


# --- the classifier ------------------------------------------------------------------------


def load_classify() -> Callable[[str, str, str], tuple[str, str]]:
    """``capledger.integrations._routes.classify``; fails (never skips) until it lands."""
    try:
        module = importlib.import_module("capledger.integrations._routes")
    except ImportError as error:
        pytest.fail(
            "capledger.integrations._routes does not exist yet: the transport guard has"
            f" not landed ({error})"
        )
    classify: Callable[[str, str, str], tuple[str, str]] | None
    classify = getattr(module, "classify", None)
    if classify is None:
        pytest.fail("capledger.integrations._routes has no classify(method, path, family)")
    return classify


def distinct_requests() -> Iterator[tuple[str, str, str]]:
    """``(family, method, path)`` of every distinct request in the pinned table."""
    seen = {
        (family, method, path)
        for (family, _), (_, sent) in EXPECTED.items()
        for method, path in sent
    }
    yield from sorted(seen)


def test_the_classifier_gives_every_request_a_verdict() -> None:
    classify = load_classify()
    unknown = {}
    for family, method, path in distinct_requests():
        verdict, endpoint = classify(method, path, family)
        if verdict not in VERDICTS or not endpoint:
            unknown[family, method, path] = (verdict, endpoint)
    assert unknown == {}
    wrong = {
        (family, method, path): (classify(method, path, family)[0], verdict)
        for family, method, path, verdict in SPECIFIED
        if classify(method, path, family)[0] != verdict
    }
    assert wrong == {}, "(got, specified)"


# --- the guarded client --------------------------------------------------------------------


def refused_as_specified(family: str, dotted: str, error: BaseException | None) -> bool:
    """The call raised ``UnguardedRequest`` (as the cause of an SDK helper's own error, for
    the helpers of ``WRAPS_ERRORS``)."""
    if isinstance(error, UnguardedRequest):
        return True
    if not sdk.listed(sdk.WRAPS_ERRORS, family, dotted):
        return False
    while error is not None and not isinstance(error, UnguardedRequest):
        error = error.__cause__
    return error is not None


class GuardedAudit:
    """Judges each call of the guarded run against the plain run's call of the same path."""

    def __init__(self, family: str, plain: dict[str, list[sdk.Requests]]) -> None:
        self.classify = load_classify()
        self.family = family
        self.plain = plain
        self.calls_seen: dict[str, int] = {}
        self.holds_seen: set[str] = set()
        self.problems: dict[str, list[str]] = {}

    def of(self, requests: sdk.Requests) -> list[str]:
        """The verdict on each of ``requests``."""
        return [self.classify(method, path, self.family)[0] for method, path in requests]

    def observe(self, outcome: Outcome, listed_holds: list[Any]) -> None:
        """Judge one call; ``listed_holds``: the newest holds after it (none if it sent none)."""
        new_holds = [hold for hold in listed_holds if hold.id not in self.holds_seen]
        self.holds_seen.update(hold.id for hold in new_holds)
        if found := self.judge(outcome, new_holds):
            self.problems[outcome.dotted] = found

    def judge(self, outcome: Outcome, new_holds: list[Any]) -> list[str]:
        """What is wrong with one guarded call, given the holds it opened."""
        family, dotted = self.family, outcome.dotted
        problems = []
        sent = self.of(outcome.every_request)
        if "refused" in sent:
            problems.append(f"a refused request left: {outcome.requests}")
        # The plain run's call of the same path, with the same arguments (the n-th of its
        # calls when PATH_ARGUMENTS gives it several).
        index = self.calls_seen.get(dotted, 0)
        self.calls_seen[dotted] = index + 1
        plain = self.plain[dotted][index]
        expected = self.of(plain)
        if "refused" in expected and not refused_as_specified(family, dotted, outcome.error):
            problems.append(f"should raise UnguardedRequest, raised {outcome.error!r}")
        # What is not refused must still leave: the plain call's requests, up to the first
        # refused one (a guard that refused everything would pass every other check).
        allowed = plain[: expected.index("refused")] if "refused" in expected else plain
        if outcome.requests != allowed:
            problems.append(f"sent {outcome.requests}, the plain client sent {plain}")
        priced = sent.count("priced")
        if len(new_holds) != priced:
            problems.append(f"{priced} priced requests sent, {len(new_holds)} holds placed")
        still_open = [hold for hold in new_holds if hold.state == "open"]
        if still_open:
            problems.append(f"holds left open: {still_open}")
        return problems

    def conclude(self, outcomes: list[Outcome], all_holds: list[Any]) -> None:
        """No problem in any call; every hold was seen after a call that sent, one a priced
        request."""
        assert self.problems == {}, report(self.problems)
        assert {hold.id for hold in all_holds} == self.holds_seen, "holds of calls sending nothing"
        priced = sum(self.of(outcome.every_request).count("priced") for outcome in outcomes)
        assert len(self.holds_seen) == priced > 0


def report(problems: dict[str, list[str]]) -> str:
    """One line a problem, under its path."""
    return "\n" + "\n".join(
        f"{dotted}:\n" + "".join(f"    {problem}\n" for problem in found)
        for dotted, found in sorted(problems.items())
    )


def plain_requests(recorded: Recorded, family: str, mode: str) -> dict[str, list[sdk.Requests]]:
    """What each call of the plain run sent, by path, in call order."""
    by_call: dict[str, list[sdk.Requests]] = {}
    for outcome in recorded[family][mode][1]:
        by_call.setdefault(outcome.dotted, []).append(outcome.requests)
    return by_call


def guarded_surface(
    recorded: Recorded, family: str, mode: str, ledger: Ledger | AsyncLedger
) -> tuple[Surface, sdk.Recorder, GuardedAudit]:
    """``wrap`` over a recording client: its surface (every path of the plain client, each
    sending through the wrapped copy; WebSockets left to their own test), its recorder, and
    the audit of its calls."""
    audit = GuardedAudit(family, plain_requests(recorded, family, mode))
    from capledger.integrations import wrap

    recorder = sdk.Recorder(sdk.http_module(family))
    client = sdk.make_client(family, asynchronous=mode == "async", recorder=recorder)
    guarded = wrap(client, ledger, scopes=SCOPE)
    # An instance of the SDK's own class has its whole surface: the plain client's paths
    # are looked up on it rather than walked again.
    assert isinstance(guarded, type(client)), type(guarded)
    surface = sdk.same_paths(recorded[family][mode][0], guarded)
    elsewhere = [
        dotted
        for dotted, function in surface.functions.items()
        if not sdk.sends_through(function, guarded)
    ]
    assert elsewhere == [], "paths of the wrapped client bound to another client"
    surface = surface.restricted(lambda dotted: sdk.kind(family, dotted) != "websocket")
    return surface, recorder, audit


@pytest.mark.parametrize("family", list(sdk.FAMILIES))
def test_the_wrapped_client_guards_every_path(
    family: str, recorded: Recorded, ledger: Ledger, tmp_path: Path
) -> None:
    surface, recorder, audit = guarded_surface(recorded, family, "sync", ledger)

    def check(outcome: Outcome) -> None:
        # A call that sent nothing opened no hold, or conclude() finds it.
        listed = ledger.holds(state=None, newest_first=True, limit=100) if outcome.requests else []
        audit.observe(outcome, listed)

    outcomes = sdk.run(surface, recorder, sdk.Workdir.make(tmp_path), on_outcome=check)
    surface.client.close()
    audit.conclude(outcomes, ledger.holds(state=None, limit=10_000))
    assert ledger.verify().ok


@pytest.mark.parametrize("family", list(sdk.FAMILIES))
async def test_the_wrapped_async_client_guards_every_path(
    family: str, recorded: Recorded, aledger: AsyncLedger, tmp_path: Path
) -> None:
    surface, recorder, audit = guarded_surface(recorded, family, "async", aledger)

    async def check(outcome: Outcome) -> None:
        listed = []
        if outcome.requests:
            listed = await aledger.holds(state=None, newest_first=True, limit=100)
        audit.observe(outcome, listed)

    outcomes = await sdk.arun(surface, recorder, sdk.Workdir.make(tmp_path), on_outcome=check)
    await surface.client.close()
    audit.conclude(outcomes, await aledger.holds(state=None, limit=10_000))
    assert (await aledger.verify()).ok


def websocket_problems(outcomes: list[Outcome]) -> dict[str, str]:
    """The connect() calls that were not refused before anything was sent."""
    return {
        outcome.dotted: f"raised {outcome.error!r}"
        for outcome in outcomes
        if outcome.requests or not isinstance(outcome.error, UnguardedRequest)
    }


def test_the_wrapped_client_refuses_websockets(ledger: Ledger, tmp_path: Path) -> None:
    # connect() opens a WebSocket with the `websockets` package: no HTTP transport sees
    # it, so wrap() itself must refuse it (here `websockets` is not installed; where it
    # is, an unrefused connect() would reach the provider unheld).
    from capledger.integrations import wrap

    recorder = sdk.Recorder(sdk.http_module("openai"))
    guarded = wrap(
        sdk.make_client("openai", asynchronous=False, recorder=recorder), ledger, scopes=SCOPE
    )
    only = sdk.listed_surface(guarded, "openai", sdk.WEBSOCKETS)
    outcomes = sdk.run(only, recorder, sdk.Workdir.make(tmp_path))
    assert len(outcomes) == len(sdk.WEBSOCKETS)
    assert websocket_problems(outcomes) == {}, "connect() must raise UnguardedRequest"


async def test_the_wrapped_async_client_refuses_websockets(
    aledger: AsyncLedger, tmp_path: Path
) -> None:
    from capledger.integrations import wrap

    recorder = sdk.Recorder(sdk.http_module("openai"))
    guarded = wrap(
        sdk.make_client("openai", asynchronous=True, recorder=recorder), aledger, scopes=SCOPE
    )
    only = sdk.listed_surface(guarded, "openai", sdk.WEBSOCKETS)
    outcomes = await sdk.arun(only, recorder, sdk.Workdir.make(tmp_path))
    assert len(outcomes) == len(sdk.WEBSOCKETS)
    assert websocket_problems(outcomes) == {}, "connect() must raise UnguardedRequest"


# --- the pinned table ----------------------------------------------------------------------

# What each path sent with the installed SDKs (openai 3.57, anthropic 2.15): a canonical
# path (wrapper segments removed; `x()` is what calling x returned), then one request a
# line (distinct, in order; `{name}` is a path parameter, `{id}` the id of the previous
# reply). `[sync]` / `[async]`: the path exists in one mode only.
EXPECTED_TEXT = """
anthropic beta.agents.archive
    POST /v1/agents/{agent_id}/archive
anthropic beta.agents.create
    POST /v1/agents
anthropic beta.agents.list
    GET /v1/agents
anthropic beta.agents.retrieve
    GET /v1/agents/{agent_id}
anthropic beta.agents.update
    POST /v1/agents/{agent_id}
anthropic beta.agents.versions.list
    GET /v1/agents/{agent_id}/versions
anthropic beta.compliance.review.cases.list
    GET /v1/compliance/review/cases
anthropic beta.compliance.review.cases.respond
    POST /v1/compliance/review/cases/{case_id}/respond
anthropic beta.compliance.review.cases.retrieve
    GET /v1/compliance/review/cases/{case_id}
anthropic beta.compliance.review.items.retrieve
    GET /v1/compliance/review/items/{item_id}
anthropic beta.compliance.review.notices.list
    GET /v1/compliance/review/notices
anthropic beta.deployment_runs.list
    GET /v1/deployment_runs
anthropic beta.deployment_runs.retrieve
    GET /v1/deployment_runs/{deployment_run_id}
anthropic beta.deployments.archive
    POST /v1/deployments/{deployment_id}/archive
anthropic beta.deployments.create
    POST /v1/deployments
anthropic beta.deployments.list
    GET /v1/deployments
anthropic beta.deployments.pause
    POST /v1/deployments/{deployment_id}/pause
anthropic beta.deployments.retrieve
    GET /v1/deployments/{deployment_id}
anthropic beta.deployments.run
    POST /v1/deployments/{deployment_id}/run
anthropic beta.deployments.unpause
    POST /v1/deployments/{deployment_id}/unpause
anthropic beta.deployments.update
    POST /v1/deployments/{deployment_id}
anthropic beta.dreams.archive
    POST /v1/dreams/{dream_id}/archive
anthropic beta.dreams.cancel
    POST /v1/dreams/{dream_id}/cancel
anthropic beta.dreams.create
    POST /v1/dreams
anthropic beta.dreams.list
    GET /v1/dreams
anthropic beta.dreams.retrieve
    GET /v1/dreams/{dream_id}
anthropic beta.environments.archive
    POST /v1/environments/{environment_id}/archive
anthropic beta.environments.create
    POST /v1/environments
anthropic beta.environments.delete
    DELETE /v1/environments/{environment_id}
anthropic beta.environments.list
    GET /v1/environments
anthropic beta.environments.retrieve
    GET /v1/environments/{environment_id}
anthropic beta.environments.update
    POST /v1/environments/{environment_id}
anthropic beta.environments.work.ack
    POST /v1/environments/{environment_id}/work/{work_id}/ack
anthropic beta.environments.work.heartbeat
    POST /v1/environments/{environment_id}/work/{work_id}/heartbeat
anthropic beta.environments.work.list
    GET /v1/environments/{environment_id}/work
anthropic beta.environments.work.poll
    GET /v1/environments/{environment_id}/work/poll
anthropic beta.environments.work.poller [async]
    GET /v1/environments/{environment_id}/work/poll
    POST /v1/environments/{environment_id}/work/{id}/ack
    POST /v1/environments/{environment_id}/work/{id}/stop
anthropic beta.environments.work.retrieve
    GET /v1/environments/{environment_id}/work/{work_id}
anthropic beta.environments.work.stats
    GET /v1/environments/{environment_id}/work/stats
anthropic beta.environments.work.stop
    POST /v1/environments/{environment_id}/work/{work_id}/stop
anthropic beta.environments.work.update
    POST /v1/environments/{environment_id}/work/{work_id}
anthropic beta.files.delete
    DELETE /v1/files/{file_id}
anthropic beta.files.download
    GET /v1/files/{file_id}/content
anthropic beta.files.list
    GET /v1/files
anthropic beta.files.retrieve_metadata
    GET /v1/files/{file_id}
anthropic beta.files.upload
    POST /v1/files
anthropic beta.memory_stores.archive
    POST /v1/memory_stores/{memory_store_id}/archive
anthropic beta.memory_stores.create
    POST /v1/memory_stores
anthropic beta.memory_stores.delete
    DELETE /v1/memory_stores/{memory_store_id}
anthropic beta.memory_stores.list
    GET /v1/memory_stores
anthropic beta.memory_stores.memories.create
    POST /v1/memory_stores/{memory_store_id}/memories
anthropic beta.memory_stores.memories.delete
    DELETE /v1/memory_stores/{memory_store_id}/memories/{memory_id}
anthropic beta.memory_stores.memories.list
    GET /v1/memory_stores/{memory_store_id}/memories
anthropic beta.memory_stores.memories.retrieve
    GET /v1/memory_stores/{memory_store_id}/memories/{memory_id}
anthropic beta.memory_stores.memories.update
    POST /v1/memory_stores/{memory_store_id}/memories/{memory_id}
anthropic beta.memory_stores.memory_versions.list
    GET /v1/memory_stores/{memory_store_id}/memory_versions
anthropic beta.memory_stores.memory_versions.redact
    POST /v1/memory_stores/{memory_store_id}/memory_versions/{memory_version_id}/redact
anthropic beta.memory_stores.memory_versions.retrieve
    GET /v1/memory_stores/{memory_store_id}/memory_versions/{memory_version_id}
anthropic beta.memory_stores.retrieve
    GET /v1/memory_stores/{memory_store_id}
anthropic beta.memory_stores.update
    POST /v1/memory_stores/{memory_store_id}
anthropic beta.messages.batches.cancel
    POST /v1/messages/batches/{message_batch_id}/cancel
anthropic beta.messages.batches.create
    POST /v1/messages/batches
anthropic beta.messages.batches.delete
    DELETE /v1/messages/batches/{message_batch_id}
anthropic beta.messages.batches.list
    GET /v1/messages/batches
anthropic beta.messages.batches.results
    GET /v1/messages/batches/{message_batch_id}
anthropic beta.messages.batches.retrieve
    GET /v1/messages/batches/{message_batch_id}
anthropic beta.messages.count_tokens
    POST /v1/messages/count_tokens
anthropic beta.messages.create
    POST /v1/messages
anthropic beta.messages.parse
    POST /v1/messages
anthropic beta.messages.stream
    POST /v1/messages
anthropic beta.messages.thread
anthropic beta.messages.thread().parse
    POST /v1/messages
anthropic beta.messages.thread().send
    POST /v1/messages
anthropic beta.messages.thread().stream
    POST /v1/messages
anthropic beta.messages.thread().tool_runner
    POST /v1/messages
anthropic beta.messages.tool_runner
    POST /v1/messages
anthropic beta.models.list
    GET /v1/models
anthropic beta.models.retrieve
    GET /v1/models/{model_id}
anthropic beta.organization.analytics.apps.chat.projects.list
    GET /v1/organizations/analytics/apps/chat/projects
anthropic beta.organization.analytics.artifacts.list
    GET /v1/organizations/analytics/artifacts
anthropic beta.organization.analytics.connectors.list
    GET /v1/organizations/analytics/connectors
anthropic beta.organization.analytics.cost.list
    GET /v1/organizations/analytics/cost
anthropic beta.organization.analytics.cost_report.list
    GET /v1/organizations/analytics/cost_report
anthropic beta.organization.analytics.plugins.list
    GET /v1/organizations/analytics/plugins
anthropic beta.organization.analytics.skills.list
    GET /v1/organizations/analytics/skills
anthropic beta.organization.analytics.summaries.list
    GET /v1/organizations/analytics/summaries
anthropic beta.organization.analytics.usage.list
    GET /v1/organizations/analytics/usage
anthropic beta.organization.analytics.usage_report.list
    GET /v1/organizations/analytics/usage_report
anthropic beta.organization.analytics.user_cost_report.list
    GET /v1/organizations/analytics/user_cost_report
anthropic beta.organization.analytics.user_usage_report.list
    GET /v1/organizations/analytics/user_usage_report
anthropic beta.organization.analytics.users.list
    GET /v1/organizations/analytics/users
anthropic beta.organization.api_keys.list
    GET /v1/organizations/api_keys
anthropic beta.organization.api_keys.retrieve
    GET /v1/organizations/api_keys/{api_key_id}
anthropic beta.organization.api_keys.update
    POST /v1/organizations/api_keys/{api_key_id}
anthropic beta.organization.claude_code.managed_settings.configuration.retrieve
    GET /v1/organizations/claude_code/managed_settings/configuration
anthropic beta.organization.claude_code.managed_settings.configuration.update
    POST /v1/organizations/claude_code/managed_settings/configuration
anthropic beta.organization.claude_code.managed_settings.rbac_group_default.retrieve
    GET /v1/organizations/claude_code/managed_settings/rbac_group_default
anthropic beta.organization.claude_code.managed_settings.rbac_group_default.update
    POST /v1/organizations/claude_code/managed_settings/rbac_group_default
anthropic beta.organization.claude_code.managed_settings.rbac_groups.delete
    DELETE /v1/organizations/claude_code/managed_settings/rbac_groups/{rbac_group_id}
anthropic beta.organization.claude_code.managed_settings.rbac_groups.list
    GET /v1/organizations/claude_code/managed_settings/rbac_groups
anthropic beta.organization.claude_code.managed_settings.rbac_groups.retrieve
    GET /v1/organizations/claude_code/managed_settings/rbac_groups/{rbac_group_id}
anthropic beta.organization.claude_code.managed_settings.rbac_groups.set
    POST /v1/organizations/claude_code/managed_settings/rbac_groups/{rbac_group_id}
anthropic beta.organization.claude_tag.bundles.list
    GET /v1/organizations/claude_tag/bundles
anthropic beta.organization.claude_tag.bundles.retrieve
    GET /v1/organizations/claude_tag/bundles/{bundle_id}
anthropic beta.organization.claude_tag.bundles.targets.create
    POST /v1/organizations/claude_tag/bundles/{bundle_id}/targets
anthropic beta.organization.claude_tag.bundles.targets.delete
    DELETE /v1/organizations/claude_tag/bundles/{bundle_id}/targets/{target_id}
anthropic beta.organization.claude_tag.bundles.targets.list
    GET /v1/organizations/claude_tag/bundles/{bundle_id}/targets
anthropic beta.organization.claude_tag.bundles.targets.retrieve
    GET /v1/organizations/claude_tag/bundles/{bundle_id}/targets/{target_id}
anthropic beta.organization.claude_tag.bundles.update
    POST /v1/organizations/claude_tag/bundles/{bundle_id}
anthropic beta.organization.claude_tag.slack_channels.create
    POST /v1/organizations/claude_tag/slack_channels
anthropic beta.organization.claude_tag.slack_channels.delete
    DELETE /v1/organizations/claude_tag/slack_channels/{id}
anthropic beta.organization.claude_tag.slack_channels.list
    GET /v1/organizations/claude_tag/slack_channels
anthropic beta.organization.claude_tag.slack_channels.retrieve
    GET /v1/organizations/claude_tag/slack_channels/{id}
anthropic beta.organization.claude_tag.slack_channels.update
    POST /v1/organizations/claude_tag/slack_channels/{id}
anthropic beta.organization.claude_tag.slack_workspaces.list
    GET /v1/organizations/claude_tag/slack_workspaces
anthropic beta.organization.claude_tag.slack_workspaces.retrieve
    GET /v1/organizations/claude_tag/slack_workspaces/{id}
anthropic beta.organization.claude_tag.slack_workspaces.update
    POST /v1/organizations/claude_tag/slack_workspaces/{id}
anthropic beta.organization.compliance_settings.retrieve
    GET /v1/organizations/compliance_settings
anthropic beta.organization.compliance_settings.update
    POST /v1/organizations/compliance_settings
anthropic beta.organization.external_keys.create
    POST /v1/organizations/external_keys
anthropic beta.organization.external_keys.delete
    DELETE /v1/organizations/external_keys/{external_key_id}
anthropic beta.organization.external_keys.list
    GET /v1/organizations/external_keys
anthropic beta.organization.external_keys.retrieve
    GET /v1/organizations/external_keys/{external_key_id}
anthropic beta.organization.external_keys.update
    POST /v1/organizations/external_keys/{external_key_id}
anthropic beta.organization.external_keys.validate
    POST /v1/organizations/external_keys/{external_key_id}/validate
anthropic beta.organization.external_storage.activate
    POST /v1/organizations/external_storage/{external_storage_id}/activate
anthropic beta.organization.external_storage.create
    POST /v1/organizations/external_storage
anthropic beta.organization.external_storage.delete
    DELETE /v1/organizations/external_storage/{external_storage_id}
anthropic beta.organization.external_storage.list
    GET /v1/organizations/external_storage
anthropic beta.organization.external_storage.retrieve
    GET /v1/organizations/external_storage/{external_storage_id}
anthropic beta.organization.external_storage.update
    POST /v1/organizations/external_storage/{external_storage_id}
anthropic beta.organization.federation.issuers.archive
    POST /v1/organizations/federation_issuers/{federation_issuer_id}/archive
anthropic beta.organization.federation.issuers.create
    POST /v1/organizations/federation_issuers
anthropic beta.organization.federation.issuers.list
    GET /v1/organizations/federation_issuers
anthropic beta.organization.federation.issuers.retrieve
    GET /v1/organizations/federation_issuers/{federation_issuer_id}
anthropic beta.organization.federation.issuers.update
    POST /v1/organizations/federation_issuers/{federation_issuer_id}
anthropic beta.organization.federation.rules.archive
    POST /v1/organizations/federation_rules/{federation_rule_id}/archive
anthropic beta.organization.federation.rules.create
    POST /v1/organizations/federation_rules
anthropic beta.organization.federation.rules.list
    GET /v1/organizations/federation_rules
anthropic beta.organization.federation.rules.retrieve
    GET /v1/organizations/federation_rules/{federation_rule_id}
anthropic beta.organization.federation.rules.update
    POST /v1/organizations/federation_rules/{federation_rule_id}
anthropic beta.organization.federation.rules.workspaces.add
    POST /v1/organizations/federation_rules/{federation_rule_id}/workspaces
anthropic beta.organization.federation.rules.workspaces.list
    GET /v1/organizations/federation_rules/{federation_rule_id}/workspaces
anthropic beta.organization.federation.rules.workspaces.remove
    DELETE /v1/organizations/federation_rules/{federation_rule_id}/workspaces/{workspace_id}
anthropic beta.organization.invites.create
    POST /v1/organizations/invites
anthropic beta.organization.invites.delete
    DELETE /v1/organizations/invites/{invite_id}
anthropic beta.organization.invites.list
    GET /v1/organizations/invites
anthropic beta.organization.invites.retrieve
    GET /v1/organizations/invites/{invite_id}
anthropic beta.organization.plugin_marketplaces.list
    GET /v1/organizations/plugin_marketplaces
anthropic beta.organization.plugin_marketplaces.retrieve
    GET /v1/organizations/plugin_marketplaces/{marketplace_id}
anthropic beta.organization.plugin_marketplaces.update
    POST /v1/organizations/plugin_marketplaces/{marketplace_id}
anthropic beta.organization.plugin_marketplaces.validate_archive
    POST /v1/organizations/plugin_marketplaces/validate_archive
anthropic beta.organization.plugin_marketplaces.validate_repository
    POST /v1/organizations/plugin_marketplaces/validate_repository
anthropic beta.organization.plugins.create
    POST /v1/organizations/plugins
anthropic beta.organization.plugins.delete
    DELETE /v1/organizations/plugins/{plugin_id}
anthropic beta.organization.plugins.installation_settings.list
    GET /v1/organizations/plugins/{plugin_id}/installation_settings
anthropic beta.organization.plugins.installation_settings.remove
    DELETE /v1/organizations/plugins/{plugin_id}/installation_settings/{target}
anthropic beta.organization.plugins.installation_settings.set
    POST /v1/organizations/plugins/{plugin_id}/installation_settings/{target}
anthropic beta.organization.plugins.list
    GET /v1/organizations/plugins
anthropic beta.organization.plugins.retrieve
    GET /v1/organizations/plugins/{plugin_id}
anthropic beta.organization.plugins.shares.list
    GET /v1/organizations/plugins/{plugin_id}/shares
anthropic beta.organization.plugins.update
    POST /v1/organizations/plugins/{plugin_id}
anthropic beta.organization.plugins.versions.create
    POST /v1/organizations/plugins/{plugin_id}/versions
anthropic beta.organization.plugins.versions.download
    GET /v1/organizations/plugins/{plugin_id}/versions/{version}/content
anthropic beta.organization.plugins.versions.list
    GET /v1/organizations/plugins/{plugin_id}/versions
anthropic beta.organization.plugins.versions.retrieve
    GET /v1/organizations/plugins/{plugin_id}/versions/{version}
anthropic beta.organization.providers.google.projects.data_controls.retrieve
    GET /v1/organizations/providers/google/projects/{project_number}/data_controls
anthropic beta.organization.providers.google.projects.data_controls.update
    POST /v1/organizations/providers/google/projects/{project_number}/data_controls
anthropic beta.organization.rate_limits.list
    GET /v1/organizations/rate_limits
anthropic beta.organization.rbac_groups.create
    POST /v1/organizations/rbac_groups
anthropic beta.organization.rbac_groups.delete
    DELETE /v1/organizations/rbac_groups/{rbac_group_id}
anthropic beta.organization.rbac_groups.list
    GET /v1/organizations/rbac_groups
anthropic beta.organization.rbac_groups.members.add
    POST /v1/organizations/rbac_groups/{rbac_group_id}/members
anthropic beta.organization.rbac_groups.members.list
    GET /v1/organizations/rbac_groups/{rbac_group_id}/members
anthropic beta.organization.rbac_groups.members.remove
    DELETE /v1/organizations/rbac_groups/{rbac_group_id}/members/{user_id}
anthropic beta.organization.rbac_groups.retrieve
    GET /v1/organizations/rbac_groups/{rbac_group_id}
anthropic beta.organization.rbac_groups.update
    POST /v1/organizations/rbac_groups/{rbac_group_id}
anthropic beta.organization.rbac_roles.list
    GET /v1/organizations/rbac_roles
anthropic beta.organization.rbac_roles.permissions.list
    GET /v1/organizations/rbac_roles/{rbac_role_id}/permissions
anthropic beta.organization.rbac_roles.retrieve
    GET /v1/organizations/rbac_roles/{rbac_role_id}
anthropic beta.organization.retrieve
    GET /v1/organizations/me
anthropic beta.organization.service_accounts.archive
    POST /v1/organizations/service_accounts/{service_account_id}/archive
anthropic beta.organization.service_accounts.create
    POST /v1/organizations/service_accounts
anthropic beta.organization.service_accounts.list
    GET /v1/organizations/service_accounts
anthropic beta.organization.service_accounts.retrieve
    GET /v1/organizations/service_accounts/{service_account_id}
anthropic beta.organization.service_accounts.update
    POST /v1/organizations/service_accounts/{service_account_id}
anthropic beta.organization.service_accounts.workspaces.add
    POST /v1/organizations/service_accounts/{service_account_id}/workspaces
anthropic beta.organization.service_accounts.workspaces.list
    GET /v1/organizations/service_accounts/{service_account_id}/workspaces
anthropic beta.organization.service_accounts.workspaces.remove
    DELETE /v1/organizations/service_accounts/{service_account_id}/workspaces/{workspace_id}
anthropic beta.organization.spend_limits.delete
    DELETE /v1/organizations/spend_limits/{spend_limit_id}
anthropic beta.organization.spend_limits.effective.list
    GET /v1/organizations/spend_limits/effective
anthropic beta.organization.spend_limits.increase_requests.approve
    POST /v1/organizations/spend_limit_increase_requests/{spend_limit_increase_request_id}/approve
anthropic beta.organization.spend_limits.increase_requests.deny
    POST /v1/organizations/spend_limit_increase_requests/{spend_limit_increase_request_id}/deny
anthropic beta.organization.spend_limits.increase_requests.list
    GET /v1/organizations/spend_limit_increase_requests
anthropic beta.organization.spend_limits.increase_requests.retrieve
    GET /v1/organizations/spend_limit_increase_requests/{spend_limit_increase_request_id}
anthropic beta.organization.spend_limits.list
    GET /v1/organizations/spend_limits
anthropic beta.organization.spend_limits.retrieve
    GET /v1/organizations/spend_limits/{spend_limit_id}
anthropic beta.organization.spend_limits.set
    POST /v1/organizations/spend_limits
anthropic beta.organization.telemetry_destinations.create
    POST /v1/organizations/telemetry_destinations
anthropic beta.organization.telemetry_destinations.delete
    DELETE /v1/organizations/telemetry_destinations/{destination_id}
anthropic beta.organization.telemetry_destinations.list
    GET /v1/organizations/telemetry_destinations
anthropic beta.organization.telemetry_destinations.retrieve
    GET /v1/organizations/telemetry_destinations/{destination_id}
anthropic beta.organization.telemetry_destinations.test
    POST /v1/organizations/telemetry_destinations/{destination_id}/test
anthropic beta.organization.telemetry_destinations.update
    POST /v1/organizations/telemetry_destinations/{destination_id}
anthropic beta.organization.telemetry_destinations.workspaces.add
    POST /v1/organizations/telemetry_destinations/{destination_id}/workspaces/{workspace_id}
anthropic beta.organization.telemetry_destinations.workspaces.list
    GET /v1/organizations/telemetry_destinations/{destination_id}/workspaces
anthropic beta.organization.telemetry_destinations.workspaces.remove
    DELETE /v1/organizations/telemetry_destinations/{destination_id}/workspaces/{workspace_id}
anthropic beta.organization.users.list
    GET /v1/organizations/users
anthropic beta.organization.users.remove
    DELETE /v1/organizations/users/{user_id}
anthropic beta.organization.users.retrieve
    GET /v1/organizations/users/{user_id}
anthropic beta.organization.users.sign_out
    POST /v1/organizations/users/{user_id}/sign_out
anthropic beta.organization.users.update
    POST /v1/organizations/users/{user_id}
anthropic beta.organization.webhooks.create
    POST /v1/organizations/webhooks
anthropic beta.organization.webhooks.delete
    DELETE /v1/organizations/webhooks/{webhook_endpoint_id}
anthropic beta.organization.webhooks.list
    GET /v1/organizations/webhooks
anthropic beta.organization.webhooks.regenerate_signing_secret
    POST /v1/organizations/webhooks/{webhook_endpoint_id}/regenerate_signing_secret
anthropic beta.organization.webhooks.retrieve
    GET /v1/organizations/webhooks/{webhook_endpoint_id}
anthropic beta.organization.webhooks.update
    POST /v1/organizations/webhooks/{webhook_endpoint_id}
anthropic beta.organization.workspaces.archive
    POST /v1/organizations/workspaces/{workspace_id}/archive
anthropic beta.organization.workspaces.create
    POST /v1/organizations/workspaces
anthropic beta.organization.workspaces.list
    GET /v1/organizations/workspaces
anthropic beta.organization.workspaces.members.add
    POST /v1/organizations/workspaces/{workspace_id}/members
anthropic beta.organization.workspaces.members.list
    GET /v1/organizations/workspaces/{workspace_id}/members
anthropic beta.organization.workspaces.members.remove
    DELETE /v1/organizations/workspaces/{workspace_id}/members/{user_id}
anthropic beta.organization.workspaces.members.retrieve
    GET /v1/organizations/workspaces/{workspace_id}/members/{user_id}
anthropic beta.organization.workspaces.members.update
    POST /v1/organizations/workspaces/{workspace_id}/members/{user_id}
anthropic beta.organization.workspaces.rate_limits.list
    GET /v1/organizations/workspaces/{workspace_id}/rate_limits
anthropic beta.organization.workspaces.rate_limits.update
    POST /v1/organizations/workspaces/{workspace_id}/rate_limits/{rate_limit_id}
anthropic beta.organization.workspaces.retrieve
    GET /v1/organizations/workspaces/{workspace_id}
anthropic beta.organization.workspaces.service_accounts.add
    POST /v1/organizations/workspaces/{workspace_id}/service_accounts
anthropic beta.organization.workspaces.service_accounts.list
    GET /v1/organizations/workspaces/{workspace_id}/service_accounts
anthropic beta.organization.workspaces.service_accounts.remove
    DELETE /v1/organizations/workspaces/{workspace_id}/service_accounts/{service_account_id}
anthropic beta.organization.workspaces.service_accounts.retrieve
    GET /v1/organizations/workspaces/{workspace_id}/service_accounts/{service_account_id}
anthropic beta.organization.workspaces.service_accounts.update
    POST /v1/organizations/workspaces/{workspace_id}/service_accounts/{service_account_id}
anthropic beta.organization.workspaces.update
    POST /v1/organizations/workspaces/{workspace_id}
anthropic beta.sessions.archive
    POST /v1/sessions/{session_id}/archive
anthropic beta.sessions.create
    POST /v1/sessions
anthropic beta.sessions.delete
    DELETE /v1/sessions/{session_id}
anthropic beta.sessions.events.list
    GET /v1/sessions/{session_id}/events
anthropic beta.sessions.events.send
    POST /v1/sessions/{session_id}/events
anthropic beta.sessions.events.stream
    GET /v1/sessions/{session_id}/events/stream
anthropic beta.sessions.events.tool_runner [async]
    GET /v1/sessions/{session_id}/events/stream
    GET /v1/sessions/{session_id}/events
anthropic beta.sessions.list
    GET /v1/sessions
anthropic beta.sessions.resources.add
    POST /v1/sessions/{session_id}/resources
anthropic beta.sessions.resources.delete
    DELETE /v1/sessions/{session_id}/resources/{resource_id}
anthropic beta.sessions.resources.list
    GET /v1/sessions/{session_id}/resources
anthropic beta.sessions.resources.retrieve
    GET /v1/sessions/{session_id}/resources/{resource_id}
anthropic beta.sessions.resources.update
    POST /v1/sessions/{session_id}/resources/{resource_id}
anthropic beta.sessions.retrieve
    GET /v1/sessions/{session_id}
anthropic beta.sessions.threads.archive
    POST /v1/sessions/{session_id}/threads/{thread_id}/archive
anthropic beta.sessions.threads.events.list
    GET /v1/sessions/{session_id}/threads/{thread_id}/events
anthropic beta.sessions.threads.events.stream
    GET /v1/sessions/{session_id}/threads/{thread_id}/stream
anthropic beta.sessions.threads.list
    GET /v1/sessions/{session_id}/threads
anthropic beta.sessions.threads.retrieve
    GET /v1/sessions/{session_id}/threads/{thread_id}
anthropic beta.sessions.update
    POST /v1/sessions/{session_id}
anthropic beta.skills.create
    POST /v1/skills
anthropic beta.skills.delete
    DELETE /v1/skills/{skill_id}
anthropic beta.skills.list
    GET /v1/skills
anthropic beta.skills.retrieve
    GET /v1/skills/{skill_id}
anthropic beta.skills.versions.create
    POST /v1/skills/{skill_id}/versions
anthropic beta.skills.versions.delete
    DELETE /v1/skills/{skill_id}/versions/{version}
anthropic beta.skills.versions.download
    GET /v1/skills/{skill_id}/versions/{version}/content
anthropic beta.skills.versions.list
    GET /v1/skills/{skill_id}/versions
anthropic beta.skills.versions.retrieve
    GET /v1/skills/{skill_id}/versions/{version}
anthropic beta.tunnels.archive
    POST /v1/tunnels/{tunnel_id}/archive
anthropic beta.tunnels.certificates.archive
    POST /v1/tunnels/{tunnel_id}/certificates/{certificate_id}/archive
anthropic beta.tunnels.certificates.create
    POST /v1/tunnels/{tunnel_id}/certificates
anthropic beta.tunnels.certificates.list
    GET /v1/tunnels/{tunnel_id}/certificates
anthropic beta.tunnels.certificates.retrieve
    GET /v1/tunnels/{tunnel_id}/certificates/{certificate_id}
anthropic beta.tunnels.create
    POST /v1/tunnels
anthropic beta.tunnels.list
    GET /v1/tunnels
anthropic beta.tunnels.retrieve
    GET /v1/tunnels/{tunnel_id}
anthropic beta.tunnels.reveal_token
    POST /v1/tunnels/{tunnel_id}/reveal_token
anthropic beta.tunnels.rotate_token
    POST /v1/tunnels/{tunnel_id}/rotate_token
anthropic beta.user_profiles.action_urls.create
    POST /v1/user_profiles/{user_profile_id}/action_urls
anthropic beta.user_profiles.create
    POST /v1/user_profiles
anthropic beta.user_profiles.create_enrollment_url
    POST /v1/user_profiles/{user_profile_id}/enrollment_url
anthropic beta.user_profiles.delete
    DELETE /v1/user_profiles/{user_profile_id}
anthropic beta.user_profiles.list
    GET /v1/user_profiles
anthropic beta.user_profiles.providers.google.data_controls.retrieve
    GET /v1/user_profiles/{user_profile_id}/providers/google/data_controls
anthropic beta.user_profiles.providers.google.data_controls.update
    POST /v1/user_profiles/{user_profile_id}/providers/google/data_controls
anthropic beta.user_profiles.retrieve
    GET /v1/user_profiles/{user_profile_id}
anthropic beta.user_profiles.update
    POST /v1/user_profiles/{user_profile_id}
anthropic beta.vaults.archive
    POST /v1/vaults/{vault_id}/archive
anthropic beta.vaults.create
    POST /v1/vaults
anthropic beta.vaults.credentials.archive
    POST /v1/vaults/{vault_id}/credentials/{credential_id}/archive
anthropic beta.vaults.credentials.create
    POST /v1/vaults/{vault_id}/credentials
anthropic beta.vaults.credentials.delete
    DELETE /v1/vaults/{vault_id}/credentials/{credential_id}
anthropic beta.vaults.credentials.list
    GET /v1/vaults/{vault_id}/credentials
anthropic beta.vaults.credentials.mcp_oauth_validate
    POST /v1/vaults/{vault_id}/credentials/{credential_id}/mcp_oauth_validate
anthropic beta.vaults.credentials.retrieve
    GET /v1/vaults/{vault_id}/credentials/{credential_id}
anthropic beta.vaults.credentials.update
    POST /v1/vaults/{vault_id}/credentials/{credential_id}
anthropic beta.vaults.delete
    DELETE /v1/vaults/{vault_id}
anthropic beta.vaults.list
    GET /v1/vaults
anthropic beta.vaults.retrieve
    GET /v1/vaults/{vault_id}
anthropic beta.vaults.update
    POST /v1/vaults/{vault_id}
anthropic copy
anthropic copy().post
    POST /{path}
anthropic delete
    DELETE /{path}
anthropic files.delete
    DELETE /v1/files/{file_id}
anthropic files.download
    GET /v1/files/{file_id}/content
anthropic files.list
    GET /v1/files
anthropic files.retrieve_metadata
    GET /v1/files/{file_id}
anthropic files.upload
    POST /v1/files
anthropic get
    GET /{path}
anthropic get_api_list
    GET /{path}
anthropic messages.batches.cancel
    POST /v1/messages/batches/{message_batch_id}/cancel
anthropic messages.batches.create
    POST /v1/messages/batches
anthropic messages.batches.delete
    DELETE /v1/messages/batches/{message_batch_id}
anthropic messages.batches.list
    GET /v1/messages/batches
anthropic messages.batches.results
    GET /v1/messages/batches/{message_batch_id}
anthropic messages.batches.retrieve
    GET /v1/messages/batches/{message_batch_id}
anthropic messages.count_tokens
    POST /v1/messages/count_tokens
anthropic messages.create
    POST /v1/messages
anthropic messages.parse
    POST /v1/messages
anthropic messages.stream
    POST /v1/messages
anthropic models.list
    GET /v1/models
anthropic models.retrieve
    GET /v1/models/{model_id}
anthropic organization.analytics.apps.chat.projects.list
    GET /v1/organizations/analytics/apps/chat/projects
anthropic organization.analytics.artifacts.list
    GET /v1/organizations/analytics/artifacts
anthropic organization.analytics.connectors.list
    GET /v1/organizations/analytics/connectors
anthropic organization.analytics.plugins.list
    GET /v1/organizations/analytics/plugins
anthropic organization.analytics.skills.list
    GET /v1/organizations/analytics/skills
anthropic organization.analytics.summaries.list
    GET /v1/organizations/analytics/summaries
anthropic organization.analytics.users.list
    GET /v1/organizations/analytics/users
anthropic organization.api_keys.list
    GET /v1/organizations/api_keys
anthropic organization.api_keys.retrieve
    GET /v1/organizations/api_keys/{api_key_id}
anthropic organization.api_keys.update
    POST /v1/organizations/api_keys/{api_key_id}
anthropic organization.compliance_settings.retrieve
    GET /v1/organizations/compliance_settings
anthropic organization.compliance_settings.update
    POST /v1/organizations/compliance_settings
anthropic organization.external_keys.create
    POST /v1/organizations/external_keys
anthropic organization.external_keys.delete
    DELETE /v1/organizations/external_keys/{external_key_id}
anthropic organization.external_keys.list
    GET /v1/organizations/external_keys
anthropic organization.external_keys.retrieve
    GET /v1/organizations/external_keys/{external_key_id}
anthropic organization.external_keys.update
    POST /v1/organizations/external_keys/{external_key_id}
anthropic organization.external_keys.validate
    POST /v1/organizations/external_keys/{external_key_id}/validate
anthropic organization.federation.issuers.archive
    POST /v1/organizations/federation_issuers/{federation_issuer_id}/archive
anthropic organization.federation.issuers.create
    POST /v1/organizations/federation_issuers
anthropic organization.federation.issuers.list
    GET /v1/organizations/federation_issuers
anthropic organization.federation.issuers.retrieve
    GET /v1/organizations/federation_issuers/{federation_issuer_id}
anthropic organization.federation.issuers.update
    POST /v1/organizations/federation_issuers/{federation_issuer_id}
anthropic organization.federation.rules.archive
    POST /v1/organizations/federation_rules/{federation_rule_id}/archive
anthropic organization.federation.rules.create
    POST /v1/organizations/federation_rules
anthropic organization.federation.rules.list
    GET /v1/organizations/federation_rules
anthropic organization.federation.rules.retrieve
    GET /v1/organizations/federation_rules/{federation_rule_id}
anthropic organization.federation.rules.update
    POST /v1/organizations/federation_rules/{federation_rule_id}
anthropic organization.federation.rules.workspaces.add
    POST /v1/organizations/federation_rules/{federation_rule_id}/workspaces
anthropic organization.federation.rules.workspaces.list
    GET /v1/organizations/federation_rules/{federation_rule_id}/workspaces
anthropic organization.federation.rules.workspaces.remove
    DELETE /v1/organizations/federation_rules/{federation_rule_id}/workspaces/{workspace_id}
anthropic organization.invites.create
    POST /v1/organizations/invites
anthropic organization.invites.delete
    DELETE /v1/organizations/invites/{invite_id}
anthropic organization.invites.list
    GET /v1/organizations/invites
anthropic organization.invites.retrieve
    GET /v1/organizations/invites/{invite_id}
anthropic organization.rate_limits.list
    GET /v1/organizations/rate_limits
anthropic organization.rbac_groups.create
    POST /v1/organizations/rbac_groups
anthropic organization.rbac_groups.delete
    DELETE /v1/organizations/rbac_groups/{rbac_group_id}
anthropic organization.rbac_groups.list
    GET /v1/organizations/rbac_groups
anthropic organization.rbac_groups.members.add
    POST /v1/organizations/rbac_groups/{rbac_group_id}/members
anthropic organization.rbac_groups.members.list
    GET /v1/organizations/rbac_groups/{rbac_group_id}/members
anthropic organization.rbac_groups.members.remove
    DELETE /v1/organizations/rbac_groups/{rbac_group_id}/members/{user_id}
anthropic organization.rbac_groups.retrieve
    GET /v1/organizations/rbac_groups/{rbac_group_id}
anthropic organization.rbac_groups.update
    POST /v1/organizations/rbac_groups/{rbac_group_id}
anthropic organization.rbac_roles.list
    GET /v1/organizations/rbac_roles
anthropic organization.rbac_roles.permissions.list
    GET /v1/organizations/rbac_roles/{rbac_role_id}/permissions
anthropic organization.rbac_roles.retrieve
    GET /v1/organizations/rbac_roles/{rbac_role_id}
anthropic organization.retrieve
    GET /v1/organizations/me
anthropic organization.service_accounts.archive
    POST /v1/organizations/service_accounts/{service_account_id}/archive
anthropic organization.service_accounts.create
    POST /v1/organizations/service_accounts
anthropic organization.service_accounts.list
    GET /v1/organizations/service_accounts
anthropic organization.service_accounts.retrieve
    GET /v1/organizations/service_accounts/{service_account_id}
anthropic organization.service_accounts.update
    POST /v1/organizations/service_accounts/{service_account_id}
anthropic organization.service_accounts.workspaces.add
    POST /v1/organizations/service_accounts/{service_account_id}/workspaces
anthropic organization.service_accounts.workspaces.list
    GET /v1/organizations/service_accounts/{service_account_id}/workspaces
anthropic organization.service_accounts.workspaces.remove
    DELETE /v1/organizations/service_accounts/{service_account_id}/workspaces/{workspace_id}
anthropic organization.spend_limits.effective.list
    GET /v1/organizations/spend_limits/effective
anthropic organization.spend_limits.increase_requests.approve
    POST /v1/organizations/spend_limit_increase_requests/{spend_limit_increase_request_id}/approve
anthropic organization.spend_limits.increase_requests.deny
    POST /v1/organizations/spend_limit_increase_requests/{spend_limit_increase_request_id}/deny
anthropic organization.spend_limits.increase_requests.list
    GET /v1/organizations/spend_limit_increase_requests
anthropic organization.spend_limits.increase_requests.retrieve
    GET /v1/organizations/spend_limit_increase_requests/{spend_limit_increase_request_id}
anthropic organization.users.list
    GET /v1/organizations/users
anthropic organization.users.remove
    DELETE /v1/organizations/users/{user_id}
anthropic organization.users.retrieve
    GET /v1/organizations/users/{user_id}
anthropic organization.users.update
    POST /v1/organizations/users/{user_id}
anthropic organization.workspaces.archive
    POST /v1/organizations/workspaces/{workspace_id}/archive
anthropic organization.workspaces.create
    POST /v1/organizations/workspaces
anthropic organization.workspaces.list
    GET /v1/organizations/workspaces
anthropic organization.workspaces.members.add
    POST /v1/organizations/workspaces/{workspace_id}/members
anthropic organization.workspaces.members.list
    GET /v1/organizations/workspaces/{workspace_id}/members
anthropic organization.workspaces.members.remove
    DELETE /v1/organizations/workspaces/{workspace_id}/members/{user_id}
anthropic organization.workspaces.members.retrieve
    GET /v1/organizations/workspaces/{workspace_id}/members/{user_id}
anthropic organization.workspaces.members.update
    POST /v1/organizations/workspaces/{workspace_id}/members/{user_id}
anthropic organization.workspaces.rate_limits.list
    GET /v1/organizations/workspaces/{workspace_id}/rate_limits
anthropic organization.workspaces.rate_limits.update
    POST /v1/organizations/workspaces/{workspace_id}/rate_limits/{rate_limit_id}
anthropic organization.workspaces.retrieve
    GET /v1/organizations/workspaces/{workspace_id}
anthropic organization.workspaces.service_accounts.add
    POST /v1/organizations/workspaces/{workspace_id}/service_accounts
anthropic organization.workspaces.service_accounts.list
    GET /v1/organizations/workspaces/{workspace_id}/service_accounts
anthropic organization.workspaces.service_accounts.remove
    DELETE /v1/organizations/workspaces/{workspace_id}/service_accounts/{service_account_id}
anthropic organization.workspaces.service_accounts.retrieve
    GET /v1/organizations/workspaces/{workspace_id}/service_accounts/{service_account_id}
anthropic organization.workspaces.service_accounts.update
    POST /v1/organizations/workspaces/{workspace_id}/service_accounts/{service_account_id}
anthropic organization.workspaces.update
    POST /v1/organizations/workspaces/{workspace_id}
anthropic patch
    PATCH /{path}
anthropic post
    POST /{path}
anthropic put
    PUT /{path}
anthropic request
    POST /{path}
anthropic skills.create
    POST /v1/skills
anthropic skills.delete
    DELETE /v1/skills/{skill_id}
anthropic skills.list
    GET /v1/skills
anthropic skills.retrieve
    GET /v1/skills/{skill_id}
anthropic skills.versions.create
    POST /v1/skills/{skill_id}/versions
anthropic skills.versions.delete
    DELETE /v1/skills/{skill_id}/versions/{version}
anthropic skills.versions.list
    GET /v1/skills/{skill_id}/versions
anthropic skills.versions.retrieve
    GET /v1/skills/{skill_id}/versions/{version}
anthropic user_profiles.action_urls.create
    POST /v1/user_profiles/{user_profile_id}/action_urls
anthropic user_profiles.create
    POST /v1/user_profiles
anthropic user_profiles.delete
    DELETE /v1/user_profiles/{user_profile_id}
anthropic user_profiles.list
    GET /v1/user_profiles
anthropic user_profiles.retrieve
    GET /v1/user_profiles/{user_profile_id}
anthropic user_profiles.update
    POST /v1/user_profiles/{user_profile_id}
anthropic with_middleware
anthropic with_middleware().post
    POST /{path}
anthropic with_options
openai admin.organization.admin_api_keys.create
    POST /v1/organization/admin_api_keys
openai admin.organization.admin_api_keys.delete
    DELETE /v1/organization/admin_api_keys/{key_id}
openai admin.organization.admin_api_keys.list
    GET /v1/organization/admin_api_keys
openai admin.organization.admin_api_keys.retrieve
    GET /v1/organization/admin_api_keys/{key_id}
openai admin.organization.audit_logs.list
    GET /v1/organization/audit_logs
openai admin.organization.certificates.activate
    POST /v1/organization/certificates/activate
openai admin.organization.certificates.create
    POST /v1/organization/certificates
openai admin.organization.certificates.deactivate
    POST /v1/organization/certificates/deactivate
openai admin.organization.certificates.delete
    DELETE /v1/organization/certificates/{certificate_id}
openai admin.organization.certificates.list
    GET /v1/organization/certificates
openai admin.organization.certificates.retrieve
    GET /v1/organization/certificates/{certificate_id}
openai admin.organization.certificates.update
    POST /v1/organization/certificates/{certificate_id}
openai admin.organization.data_retention.retrieve
    GET /v1/organization/data_retention
openai admin.organization.data_retention.update
    POST /v1/organization/data_retention
openai admin.organization.external_keys.create
    POST /v1/organization/external_keys
openai admin.organization.external_keys.delete
    DELETE /v1/organization/external_keys/{external_key_id}
openai admin.organization.external_keys.list
    GET /v1/organization/external_keys
openai admin.organization.external_keys.retrieve
    GET /v1/organization/external_keys/{external_key_id}
openai admin.organization.external_keys.validate
    POST /v1/organization/external_keys/{external_key_id}/validate
openai admin.organization.external_storage.create
    POST /v1/organization/external_storage
openai admin.organization.external_storage.delete
    DELETE /v1/organization/external_storage/{external_storage_id}
openai admin.organization.external_storage.list
    GET /v1/organization/external_storage
openai admin.organization.external_storage.retrieve
    GET /v1/organization/external_storage/{external_storage_id}
openai admin.organization.external_storage.validate
    POST /v1/organization/external_storage/{external_storage_id}/validate
openai admin.organization.groups.create
    POST /v1/organization/groups
openai admin.organization.groups.delete
    DELETE /v1/organization/groups/{group_id}
openai admin.organization.groups.list
    GET /v1/organization/groups
openai admin.organization.groups.retrieve
    GET /v1/organization/groups/{group_id}
openai admin.organization.groups.roles.create
    POST /v1/organization/groups/{group_id}/roles
openai admin.organization.groups.roles.delete
    DELETE /v1/organization/groups/{group_id}/roles/{role_id}
openai admin.organization.groups.roles.list
    GET /v1/organization/groups/{group_id}/roles
openai admin.organization.groups.roles.retrieve
    GET /v1/organization/groups/{group_id}/roles/{role_id}
openai admin.organization.groups.update
    POST /v1/organization/groups/{group_id}
openai admin.organization.groups.users.create
    POST /v1/organization/groups/{group_id}/users
openai admin.organization.groups.users.delete
    DELETE /v1/organization/groups/{group_id}/users/{user_id}
openai admin.organization.groups.users.list
    GET /v1/organization/groups/{group_id}/users
openai admin.organization.groups.users.retrieve
    GET /v1/organization/groups/{group_id}/users/{user_id}
openai admin.organization.invites.create
    POST /v1/organization/invites
openai admin.organization.invites.delete
    DELETE /v1/organization/invites/{invite_id}
openai admin.organization.invites.list
    GET /v1/organization/invites
openai admin.organization.invites.retrieve
    GET /v1/organization/invites/{invite_id}
openai admin.organization.projects.api_keys.delete
    DELETE /v1/organization/projects/{project_id}/api_keys/{api_key_id}
openai admin.organization.projects.api_keys.list
    GET /v1/organization/projects/{project_id}/api_keys
openai admin.organization.projects.api_keys.retrieve
    GET /v1/organization/projects/{project_id}/api_keys/{api_key_id}
openai admin.organization.projects.api_keys.update
    POST /v1/organization/projects/{project_id}/api_keys/{api_key_id}
openai admin.organization.projects.archive
    POST /v1/organization/projects/{project_id}/archive
openai admin.organization.projects.certificates.activate
    POST /v1/organization/projects/{project_id}/certificates/activate
openai admin.organization.projects.certificates.deactivate
    POST /v1/organization/projects/{project_id}/certificates/deactivate
openai admin.organization.projects.certificates.list
    GET /v1/organization/projects/{project_id}/certificates
openai admin.organization.projects.create
    POST /v1/organization/projects
openai admin.organization.projects.data_retention.retrieve
    GET /v1/organization/projects/{project_id}/data_retention
openai admin.organization.projects.data_retention.update
    POST /v1/organization/projects/{project_id}/data_retention
openai admin.organization.projects.groups.create
    POST /v1/organization/projects/{project_id}/groups
openai admin.organization.projects.groups.delete
    DELETE /v1/organization/projects/{project_id}/groups/{group_id}
openai admin.organization.projects.groups.list
    GET /v1/organization/projects/{project_id}/groups
openai admin.organization.projects.groups.retrieve
    GET /v1/organization/projects/{project_id}/groups/{group_id}
openai admin.organization.projects.groups.roles.create
    POST /v1/projects/{project_id}/groups/{group_id}/roles
openai admin.organization.projects.groups.roles.delete
    DELETE /v1/projects/{project_id}/groups/{group_id}/roles/{role_id}
openai admin.organization.projects.groups.roles.list
    GET /v1/projects/{project_id}/groups/{group_id}/roles
openai admin.organization.projects.groups.roles.retrieve
    GET /v1/projects/{project_id}/groups/{group_id}/roles/{role_id}
openai admin.organization.projects.hosted_tool_permissions.retrieve
    GET /v1/organization/projects/{project_id}/hosted_tool_permissions
openai admin.organization.projects.hosted_tool_permissions.update
    POST /v1/organization/projects/{project_id}/hosted_tool_permissions
openai admin.organization.projects.list
    GET /v1/organization/projects
openai admin.organization.projects.model_permissions.delete
    DELETE /v1/organization/projects/{project_id}/model_permissions
openai admin.organization.projects.model_permissions.retrieve
    GET /v1/organization/projects/{project_id}/model_permissions
openai admin.organization.projects.model_permissions.update
    POST /v1/organization/projects/{project_id}/model_permissions
openai admin.organization.projects.rate_limits.list_rate_limits
    GET /v1/organization/projects/{project_id}/rate_limits
openai admin.organization.projects.rate_limits.update_rate_limit
    POST /v1/organization/projects/{project_id}/rate_limits/{rate_limit_id}
openai admin.organization.projects.retrieve
    GET /v1/organization/projects/{project_id}
openai admin.organization.projects.roles.create
    POST /v1/projects/{project_id}/roles
openai admin.organization.projects.roles.delete
    DELETE /v1/projects/{project_id}/roles/{role_id}
openai admin.organization.projects.roles.list
    GET /v1/projects/{project_id}/roles
openai admin.organization.projects.roles.retrieve
    GET /v1/projects/{project_id}/roles/{role_id}
openai admin.organization.projects.roles.update
    POST /v1/projects/{project_id}/roles/{role_id}
openai admin.organization.projects.service_accounts.api_keys.create
    POST /v1/organization/projects/{project_id}/service_accounts/{service_account_id}/api_keys
openai admin.organization.projects.service_accounts.create
    POST /v1/organization/projects/{project_id}/service_accounts
openai admin.organization.projects.service_accounts.delete
    DELETE /v1/organization/projects/{project_id}/service_accounts/{service_account_id}
openai admin.organization.projects.service_accounts.list
    GET /v1/organization/projects/{project_id}/service_accounts
openai admin.organization.projects.service_accounts.retrieve
    GET /v1/organization/projects/{project_id}/service_accounts/{service_account_id}
openai admin.organization.projects.service_accounts.update
    POST /v1/organization/projects/{project_id}/service_accounts/{service_account_id}
openai admin.organization.projects.service_tier_settings.retrieve
    GET /v1/organization/projects/{project_id}/service_tier_settings
openai admin.organization.projects.service_tier_settings.update
    POST /v1/organization/projects/{project_id}/service_tier_settings
openai admin.organization.projects.spend_alerts.create
    POST /v1/organization/projects/{project_id}/spend_alerts
openai admin.organization.projects.spend_alerts.delete
    DELETE /v1/organization/projects/{project_id}/spend_alerts/{alert_id}
openai admin.organization.projects.spend_alerts.list
    GET /v1/organization/projects/{project_id}/spend_alerts
openai admin.organization.projects.spend_alerts.retrieve
    GET /v1/organization/projects/{project_id}/spend_alerts/{alert_id}
openai admin.organization.projects.spend_alerts.update
    POST /v1/organization/projects/{project_id}/spend_alerts/{alert_id}
openai admin.organization.projects.spend_limit.delete
    DELETE /v1/organization/projects/{project_id}/spend_limit
openai admin.organization.projects.spend_limit.retrieve
    GET /v1/organization/projects/{project_id}/spend_limit
openai admin.organization.projects.spend_limit.update
    POST /v1/organization/projects/{project_id}/spend_limit
openai admin.organization.projects.update
    POST /v1/organization/projects/{project_id}
openai admin.organization.projects.users.create
    POST /v1/organization/projects/{project_id}/users
openai admin.organization.projects.users.delete
    DELETE /v1/organization/projects/{project_id}/users/{user_id}
openai admin.organization.projects.users.list
    GET /v1/organization/projects/{project_id}/users
openai admin.organization.projects.users.retrieve
    GET /v1/organization/projects/{project_id}/users/{user_id}
openai admin.organization.projects.users.roles.create
    POST /v1/projects/{project_id}/users/{user_id}/roles
openai admin.organization.projects.users.roles.delete
    DELETE /v1/projects/{project_id}/users/{user_id}/roles/{role_id}
openai admin.organization.projects.users.roles.list
    GET /v1/projects/{project_id}/users/{user_id}/roles
openai admin.organization.projects.users.roles.retrieve
    GET /v1/projects/{project_id}/users/{user_id}/roles/{role_id}
openai admin.organization.projects.users.update
    POST /v1/organization/projects/{project_id}/users/{user_id}
openai admin.organization.roles.create
    POST /v1/organization/roles
openai admin.organization.roles.delete
    DELETE /v1/organization/roles/{role_id}
openai admin.organization.roles.list
    GET /v1/organization/roles
openai admin.organization.roles.retrieve
    GET /v1/organization/roles/{role_id}
openai admin.organization.roles.update
    POST /v1/organization/roles/{role_id}
openai admin.organization.spend_alerts.create
    POST /v1/organization/spend_alerts
openai admin.organization.spend_alerts.delete
    DELETE /v1/organization/spend_alerts/{alert_id}
openai admin.organization.spend_alerts.list
    GET /v1/organization/spend_alerts
openai admin.organization.spend_alerts.retrieve
    GET /v1/organization/spend_alerts/{alert_id}
openai admin.organization.spend_alerts.update
    POST /v1/organization/spend_alerts/{alert_id}
openai admin.organization.spend_limit.delete
    DELETE /v1/organization/spend_limit
openai admin.organization.spend_limit.retrieve
    GET /v1/organization/spend_limit
openai admin.organization.spend_limit.update
    POST /v1/organization/spend_limit
openai admin.organization.usage.audio_speeches
    GET /v1/organization/usage/audio_speeches
openai admin.organization.usage.audio_transcriptions
    GET /v1/organization/usage/audio_transcriptions
openai admin.organization.usage.code_interpreter_sessions
    GET /v1/organization/usage/code_interpreter_sessions
openai admin.organization.usage.completions
    GET /v1/organization/usage/completions
openai admin.organization.usage.costs
    GET /v1/organization/costs
openai admin.organization.usage.decisions
    GET /v1/organization/usage/decisions
openai admin.organization.usage.embeddings
    GET /v1/organization/usage/embeddings
openai admin.organization.usage.file_search_calls
    GET /v1/organization/usage/file_search_calls
openai admin.organization.usage.images
    GET /v1/organization/usage/images
openai admin.organization.usage.moderations
    GET /v1/organization/usage/moderations
openai admin.organization.usage.vector_stores
    GET /v1/organization/usage/vector_stores
openai admin.organization.usage.web_search_calls
    GET /v1/organization/usage/web_search_calls
openai admin.organization.users.delete
    DELETE /v1/organization/users/{user_id}
openai admin.organization.users.list
    GET /v1/organization/users
openai admin.organization.users.retrieve
    GET /v1/organization/users/{user_id}
openai admin.organization.users.roles.create
    POST /v1/organization/users/{user_id}/roles
openai admin.organization.users.roles.delete
    DELETE /v1/organization/users/{user_id}/roles/{role_id}
openai admin.organization.users.roles.list
    GET /v1/organization/users/{user_id}/roles
openai admin.organization.users.roles.retrieve
    GET /v1/organization/users/{user_id}/roles/{role_id}
openai admin.organization.users.update
    POST /v1/organization/users/{user_id}
openai admin.organization.workload_identity_providers.create
    POST /v1/organization/workload_identity_providers
openai admin.organization.workload_identity_providers.delete
    DELETE /v1/organization/workload_identity_providers/{workload_identity_provider_id}
openai admin.organization.workload_identity_providers.federation_rules.create
    POST /v1/organization/workload_identity_providers/{workload_identity_provider_id}/federation_rules
openai admin.organization.workload_identity_providers.federation_rules.delete
    DELETE /v1/organization/workload_identity_providers/{workload_identity_provider_id}/federation_rules/{workload_identity_federation_rule_id}
openai admin.organization.workload_identity_providers.federation_rules.list
    GET /v1/organization/workload_identity_providers/{workload_identity_provider_id}/federation_rules
openai admin.organization.workload_identity_providers.federation_rules.retrieve
    GET /v1/organization/workload_identity_providers/{workload_identity_provider_id}/federation_rules/{workload_identity_federation_rule_id}
openai admin.organization.workload_identity_providers.federation_rules.update
    POST /v1/organization/workload_identity_providers/{workload_identity_provider_id}/federation_rules/{workload_identity_federation_rule_id}
openai admin.organization.workload_identity_providers.list
    GET /v1/organization/workload_identity_providers
openai admin.organization.workload_identity_providers.retrieve
    GET /v1/organization/workload_identity_providers/{workload_identity_provider_id}
openai admin.organization.workload_identity_providers.update
    POST /v1/organization/workload_identity_providers/{workload_identity_provider_id}
openai audio.speech.create
    POST /v1/audio/speech
openai audio.transcriptions.create
    POST /v1/audio/transcriptions
openai audio.translations.create
    POST /v1/audio/translations
openai audio.voice_consents.create
    POST /v1/audio/voice_consents
openai audio.voice_consents.delete
    DELETE /v1/audio/voice_consents/{consent_id}
openai audio.voice_consents.list
    GET /v1/audio/voice_consents
openai audio.voice_consents.retrieve
    GET /v1/audio/voice_consents/{consent_id}
openai audio.voice_consents.update
    POST /v1/audio/voice_consents/{consent_id}
openai audio.voices.create
    POST /v1/audio/voices
openai audio.voices.delete
    DELETE /v1/audio/voices/{voice_id}
openai batches.cancel
    POST /v1/batches/{batch_id}/cancel
openai batches.create
    POST /v1/batches
openai batches.list
    GET /v1/batches
openai batches.retrieve
    GET /v1/batches/{batch_id}
openai beta.agents.automations.create
    POST /v1/agents/automations
openai beta.agents.automations.delete
    DELETE /v1/agents/automations/{automation_id}
openai beta.agents.automations.invocations.create
    POST /v1/agents/automations/{automation_id}/invocations
openai beta.agents.automations.invocations.list
    GET /v1/agents/automations/{automation_id}/invocations
openai beta.agents.automations.invocations.retrieve
    GET /v1/agents/automations/{automation_id}/invocations/{invocation_id}
openai beta.agents.automations.list
    GET /v1/agents/automations
openai beta.agents.automations.pause
    POST /v1/agents/automations/{automation_id}/pause
openai beta.agents.automations.resume
    POST /v1/agents/automations/{automation_id}/resume
openai beta.agents.automations.retrieve
    GET /v1/agents/automations/{automation_id}
openai beta.agents.automations.update
    POST /v1/agents/automations/{automation_id}
openai beta.agents.create
    POST /v1/agents
openai beta.agents.delete
    DELETE /v1/agents/{agent_id}
openai beta.agents.environments.create
    POST /v1/agents/environments
openai beta.agents.environments.files.create
    POST /v1/agents/environments/{environment_id}/files
openai beta.agents.environments.files.list
    GET /v1/agents/environments/{environment_id}/files
openai beta.agents.environments.files.prepare
    POST /v1/files
openai beta.agents.environments.files.prepare_directory
    POST /v1/files
openai beta.agents.environments.files.upload
    POST /v1/files
    POST /v1/agents/environments/{environment_id}/files
openai beta.agents.environments.list
    GET /v1/agents/environments
openai beta.agents.environments.retrieve
    GET /v1/agents/environments/{environment_id}
openai beta.agents.environments.templates.create
    POST /v1/agents/environments/templates
openai beta.agents.environments.templates.delete
    DELETE /v1/agents/environments/templates/{environment_template_id}
openai beta.agents.environments.templates.list
    GET /v1/agents/environments/templates
openai beta.agents.environments.templates.retrieve
    GET /v1/agents/environments/templates/{environment_template_id}
openai beta.agents.environments.templates.update
    POST /v1/agents/environments/templates/{environment_template_id}
openai beta.agents.list
    GET /v1/agents
openai beta.agents.retrieve
    GET /v1/agents/{agent_id}
openai beta.agents.sessions.artifacts.content
    GET /v1/agents/sessions/{session_id}/artifacts/{artifact_id}/content
openai beta.agents.sessions.artifacts.delete
    DELETE /v1/agents/sessions/{session_id}/artifacts/{artifact_id}
openai beta.agents.sessions.artifacts.for_result
openai beta.agents.sessions.artifacts.for_result().content
    GET /v1/agents/sessions/{session_id}/artifacts
openai beta.agents.sessions.artifacts.for_result().download
    GET /v1/agents/sessions/{session_id}/artifacts
openai beta.agents.sessions.artifacts.list
    GET /v1/agents/sessions/{session_id}/artifacts
openai beta.agents.sessions.artifacts.retrieve
    GET /v1/agents/sessions/{session_id}/artifacts/{artifact_id}
openai beta.agents.sessions.create
    POST /v1/agents/sessions
openai beta.agents.sessions.delete
    DELETE /v1/agents/sessions/{session_id}
openai beta.agents.sessions.events.create
    POST /v1/agents/sessions/{session_id}/events
openai beta.agents.sessions.events.stream
    GET /v1/agents/sessions/{session_id}/events
openai beta.agents.sessions.items.list
    GET /v1/agents/sessions/{session_id}/items
openai beta.agents.sessions.list
    GET /v1/agents/sessions
openai beta.agents.sessions.retrieve
    GET /v1/agents/sessions/{session_id}
openai beta.agents.sessions.stream
    GET /v1/agents/sessions/{session_id}
openai beta.agents.sessions.subagents.items.list
    GET /v1/agents/sessions/{session_id}/subagents/{subagent_id}/items
openai beta.agents.sessions.subagents.list
    GET /v1/agents/sessions/{session_id}/subagents
openai beta.agents.sessions.subagents.retrieve
    GET /v1/agents/sessions/{session_id}/subagents/{subagent_id}
openai beta.agents.sessions.subagents.turns.items.list
    GET /v1/agents/sessions/{session_id}/subagents/{subagent_id}/turns/{turn_id}/items
openai beta.agents.sessions.subagents.turns.list
    GET /v1/agents/sessions/{session_id}/subagents/{subagent_id}/turns
openai beta.agents.sessions.subagents.turns.retrieve
    GET /v1/agents/sessions/{session_id}/subagents/{subagent_id}/turns/{turn_id}
openai beta.agents.sessions.traces.list
    GET /v1/agents/sessions/{session_id}/traces
openai beta.agents.sessions.turns.items.list
    GET /v1/agents/sessions/{session_id}/turns/{turn_id}/items
openai beta.agents.sessions.turns.list
    GET /v1/agents/sessions/{session_id}/turns
openai beta.agents.sessions.turns.retrieve
    GET /v1/agents/sessions/{session_id}/turns/{turn_id}
openai beta.agents.sessions.update
    POST /v1/agents/sessions/{session_id}
openai beta.agents.update
    POST /v1/agents/{agent_id}
openai beta.agents.vaults.create
    POST /v1/vaults
openai beta.agents.vaults.credentials.create
    POST /v1/vaults/{vault_id}/credentials
openai beta.agents.vaults.credentials.delete
    DELETE /v1/vaults/{vault_id}/credentials/{credential_id}
openai beta.agents.vaults.credentials.list
    GET /v1/vaults/{vault_id}/credentials
openai beta.agents.vaults.credentials.retrieve
    GET /v1/vaults/{vault_id}/credentials/{credential_id}
openai beta.agents.vaults.credentials.update
    POST /v1/vaults/{vault_id}/credentials/{credential_id}
openai beta.agents.vaults.delete
    DELETE /v1/vaults/{vault_id}
openai beta.agents.vaults.list
    GET /v1/vaults
openai beta.agents.vaults.retrieve
    GET /v1/vaults/{vault_id}
openai beta.agents.vaults.update
    POST /v1/vaults/{vault_id}
openai beta.assistants.create
    POST /v1/assistants
openai beta.assistants.delete
    DELETE /v1/assistants/{assistant_id}
openai beta.assistants.list
    GET /v1/assistants
openai beta.assistants.retrieve
    GET /v1/assistants/{assistant_id}
openai beta.assistants.update
    POST /v1/assistants/{assistant_id}
openai beta.chat.completions.create
    POST /v1/chat/completions
openai beta.chat.completions.delete
    DELETE /v1/chat/completions/{completion_id}
openai beta.chat.completions.list
    GET /v1/chat/completions
openai beta.chat.completions.messages.list
    GET /v1/chat/completions/{completion_id}/messages
openai beta.chat.completions.parse
    POST /v1/chat/completions
openai beta.chat.completions.retrieve
    GET /v1/chat/completions/{completion_id}
openai beta.chat.completions.stream
    POST /v1/chat/completions
openai beta.chat.completions.update
    POST /v1/chat/completions/{completion_id}
openai beta.chatkit.sessions.cancel
    POST /v1/chatkit/sessions/{session_id}/cancel
openai beta.chatkit.sessions.create
    POST /v1/chatkit/sessions
openai beta.chatkit.threads.delete
    DELETE /v1/chatkit/threads/{thread_id}
openai beta.chatkit.threads.list
    GET /v1/chatkit/threads
openai beta.chatkit.threads.list_items
    GET /v1/chatkit/threads/{thread_id}/items
openai beta.chatkit.threads.retrieve
    GET /v1/chatkit/threads/{thread_id}
openai beta.realtime.connect
openai beta.realtime.sessions.create
    POST /v1/realtime/sessions
openai beta.realtime.transcription_sessions.create
    POST /v1/realtime/transcription_sessions
openai beta.responses.cancel
    POST /v1/responses/{response_id}/cancel
openai beta.responses.compact
    POST /v1/responses/compact
openai beta.responses.connect
openai beta.responses.create
    POST /v1/responses
openai beta.responses.delete
    DELETE /v1/responses/{response_id}
openai beta.responses.input_items.list
    GET /v1/responses/{response_id}/input_items
openai beta.responses.input_tokens.count
    POST /v1/responses/input_tokens
openai beta.responses.retrieve
    GET /v1/responses/{response_id}
openai beta.threads.create
    POST /v1/threads
openai beta.threads.create_and_run
    POST /v1/threads/runs
openai beta.threads.create_and_run_poll
    POST /v1/threads/runs
openai beta.threads.create_and_run_stream
    POST /v1/threads/runs
openai beta.threads.delete
    DELETE /v1/threads/{thread_id}
openai beta.threads.messages.create
    POST /v1/threads/{thread_id}/messages
openai beta.threads.messages.delete
    DELETE /v1/threads/{thread_id}/messages/{message_id}
openai beta.threads.messages.list
    GET /v1/threads/{thread_id}/messages
openai beta.threads.messages.retrieve
    GET /v1/threads/{thread_id}/messages/{message_id}
openai beta.threads.messages.update
    POST /v1/threads/{thread_id}/messages/{message_id}
openai beta.threads.retrieve
    GET /v1/threads/{thread_id}
openai beta.threads.runs.cancel
    POST /v1/threads/{thread_id}/runs/{run_id}/cancel
openai beta.threads.runs.create
    POST /v1/threads/{thread_id}/runs
openai beta.threads.runs.create_and_poll
    POST /v1/threads/{thread_id}/runs
    GET /v1/threads/{thread_id}/runs/{id}
openai beta.threads.runs.create_and_stream
    POST /v1/threads/{thread_id}/runs
openai beta.threads.runs.list
    GET /v1/threads/{thread_id}/runs
openai beta.threads.runs.poll
    GET /v1/threads/{thread_id}/runs/{run_id}
openai beta.threads.runs.retrieve
    GET /v1/threads/{thread_id}/runs/{run_id}
openai beta.threads.runs.steps.list
    GET /v1/threads/{thread_id}/runs/{run_id}/steps
openai beta.threads.runs.steps.retrieve
    GET /v1/threads/{thread_id}/runs/{run_id}/steps/{step_id}
openai beta.threads.runs.stream
    POST /v1/threads/{thread_id}/runs
openai beta.threads.runs.submit_tool_outputs
    POST /v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs
openai beta.threads.runs.submit_tool_outputs_and_poll
    POST /v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs
    GET /v1/threads/{thread_id}/runs/{id}
openai beta.threads.runs.submit_tool_outputs_stream
    POST /v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs
openai beta.threads.runs.update
    POST /v1/threads/{thread_id}/runs/{run_id}
openai beta.threads.update
    POST /v1/threads/{thread_id}
openai chat.completions.create
    POST /v1/chat/completions
openai chat.completions.delete
    DELETE /v1/chat/completions/{completion_id}
openai chat.completions.list
    GET /v1/chat/completions
openai chat.completions.messages.list
    GET /v1/chat/completions/{completion_id}/messages
openai chat.completions.parse
    POST /v1/chat/completions
openai chat.completions.retrieve
    GET /v1/chat/completions/{completion_id}
openai chat.completions.stream
    POST /v1/chat/completions
openai chat.completions.update
    POST /v1/chat/completions/{completion_id}
openai completions.create
    POST /v1/completions
openai containers.create
    POST /v1/containers
openai containers.delete
    DELETE /v1/containers/{container_id}
openai containers.files.content.retrieve
    GET /v1/containers/{container_id}/files/{file_id}/content
openai containers.files.create
    POST /v1/containers/{container_id}/files
openai containers.files.delete
    DELETE /v1/containers/{container_id}/files/{file_id}
openai containers.files.list
    GET /v1/containers/{container_id}/files
openai containers.files.retrieve
    GET /v1/containers/{container_id}/files/{file_id}
openai containers.list
    GET /v1/containers
openai containers.retrieve
    GET /v1/containers/{container_id}
openai content_provenance_checks.create
    POST /v1/content_provenance_checks
openai conversations.create
    POST /v1/conversations
openai conversations.delete
    DELETE /v1/conversations/{conversation_id}
openai conversations.items.create
    POST /v1/conversations/{conversation_id}/items
openai conversations.items.delete
    DELETE /v1/conversations/{conversation_id}/items/{item_id}
openai conversations.items.list
    GET /v1/conversations/{conversation_id}/items
openai conversations.items.retrieve
    GET /v1/conversations/{conversation_id}/items/{item_id}
openai conversations.retrieve
    GET /v1/conversations/{conversation_id}
openai conversations.update
    POST /v1/conversations/{conversation_id}
openai copy
openai copy().post
    POST /v1/{path}
openai decisions.create
    POST /v1/decisions
openai delete
    DELETE /v1/{path}
openai embeddings.create
    POST /v1/embeddings
openai evals.create
    POST /v1/evals
openai evals.delete
    DELETE /v1/evals/{eval_id}
openai evals.list
    GET /v1/evals
openai evals.retrieve
    GET /v1/evals/{eval_id}
openai evals.runs.cancel
    POST /v1/evals/{eval_id}/runs/{run_id}/cancel
openai evals.runs.create
    POST /v1/evals/{eval_id}/runs
openai evals.runs.delete
    DELETE /v1/evals/{eval_id}/runs/{run_id}
openai evals.runs.list
    GET /v1/evals/{eval_id}/runs
openai evals.runs.output_items.list
    GET /v1/evals/{eval_id}/runs/{run_id}/output_items
openai evals.runs.output_items.retrieve
    GET /v1/evals/{eval_id}/runs/{run_id}/output_items/{output_item_id}
openai evals.runs.retrieve
    GET /v1/evals/{eval_id}/runs/{run_id}
openai evals.update
    POST /v1/evals/{eval_id}
openai files.content
    GET /v1/files/{file_id}/content
openai files.create
    POST /v1/files
openai files.delete
    DELETE /v1/files/{file_id}
openai files.list
    GET /v1/files
openai files.retrieve
    GET /v1/files/{file_id}
openai files.retrieve_content
    GET /v1/files/{file_id}/content
openai files.wait_for_processing
    GET /v1/files/{id}
openai fine_tuning.alpha.graders.run
    POST /v1/fine_tuning/alpha/graders/run
openai fine_tuning.alpha.graders.validate
    POST /v1/fine_tuning/alpha/graders/validate
openai fine_tuning.checkpoints.permissions.create
    POST /v1/fine_tuning/checkpoints/{fine_tuned_model_checkpoint}/permissions
openai fine_tuning.checkpoints.permissions.delete
    DELETE /v1/fine_tuning/checkpoints/{fine_tuned_model_checkpoint}/permissions/{permission_id}
openai fine_tuning.checkpoints.permissions.list
    GET /v1/fine_tuning/checkpoints/{fine_tuned_model_checkpoint}/permissions
openai fine_tuning.checkpoints.permissions.retrieve
    GET /v1/fine_tuning/checkpoints/{fine_tuned_model_checkpoint}/permissions
openai fine_tuning.jobs.cancel
    POST /v1/fine_tuning/jobs/{fine_tuning_job_id}/cancel
openai fine_tuning.jobs.checkpoints.list
    GET /v1/fine_tuning/jobs/{fine_tuning_job_id}/checkpoints
openai fine_tuning.jobs.create
    POST /v1/fine_tuning/jobs
openai fine_tuning.jobs.list
    GET /v1/fine_tuning/jobs
openai fine_tuning.jobs.list_events
    GET /v1/fine_tuning/jobs/{fine_tuning_job_id}/events
openai fine_tuning.jobs.pause
    POST /v1/fine_tuning/jobs/{fine_tuning_job_id}/pause
openai fine_tuning.jobs.resume
    POST /v1/fine_tuning/jobs/{fine_tuning_job_id}/resume
openai fine_tuning.jobs.retrieve
    GET /v1/fine_tuning/jobs/{fine_tuning_job_id}
openai get
    GET /v1/{path}
openai get_api_list
    GET /v1/{path}
openai images.create_variation
    POST /v1/images/variations
openai images.edit
    POST /v1/images/edits
openai images.generate
    POST /v1/images/generations
openai live.connect
openai live.create
    POST /v1/live/sessions
openai live.forks.connect
openai live.sessions.accept
    POST /v1/live/sessions/{session_id}/accept
openai live.sessions.download_recording
    GET /v1/live/sessions/{session_id}/content
openai live.sessions.fork
    POST /v1/live/sessions/{session_id}/fork
openai live.sessions.hangup
    POST /v1/live/sessions/{session_id}/hangup
openai live.sessions.refer
    POST /v1/live/sessions/{session_id}/refer
openai live.sessions.reject
    POST /v1/live/sessions/{session_id}/reject
openai live.sideband.connect
openai models.delete
    DELETE /v1/models/gpt-4o-mini
openai models.list
    GET /v1/models
openai models.retrieve
    GET /v1/models/gpt-4o-mini
openai moderations.create
    POST /v1/moderations
openai patch
    PATCH /v1/{path}
openai post
    POST /v1/{path}
openai put
    PUT /v1/{path}
openai realtime.calls.accept
    POST /v1/realtime/calls/{call_id}/accept
openai realtime.calls.create
    POST /v1/realtime/calls
openai realtime.calls.hangup
    POST /v1/realtime/calls/{call_id}/hangup
openai realtime.calls.refer
    POST /v1/realtime/calls/{call_id}/refer
openai realtime.calls.reject
    POST /v1/realtime/calls/{call_id}/reject
openai realtime.client_secrets.create
    POST /v1/realtime/client_secrets
openai realtime.connect
openai realtime.translations.client_secrets.create
    POST /v1/realtime/translations/client_secrets
openai realtime.translations.connect
openai request
    POST /v1/{path}
openai responses.cancel
    POST /v1/responses/{response_id}/cancel
openai responses.compact
    POST /v1/responses/compact
openai responses.connect
openai responses.create
    POST /v1/responses
openai responses.delete
    DELETE /v1/responses/{response_id}
openai responses.input_items.list
    GET /v1/responses/{response_id}/input_items
openai responses.input_tokens.count
    POST /v1/responses/input_tokens
openai responses.parse
    POST /v1/responses
openai responses.retrieve
    GET /v1/responses/{response_id}
openai responses.stream
    POST /v1/responses
    GET /v1/responses/{response_id}
openai safety.alerts.retrieve
    GET /v1/safety/alerts/{id}
openai safety.cases.retrieve
    GET /v1/safety/cases/{id}
openai skills.content.retrieve
    GET /v1/skills/{skill_id}/content
openai skills.create
    POST /v1/skills
openai skills.delete
    DELETE /v1/skills/{skill_id}
openai skills.list
    GET /v1/skills
openai skills.retrieve
    GET /v1/skills/{skill_id}
openai skills.update
    POST /v1/skills/{skill_id}
openai skills.versions.content.retrieve
    GET /v1/skills/{skill_id}/versions/{version}/content
openai skills.versions.create
    POST /v1/skills/{skill_id}/versions
openai skills.versions.delete
    DELETE /v1/skills/{skill_id}/versions/{version}
openai skills.versions.list
    GET /v1/skills/{skill_id}/versions
openai skills.versions.retrieve
    GET /v1/skills/{skill_id}/versions/{version}
openai uploads.cancel
    POST /v1/uploads/{upload_id}/cancel
openai uploads.complete
    POST /v1/uploads/{upload_id}/complete
openai uploads.create
    POST /v1/uploads
openai uploads.parts.create
    POST /v1/uploads/{upload_id}/parts
openai uploads.upload_file_chunked
    POST /v1/uploads
    POST /v1/uploads/{id}/parts
    POST /v1/uploads/{id}/complete
openai vector_stores.create
    POST /v1/vector_stores
openai vector_stores.delete
    DELETE /v1/vector_stores/{vector_store_id}
openai vector_stores.file_batches.cancel
    POST /v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel
openai vector_stores.file_batches.create
    POST /v1/vector_stores/{vector_store_id}/file_batches
openai vector_stores.file_batches.create_and_poll
    POST /v1/vector_stores/{vector_store_id}/file_batches
    GET /v1/vector_stores/{vector_store_id}/file_batches/{id}
openai vector_stores.file_batches.list_files
    GET /v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/files
openai vector_stores.file_batches.poll
    GET /v1/vector_stores/{vector_store_id}/file_batches/{batch_id}
openai vector_stores.file_batches.retrieve
    GET /v1/vector_stores/{vector_store_id}/file_batches/{batch_id}
openai vector_stores.file_batches.upload_and_poll
    POST /v1/files
    POST /v1/vector_stores/{vector_store_id}/file_batches
    GET /v1/vector_stores/{vector_store_id}/file_batches/{id}
openai vector_stores.files.content
    GET /v1/vector_stores/{vector_store_id}/files/{file_id}/content
openai vector_stores.files.create
    POST /v1/vector_stores/{vector_store_id}/files
openai vector_stores.files.create_and_poll
    POST /v1/vector_stores/{vector_store_id}/files
    GET /v1/vector_stores/{vector_store_id}/files/{file_id}
openai vector_stores.files.delete
    DELETE /v1/vector_stores/{vector_store_id}/files/{file_id}
openai vector_stores.files.list
    GET /v1/vector_stores/{vector_store_id}/files
openai vector_stores.files.poll
    GET /v1/vector_stores/{vector_store_id}/files/{file_id}
openai vector_stores.files.retrieve
    GET /v1/vector_stores/{vector_store_id}/files/{file_id}
openai vector_stores.files.update
    POST /v1/vector_stores/{vector_store_id}/files/{file_id}
openai vector_stores.files.upload
    POST /v1/files
    POST /v1/vector_stores/{vector_store_id}/files
openai vector_stores.files.upload_and_poll
    POST /v1/files
    POST /v1/vector_stores/{vector_store_id}/files
    GET /v1/vector_stores/{vector_store_id}/files/{id}
openai vector_stores.list
    GET /v1/vector_stores
openai vector_stores.retrieve
    GET /v1/vector_stores/{vector_store_id}
openai vector_stores.search
    POST /v1/vector_stores/{vector_store_id}/search
openai vector_stores.update
    POST /v1/vector_stores/{vector_store_id}
openai videos.create
    POST /v1/videos
openai videos.create_and_poll
    POST /v1/videos
    GET /v1/videos/{id}
openai videos.create_character
    POST /v1/videos/characters
openai videos.delete
    DELETE /v1/videos/{video_id}
openai videos.download_content
    GET /v1/videos/{video_id}/content
openai videos.edit
    POST /v1/videos/edits
openai videos.extend
    POST /v1/videos/extensions
openai videos.get_character
    GET /v1/videos/characters/{character_id}
openai videos.list
    GET /v1/videos
openai videos.poll
    GET /v1/videos/{video_id}
openai videos.remix
    POST /v1/videos/{video_id}/remix
openai videos.retrieve
    GET /v1/videos/{video_id}
openai webhooks.create
    POST /v1/webhook_endpoints
openai webhooks.delete
    DELETE /v1/webhook_endpoints/{webhook_endpoint_id}
openai webhooks.event_types.list
    GET /v1/webhook_event_types
openai webhooks.list
    GET /v1/webhook_endpoints
openai webhooks.retrieve
    GET /v1/webhook_endpoints/{webhook_endpoint_id}
openai webhooks.rotate_secret
    POST /v1/webhook_endpoints/{webhook_endpoint_id}/rotate_secret
openai webhooks.test
    POST /v1/webhook_endpoints/{webhook_endpoint_id}/test
openai webhooks.update
    POST /v1/webhook_endpoints/{webhook_endpoint_id}
openai with_options
"""
EXPECTED = sdk.parse_table(EXPECTED_TEXT)

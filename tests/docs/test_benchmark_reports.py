"""The scripts that write the benchmark pages: where they write, what they refuse.

``benchmarks/report.py`` writes docs/benchmarks.md; ``benchmarks/peers/run.py`` writes the
peers page, chart and README table into a build folder, and over the tracked copies only
when asked. Neither benchmark is run here: the contenders are replaced or absent.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load(path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Import a script by its path, under a name of its own (gone after the test)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def report(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # as when run as a script
    return load(ROOT / "benchmarks" / "report.py", "capledger_benchmarks_report", monkeypatch)


@pytest.fixture
def peers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ModuleType]:
    """benchmarks/peers/run.py, its tracked outputs redirected to copies in ``tmp_path``."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks" / "peers"))
    module = load(
        ROOT / "benchmarks" / "peers" / "run.py", "capledger_benchmarks_peers_run", monkeypatch
    )
    tracked = tmp_path / "tracked"
    tracked.mkdir()
    for name, source in {"DOC": module.DOC, "CHART": module.CHART, "README": module.README}.items():
        copy = tracked / source.name
        copy.write_bytes(source.read_bytes())
        monkeypatch.setattr(module, name, copy)
    monkeypatch.setattr(module, "ENVS", tmp_path / "no-envs")  # no contender can run
    yield module
    sys.modules.pop("harness", None)


def snapshot(module: ModuleType) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in (module.DOC, module.CHART, module.README)}


def run_main(module: ModuleType, monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", ["run.py", *args])
    module.main()


def test_report_keeps_code_blocks_of_included_pages(report: ModuleType) -> None:
    block = "```bash\n# a comment, not a heading\n```"
    page = f"## Section\n\n{block}\n### Sub"
    assert report.demote(page) == f"### Section\n\n{block}\n#### Sub"


def test_report_refuses_a_page_naming_paths_outside_the_repository(
    report: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    page = tmp_path / "benchmarks-x.md"
    monkeypatch.setattr(report, "ROOT", tmp_path)
    for foreign in ("see DESIGN.md section 4", "PYTHONPATH=/tmp/perf/src"):
        page.write_text(f"# X\n\n{foreign}\n", encoding="utf-8")
        monkeypatch.setattr(report, "INCLUDED", [("X", page)])
        with pytest.raises(SystemExit, match="speak only of this repository"):
            report.included_pages()
    page.write_text("# X\n\nbuild/before/src and docs/stores.md\n", encoding="utf-8")
    assert report.included_pages() == [("X", "(from `benchmarks-x.md`)\n\nbuild/before/src and "
                                        "docs/stores.md")]  # fmt: skip


def test_peers_write_to_the_build_folder_only(
    peers: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    before = snapshot(peers)
    out = tmp_path / "build"
    run_main(peers, monkeypatch, "--only", "capledger", "--runs", "1", "--out", str(out))
    assert (out / "benchmarks-peers.md").is_file()
    assert "environment .envs/capledger was not built" in (out / "benchmarks-peers.md").read_text()
    assert snapshot(peers) == before


def test_peers_update_the_tracked_page_when_asked(
    peers: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    before = snapshot(peers)
    out = tmp_path / "build"
    args = ("--only", "capledger", "--runs", "1", "--out", str(out), "--write")
    run_main(peers, monkeypatch, *args)
    after = snapshot(peers)
    assert after[peers.DOC.name] == (out / "benchmarks-peers.md").read_bytes()
    # No contender ran: no chart to copy, and a partial run never touches the README.
    assert after[peers.CHART.name] == before[peers.CHART.name]
    assert after[peers.README.name] == before[peers.README.name]


def test_peers_drop_the_database_even_when_a_contender_fails(
    peers: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dropped: list[bool] = []

    def fail(*args: Any) -> dict[str, Any]:
        raise RuntimeError("a contender crashed")

    monkeypatch.setattr(peers, "run_contender", fail)
    monkeypatch.setattr(peers, "drop_bench_database", lambda: dropped.append(True))
    with pytest.raises(RuntimeError, match="a contender crashed"):
        run_main(peers, monkeypatch, "--out", str(tmp_path / "build"))
    assert dropped == [True]


def test_peers_readme_block_names_commit_and_machine(peers: ModuleType) -> None:
    row = peers.Row("capledger sqlite://", "asyncio", [50], [peers.harness.CAP_USD], [0.1], 0, "")
    summary = "\n".join(peers.readme_summary([row], []))
    assert "at capledger `" in summary and peers.machine()[0] in summary
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index(peers.README_START) : readme.index(peers.README_END)]
    assert "at capledger `" in block and " on " in block and "cores" in block


def test_the_benchmarks_page_includes_the_other_pages_as_they_stand(report: ModuleType) -> None:
    """docs/benchmarks.md ends with the other benchmark pages as they are now (after editing
    one, run ``.venv/bin/python benchmarks/report.py --pages-only``)."""
    page = report.DOC.read_text(encoding="utf-8")
    assert page == report.measured_part(page) + report.included(report.included_pages()), (
        "docs/benchmarks.md is stale: run .venv/bin/python benchmarks/report.py --pages-only"
    )

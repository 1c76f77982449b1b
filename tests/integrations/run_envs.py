"""Build the integration environments and run each integration suite where it can run.

LiteLLM pins ``openai<3`` while ``llm`` (under datasette-llm) needs ``openai>=3``, so no
single environment holds every SDK. This script builds one virtual environment per lock
file (``.venv-litellm`` from ``requirements/litellm.txt`` and ``.venv-llm`` from
``requirements/llm.txt``, at the repository root; ``.venv-*`` is gitignored), installs
capledger editable over it, runs the suites listed for it, and fails if any of them was
skipped there (a skip would mean an SDK did not install). The environments are built
concurrently (installing is mostly waiting on the network), the suites run one after the
other.

Usage (from the repository root)::

    python tests/integrations/run_envs.py            # build or update, then test
    python tests/integrations/run_envs.py --fresh    # rebuild the environments
    python tests/integrations/run_envs.py --list     # print which env runs which suite

Every suite runs in at least one environment (checked at start); the main ``.venv`` also
runs the OpenAI, Anthropic, cap and guard suites when ``openai`` and ``anthropic`` are
installed there.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import venv
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

#: name -> (the packages its lock adds to capledger's, suites to run there); the versions
#: are pinned in requirements/NAME.txt, compiled from requirements/NAME.in by `make lock`.
#: A suite is a test file of this folder, or a page of docs/ whose examples need the SDK
#: (the main environment skips those examples; here a skip fails the run).
ENVIRONMENTS: dict[str, tuple[list[str], list[str]]] = {
    "litellm": (
        ["openai", "anthropic", "litellm"],
        [
            "test_integrations_openai.py",
            "test_integrations_anthropic.py",
            "test_integrations_cap.py",
            "test_integrations_guard.py",
            "test_integrations_litellm.py",
            "docs/integrations/litellm.md",
        ],
    ),
    "llm": (
        ["openai", "anthropic", "llm", "datasette-llm", "datasette-llm-accountant"],
        [
            "test_integrations_openai.py",
            "test_integrations_anthropic.py",
            "test_integrations_cap.py",
            "test_integrations_datasette.py",
            "docs/integrations/datasette.md",
        ],
    ),
}


#: Suites whose SDKs are in the main environment's own lock (openai, anthropic), at the
#: versions they pin: the main run covers them, and no environment repeats them.
MAIN_ONLY: frozenset[str] = frozenset(
    {
        "test_transport_rules.py",
        "test_wire_cap.py",
        "test_sdk_surface_audit.py",
        "test_finalizers.py",
    }
)


def check_coverage() -> None:
    """Every test file of this folder runs in at least one environment."""
    suites = {path.name for path in HERE.glob("test_*.py")}
    covered = {suite for _packages, listed in ENVIRONMENTS.values() for suite in listed}
    covered |= MAIN_ONLY
    pages = {suite for suite in covered if suite.startswith("docs/")}
    absent = sorted(page for page in pages if not (ROOT / page).is_file())
    if absent:
        raise SystemExit(f"pages that do not exist: {', '.join(absent)}")
    missing = sorted(suites - covered)
    if missing:
        raise SystemExit(f"suites that no environment runs: {', '.join(missing)}")


def python_of(env: Path) -> Path:
    return env / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def build(name: str, *, fresh: bool) -> Path:
    """Create ``.venv-NAME`` and install its lock file, then capledger over it (no deps)."""
    env = ROOT / f".venv-{name}"
    if fresh and env.exists():
        shutil.rmtree(env)
    if not env.exists():
        print(f"[{name}] creating {env}", flush=True)
        venv.create(env, with_pip=True)
    lock = ROOT / "requirements" / f"{name}.txt"
    print(f"[{name}] installing {lock.relative_to(ROOT)} and capledger", flush=True)
    # The uv that `make` installed beside this interpreter; pip when there is none.
    uv = Path(sys.executable).parent / "uv"
    if uv.exists():
        install = [str(uv), "pip", "install", "--quiet", "--python", str(python_of(env))]
    else:
        install = [str(python_of(env)), "-m", "pip", "install", "--quiet"]
    subprocess.run([*install, "--require-hashes", "-r", str(lock)], check=True)
    subprocess.run([*install, "--no-deps", "-e", str(ROOT)], check=True)
    return env


def versions(env: Path, packages: list[str]) -> str:
    names = ["httpx", *packages]
    code = (
        "import importlib.metadata as m, sys\n"
        "for n in sys.argv[1:]:\n"
        "    try: print(f'{n}=={m.version(n)}', end=' ')\n"
        "    except m.PackageNotFoundError: pass\n"
    )
    done = subprocess.run(
        [str(python_of(env)), "-c", code, *names], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def run(name: str, env: Path, suites: list[str]) -> None:
    report = env / "integrations-junit.xml"
    print(f"[{name}] running {', '.join(suites)}", flush=True)
    done = subprocess.run(
        [
            str(python_of(env)),
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
            *[str(ROOT / suite if suite.startswith("docs/") else HERE / suite) for suite in suites],
        ],
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"[{name}] tests failed (exit {done.returncode})")
    suite = ElementTree.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    skipped = int(suite.get("skipped", 0))
    if skipped:
        raise SystemExit(f"[{name}] {skipped} test(s) skipped: a package did not install")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fresh", action="store_true", help="rebuild the environments")
    parser.add_argument("--list", action="store_true", help="print the plan and stop")
    parser.add_argument("--only", choices=sorted(ENVIRONMENTS), help="one environment")
    options = parser.parse_args()
    check_coverage()
    for name, (packages, suites) in ENVIRONMENTS.items():
        print(f"env .venv-{name}: {' '.join(packages)} -> {' '.join(suites)}")
    if options.list:
        return
    chosen = {
        name: plan
        for name, plan in ENVIRONMENTS.items()
        if not options.only or name == options.only
    }
    with ThreadPoolExecutor(max_workers=len(chosen)) as pool:
        envs = {name: pool.submit(build, name, fresh=options.fresh) for name in chosen}
        for name, (packages, suites) in chosen.items():
            env = envs[name].result()
            print(f"[{name}] {versions(env, packages)}", flush=True)
            run(name, env, suites)
    print("all integration environments passed")


if __name__ == "__main__":
    main()

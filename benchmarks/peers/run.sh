#!/usr/bin/env bash
# One command: build one virtual environment per contender under benchmarks/peers/.envs/
# (the peers pin conflicting versions of openai), run every contender on the same workload,
# write the results to build/bench-peers/ (benchmarks-peers.md, img/peers.png, the README's
# block); with --write, also to docs/benchmarks-peers.md, docs/img/peers.png and README.md.
# The PostgreSQL database capledger_bench is dropped at the end, even when a contender fails.
#
#   benchmarks/peers/run.sh [--runs 3] [--only litellm,capledger] [--write] [--out DIR]
#
# PYTHON picks the interpreter for the environments (default python3.11). An environment is
# rebuilt only when its lock file changed. CAPLEDGER_BENCH_PG overrides the
# PostgreSQL server (default postgresql://postgres@127.0.0.1:5432; database capledger_bench).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
ENVS="$HERE/.envs"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
mkdir -p "$ENVS"

# build ENV REQUIREMENTS [editable project...]: installs locks/REQUIREMENTS (pinned and hashed,
# compiled from REQUIREMENTS by `make lock`), then the editable projects without their deps.
build() {
    local name="$1" lock="$HERE/locks/$2"
    shift 2
    local env="$ENVS/$name" stamp
    stamp="$(sha256sum < "$lock" | cut -c1-16) $*"
    if [[ -x "$env/bin/python" && -f "$env/.stamp" && "$(cat "$env/.stamp")" == "$stamp" ]]; then
        return
    fi
    echo "== building .envs/$name"
    rm -rf "$env"
    "$PYTHON" -m venv "$env"
    local pip=("$env/bin/python" -m pip install --disable-pip-version-check)
    if "${pip[@]}" -r "$lock" > "$env/install.log" 2>&1 &&
        { [[ $# -eq 0 ]] || "${pip[@]}" --no-deps "$@" >> "$env/install.log" 2>&1; }; then
        echo "$stamp" > "$env/.stamp"
    else
        # Keep going: run.py reports this contender as "could not be installed" with the error.
        grep -v "^WARNING: Location" "$env/install.log" | tail -n 5 > "$env/.install-error"
        echo "   could not install .envs/$name (see $env/install.log)"
    fi
}

build report requirements-report.txt
build litellm requirements-litellm.txt
build shekel requirements-shekel.txt
build tokenguard requirements-tokenguard.txt
build token-budget requirements-token-budget.txt
build datasette requirements-datasette.txt
build capledger requirements-capledger.txt -e "$ROOT"

exec "$ENVS/report/bin/python" "$HERE/run.py" "$@"

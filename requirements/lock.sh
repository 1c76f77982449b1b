#!/usr/bin/env bash
# Compile every lock file: pinned versions with hashes, for Python 3.11 (the oldest Python
# capledger supports). Run through `make lock`, which installs the pinned uv this needs. A pin
# stays unless it no longer fits; UPGRADE=1 moves every pin to the newest release that fits.
#
#   requirements/core.txt      capledger's own dependencies (the demo)
#   requirements/dev.txt       the main test environment: [dev,postgres,prices,tokenizers]
#   requirements/litellm.txt   the LiteLLM environment (openai<3), see litellm.in
#   requirements/llm.txt       the llm / Datasette environment (openai>=3), see llm.in
#   requirements/mutation.txt  dev + the mutation tester, see mutation.in
#   benchmarks/peers/locks/    one per peer environment, from benchmarks/peers/requirements-*.txt
set -euo pipefail
cd "$(dirname "$0")/.."
UV="${UV:-uv}"
export UV_CUSTOM_COMPILE_COMMAND="make lock"

compile() {
    "$UV" pip compile --quiet --python-version 3.11 --generate-hashes ${UPGRADE:+--upgrade} "$@"
}

TEST_EXTRAS=(--extra dev --extra prices --extra tokenizers)
compile pyproject.toml -o requirements/core.txt
compile pyproject.toml "${TEST_EXTRAS[@]}" --extra postgres -o requirements/dev.txt
compile pyproject.toml "${TEST_EXTRAS[@]}" requirements/litellm.in -o requirements/litellm.txt
compile pyproject.toml "${TEST_EXTRAS[@]}" requirements/llm.in -o requirements/llm.txt
compile pyproject.toml "${TEST_EXTRAS[@]}" --extra postgres requirements/mutation.in \
    -o requirements/mutation.txt

# The capledger peer installs this checkout (with --no-deps) over its own dependencies.
compile pyproject.toml --extra postgres -o benchmarks/peers/locks/requirements-capledger.txt
for pins in benchmarks/peers/requirements-*.txt; do
    name="$(basename "$pins")"
    [[ "$name" == requirements-capledger.txt ]] && continue
    compile "$pins" -o "benchmarks/peers/locks/$name"
done

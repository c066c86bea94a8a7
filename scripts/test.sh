#!/usr/bin/env bash
# The test command from the README: lints, then every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOPPEL_CACHE="${DOPPEL_CACHE:-$HOME/.cache/doppel}"

cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace

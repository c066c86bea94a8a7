#!/usr/bin/env bash
# The heavy workload tests (video at 360p/480p, the 100 MB copy) with the default ones: builds the
# guest (cached), then runs crates/doppel/tests/workloads.rs including its #[ignore]d tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOPPEL_CACHE="${DOPPEL_CACHE:-$HOME/.cache/doppel}"
eval "$(bash guest/build.sh)"
export DOPPEL_GUEST_DIR="$guest_dir"
cargo test -p doppel --release --test workloads -- --include-ignored --test-threads 1 "$@"

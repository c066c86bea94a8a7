#!/usr/bin/env bash
# The test command from the README: build the guest (cached by its inputs), lint, then run every
# test of the workspace. Linux-level tests boot the guest built here.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOPPEL_CACHE="${DOPPEL_CACHE:-$HOME/.cache/doppel}"

eval "$(bash guest/build.sh)"   # kernel=... initramfs=...
export DOPPEL_GUEST_DIR
DOPPEL_GUEST_DIR="$(dirname "$kernel")"

# The test profile for clippy too, so build scripts (HiGHS is C++ built from source) run once.
cargo clippy --workspace --all-targets --profile test --quiet -- -D warnings
cargo test --workspace

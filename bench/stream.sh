#!/usr/bin/env bash
# Streaming figures: what a new replica must fetch before it shows the host's current screen
# (cold with demand paging, with prefetching, and a second session with the page cache),
# steady-state traffic, lag, and the host's snapshot stall. Real TCP on localhost, the real
# Linux guest from ~/.cache/doppel/guest/current (or $DOPPEL_GUEST_DIR). Prints a Markdown table.
#
#   bench/stream.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test -p doppel-stream --test figures -- --ignored --nocapture --test-threads 1 2>/dev/null \
  | grep -E '^\||^host:'

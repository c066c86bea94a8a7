#!/usr/bin/env bash
# netem benchmark: added latency and CPU per MB of `doppel netem relay` (unshaped) against
# `socat TCP-LISTEN:...,fork,reuseaddr TCP:...`, side by side in one run, as ratios.
#
#   bench/netem.sh                  # 2000 round trips of 64 B; 512 MiB paced at 1 Gbit/s
#   bench/netem.sh --bytes 1GiB --pace unlimited
#
# Extra arguments go to `doppel netem bench` (see its --help). Needs socat (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v socat >/dev/null || { echo "bench/netem.sh: socat is missing; run scripts/setup.sh" >&2; exit 1; }
cargo build --release -q -p doppel
exec target/release/doppel netem bench "$@"

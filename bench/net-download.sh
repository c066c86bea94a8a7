#!/usr/bin/env bash
# Guest download throughput on the user-mode network, doppel against QEMU 7.2 (both libslirp):
# the guest's busybox wget fetches a file from `python3 -m http.server` on the host.
#   bench/net-download.sh [--mb 32] [--runs 3]     (flags go to bench/net-download.py)
# Uses the guest in ${DOPPEL_CACHE:-~/.cache/doppel} (built by guest/build.sh) and a release build
# of doppel.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash guest/build.sh)"
cargo build --release --quiet --bin doppel
exec python3 bench/net-download.py --kernel "$kernel" --initrd "$initramfs" \
  --doppel "$(pwd)/target/release/doppel" "$@"

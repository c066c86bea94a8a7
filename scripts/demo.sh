#!/usr/bin/env bash
# The main job on a fresh machine: install what is missing, build the guest (cached by its inputs),
# build doppel, and boot the guest with its console on this terminal (Ctrl-A x quits).
# Extra arguments go to `doppel vm run`, e.g. `bash scripts/demo.sh --max-instructions 2000000000`.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOPPEL_CACHE="${DOPPEL_CACHE:-$HOME/.cache/doppel}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$DOPPEL_CACHE/target}"

bash scripts/setup.sh >&2
eval "$(bash guest/build.sh)"   # sets kernel=... initramfs=...
cargo build --release --quiet --bin doppel
echo "booting $kernel with $initramfs (Ctrl-A x quits)" >&2
exec "$CARGO_TARGET_DIR/release/doppel" vm run --kernel "$kernel" --initrd "$initramfs" "$@"

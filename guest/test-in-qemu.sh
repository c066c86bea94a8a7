#!/usr/bin/env bash
# Builds the guest (cached) and checks it under QEMU virt: boot to init and power-off, cpuloop and
# fpuloop against host reference results, evread with injected keys and tablet events, diskwrite
# into a disk image, fbpattern without and with a simple-framebuffer. Exits non-zero on failure.
# Extra arguments go to guest/tools/qemutest.py (e.g. --only evread, --keep DIR).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
eval "$(bash "$here/build.sh")"
python3 "$here/tools/qemutest.py" "$kernel" "$initramfs" "$@"

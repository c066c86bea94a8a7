#!/usr/bin/env bash
# The QEMU anchor for doppel's machine speed: boots the cached guest (guest/build.sh) in Debian's
# qemu-system-riscv64 (virt, 256 MB, OpenSBI fw_dynamic) and reports, as medians of several runs,
# the wall time to `doppel-init: reached` and to power-off, and the guest MIPS of cpuloop (10^9
# integer instructions) and fpuloop (10^8 FP-heavy instructions), plain TCG and -icount shift=0.
#
# Any further arguments go to bench/guest-bench.py, so another machine runs side by side:
#   bench/qemu-anchor.sh --emu 'doppel=doppel run --kernel {kernel} --initrd {initrd} --append {append}'
#   bench/qemu-anchor.sh --workload boot --runs 9
# Machine-readable `run ...`/`median ...` lines come first on stdout, then a table.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
eval "$(bash "$here/../guest/build.sh")"
exec python3 "$here/guest-bench.py" --kernel "$kernel" --initrd "$initramfs" --qemu "$@"

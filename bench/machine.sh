#!/usr/bin/env bash
# Machine speed, side by side with the anchor: doppel's machine and Debian's qemu-system-riscv64
# (plain TCG and -icount shift=0) boot the same guest (guest/build.sh) and run the same programs.
# Reports boot to init / power-off, guest MIPS of cpuloop (integer, in registers) and fpuloop
# (floating point), the ratios doppel/QEMU, and the peak resident memory of a 256 MiB guest.
#   bench/machine.sh [--runs N] [--loop-runs N]    (extra flags go to bench/guest-bench.py)
set -euo pipefail
cd "$(dirname "$0")/.."
export DOPPEL_CACHE="${DOPPEL_CACHE:-$HOME/.cache/doppel}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$DOPPEL_CACHE/target}"
eval "$(bash guest/build.sh)"
cargo build --release --quiet --bin doppel
doppel="$CARGO_TARGET_DIR/release/doppel"

out=$(mktemp)
python3 bench/guest-bench.py --kernel "$kernel" --initrd "$initramfs" --qemu \
  --emu "doppel=$doppel vm run --kernel {kernel} --initrd {initrd} --append {append}" \
  --cpuloop-iters 20000000 --fpuloop-iters 2000000 "$@" | tee "$out"

echo
echo "ratios (doppel / anchor; time: lower is better for doppel below 1, MIPS: higher is better above 1)"
python3 - "$out" <<'PY'
import re, sys
med = {}
for line in open(sys.argv[1]):
    if line.startswith("median "):
        kv = dict(re.findall(r"(\w+)=([^\s]+)", line))
        med[(kv["emu"], kv["workload"])] = kv
for anchor in ("qemu", "qemu-icount0"):
    for wl, key in (("boot", "init_s"), ("boot", "end_s"), ("boot", "cpu_s"), ("cpuloop", "mips"), ("fpuloop", "mips")):
        d, a = med.get(("doppel", wl), {}), med.get((anchor, wl), {})
        if key in d and key in a and float(a[key]) > 0:
            print(f"  {wl:<8} {key:<7} doppel {float(d[key]):9.3f}  {anchor:<13} {float(a[key]):9.3f}  ratio {float(d[key]) / float(a[key]):6.2f}")
PY

echo
echo "peak resident memory, 256 MiB guest booted to power-off:"
for label in doppel qemu; do
  if [ $label = doppel ]; then cmd=("$doppel" vm run --kernel "$kernel" --initrd "$initramfs" --append "console=ttyS0 doppel.run=poweroff")
  else cmd=(qemu-system-riscv64 -M virt -m 256M -nographic -bios /usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin -kernel "$kernel" -initrd "$initramfs" -append "console=ttyS0 doppel.run=poweroff"); fi
  python3 -c '
import resource, subprocess, sys
subprocess.run(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
print(f"  {sys.argv[1]:<8} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:8.1f} MiB")
' "$label" "${cmd[@]}"
done
rm -f "$out"

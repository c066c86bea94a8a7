#!/usr/bin/env bash
# Record/replay figures (issue 3), side by side with QEMU 7.2's own record/replay as the anchor.
#
#   bench/replay.sh            # everything (about 10 minutes on two loaded cores)
#   bench/replay.sh --no-qemu  # doppel only
#   bench/replay.sh --qemu-only
#   bench/replay.sh --stream   # also bench/stream.sh (new replica's state, steady traffic)
#
# doppel (crates/replay/tests/figures.rs, release-like `test` profile, the real guest from
# ~/.cache/doppel/guest/current or $DOPPEL_GUEST_DIR):
#   * log growth in KB per guest second for idle, a CPU loop, a fork loop, a 100 MB copy on ext2
#     (snapshotted and output-replayed disk), TCP receive in 4-byte reads (libslirp), typing and a
#     framebuffer animation, beside the paper's Table 1; every recording is replayed in full;
#   * the asynchronous snapshot of a running 256 MiB guest: rounds, total, stall;
#   * record overhead against the same run unrecorded; replay vs record speed on an idle guest.
# QEMU (qemu-system-riscv64 -icount shift=auto,rr=record|replay, same kernel and initramfs):
#   log growth for idle and a CPU loop, as the difference of a short and a long run (bytes of the
#   rr file over guest seconds from the kernel's power-down timestamp), record overhead against the
#   same -icount run without rr, and replay vs record speed on an idle guest.
# Prints Markdown table rows.
set -euo pipefail
cd "$(dirname "$0")/.."
qemu=1 stream=0 doppel=1
for a in "$@"; do
  case "$a" in
    --no-qemu) qemu=0 ;;
    --qemu-only) doppel=0 ;;
    --stream) stream=1 ;;
    *) echo "unknown argument $a" >&2; exit 2 ;;
  esac
done
guest="${DOPPEL_GUEST_DIR:-${DOPPEL_CACHE:-$HOME/.cache/doppel}/guest/current}"

if [ "$doppel" = 1 ]; then
  echo "## doppel"
  cargo test -p doppel-replay --test figures -- --ignored --nocapture --test-threads 1 2>/dev/null \
    | sed 's/^test [a-z_]* \.\.\. //' | grep -E '^\|' | awk '!seen[$0]++'
fi

if [ "$qemu" = 1 ]; then
  fw=/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  # qemu_run MODE APPEND -> "wall_s guest_s rr_bytes"; MODE is record, replay or plain.
  qemu_run() {
    local mode="$1" append="$2" icount="shift=auto"
    case "$mode" in
      record) icount="shift=auto,rr=record,rrfile=$tmp/rr.bin" ;;
      replay) icount="shift=auto,rr=replay,rrfile=$tmp/rr.bin" ;;
    esac
    local t0 t1 out
    t0=$(date +%s.%N)
    out=$(timeout 600 qemu-system-riscv64 -M virt -m 256M -nographic -net none -bios "$fw" \
      -kernel "$guest/Image" -initrd "$guest/initramfs.cpio" -append "console=ttyS0 panic=-1 $append" \
      -icount "$icount" </dev/null 2>&1)
    t1=$(date +%s.%N)
    local guest_s bytes=0
    guest_s=$(printf '%s\n' "$out" | grep -o '\[ *[0-9.]*\] reboot: Power down' | grep -o '[0-9][0-9.]*' | head -1)
    [ -f "$tmp/rr.bin" ] && bytes=$(stat -c %s "$tmp/rr.bin")
    echo "$(echo "$t1 - $t0" | bc -l) ${guest_s:-0} $bytes"
  }
  # rate SHORT LONG: KB per guest second of the rr log between two runs.
  rate() {
    read -r _ g1 b1 <<<"$(qemu_run record "$1")"
    rm -f "$tmp/rr.bin"
    read -r _ g2 b2 <<<"$(qemu_run record "$2")"
    rm -f "$tmp/rr.bin"
    echo "scale=2; ($b2 - $b1) / 1000 / ($g2 - $g1)" | bc -l
  }
  echo
  echo "## QEMU $(qemu-system-riscv64 --version | head -1 | grep -o 'version [0-9.]*') record/replay (-icount shift=auto,rr=record), same kernel and initramfs, 256 MiB"
  echo "| run | guest s | rr log bytes | KB per guest s | record wall s | other |"
  echo "| --- | --- | --- | --- | --- | --- |"
  kbs() { echo "scale=2; $1 / 1000 / $2" | bc -l; }
  # Boot, sleep 10 s, power off; then its replay.
  rm -f "$tmp/rr.bin"
  read -r rw rg rb <<<"$(qemu_run record 'doppel.run=poweroff doppel.hold=10')"
  read -r pw _ _ <<<"$(qemu_run replay 'doppel.run=poweroff doppel.hold=10')"
  echo "| boot, sleep 10, power-off | $rg | $rb | $(kbs "$rb" "$rg") | $rw | replay $pw s: $(echo "scale=2; $rw / $pw" | bc -l)× the record speed (QEMU replays idle time in real time) |"
  # Idle rate alone: the difference of a 2 s and a 12 s sleep.
  read -r _ g1 b1 <<<"$(qemu_run record 'doppel.run=poweroff doppel.hold=2')"
  rm -f "$tmp/rr.bin"
  read -r _ g2 b2 <<<"$(qemu_run record 'doppel.run=poweroff doppel.hold=12')"
  rm -f "$tmp/rr.bin"
  echo "| idle alone (sleep 12 minus sleep 2) | $(echo "$g2 - $g1" | bc -l) | $((b2 - b1)) | $(kbs "$((b2 - b1))" "$(echo "$g2 - $g1" | bc -l)") | | |"
  # Boot + cpuloop 2*10^8: log rate and record overhead against the same -icount run without rr.
  best() { sort -n | head -1; }
  plain=$(for _ in 1 2 3; do qemu_run plain 'doppel.run=cpuloop doppel.args=20000000' | cut -d' ' -f1; done | best)
  rec=$(for _ in 1 2 3; do rm -f "$tmp/rr.bin"; qemu_run record 'doppel.run=cpuloop doppel.args=20000000' | tr ' ' ,; done | sort -n | head -1)
  IFS=, read -r cw cg cb <<<"$rec"
  echo "| boot, cpuloop 2·10^8 instructions, power-off (best of 3) | $cg | $cb | $(kbs "$cb" "$cg") | $cw | plain -icount $plain s: record overhead $(echo "scale=4; ($cw / $plain - 1) * 100" | bc -l | xargs printf '%.1f')% |"
fi

if [ "$stream" = 1 ]; then
  echo
  echo "## stream (bench/stream.sh)"
  bash bench/stream.sh
fi

#!/usr/bin/env python3
"""Times doppel's guest on one or more emulators, side by side: boot to init, power-off, and the
guest MIPS of cpuloop/fpuloop (known instruction counts), timed on the host from console lines.

usage: guest-bench.py --kernel IMAGE --initrd CPIO --emu LABEL=TEMPLATE [--emu ...]
                      [--workload boot|cpuloop|fpuloop ...] [--runs N] [--loop-runs N]
                      [--cpuloop-iters N] [--fpuloop-iters N] [--timeout S]

TEMPLATE is the emulator's command; {kernel}, {initrd} and {append} are replaced in each word,
e.g. --emu 'qemu=qemu-system-riscv64 -M virt ... -kernel {kernel} -initrd {initrd} -append {append}'
--qemu adds the two QEMU anchors (plain TCG and -icount shift=0).

Output: one machine-readable line per run and per median, then a table:
  run emu=L workload=W n=I status=ok init_s=.. end_s=.. [loop_s=.. mips=.. guest_mips=..]
  median emu=L workload=W runs=N init_s=.. end_s=.. [loop_s=.. mips=..]
init_s: start to `doppel-init: reached`; end_s: start to the emulator's exit (guest power-off);
cpu_s: the emulator's user+system CPU seconds (less sensitive to a busy host than wall time);
loop_s: `NAME: start` to `NAME: done`; mips: the loop's instructions / loop_s.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "guest", "tools"))
import guestrun  # noqa: E402

QEMU_BASE = ("qemu-system-riscv64 -M virt -m 256M -nographic -bios " + guestrun.FW_DYNAMIC +
             " -kernel {kernel} -initrd {initrd} -append {append}")
QEMU_ANCHORS = [("qemu", QEMU_BASE), ("qemu-icount0", QEMU_BASE + " -icount shift=0")]


def measure(template: str, kernel: str, initrd: str, workload: str, iters: int,
            timeout: float) -> dict:
    append = "console=ttyS0 doppel.run=" + ("poweroff" if workload == "boot" else
                                            f"{workload} doppel.args={iters}")
    argv = guestrun.expand_template(template, kernel, initrd, append)
    res = guestrun.run(argv, timeout)
    out: dict = {"status": "ok"}
    init = res.first("doppel-init: reached")
    ran = res.first(f"doppel-run: {'poweroff' if workload == 'boot' else workload} exit=0")
    if res.timed_out:
        out["status"] = "timeout"
    elif init is None or ran is None:
        out["status"] = "no-marker"
    if init:
        out["init_s"] = init[0]
    out["end_s"] = res.exit_s
    out["cpu_s"] = res.cpu_s
    if workload != "boot":
        start, done = res.first(f"{workload}: start"), res.first(f"{workload}: done")
        if start and done:
            insns = int(re.search(r"instructions=(\d+)", start[1]).group(1))
            out["loop_s"] = done[0] - start[0]
            out["mips"] = insns / out["loop_s"] / 1e6 if out["loop_s"] > 0 else 0.0
            gm = re.search(r"guest_mips=([\d.]+)", done[1])
            if gm:
                out["guest_mips"] = float(gm.group(1))
        elif out["status"] == "ok":
            out["status"] = "no-marker"
    if out["status"] != "ok":
        out["tail"] = " | ".join(l for _, l in res.lines[-5:])
    return out


def fmt(d: dict) -> str:
    parts = []
    for k, v in d.items():
        if k == "tail":
            continue
        parts.append(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}")
    return " ".join(parts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--emu", action="append", default=[], metavar="LABEL=TEMPLATE")
    ap.add_argument("--qemu", action="store_true", help="add the QEMU anchors")
    ap.add_argument("--workload", action="append", choices=["boot", "cpuloop", "fpuloop"])
    ap.add_argument("--runs", type=int, default=5, help="runs per emulator for boot")
    ap.add_argument("--loop-runs", type=int, default=3, help="runs per emulator for the loops")
    ap.add_argument("--cpuloop-iters", type=int, default=100_000_000, help="10 insns each")
    ap.add_argument("--fpuloop-iters", type=int, default=10_000_000, help="10 insns each")
    ap.add_argument("--timeout", type=float, default=600.0, help="per run, seconds")
    args = ap.parse_args()

    emus = list(QEMU_ANCHORS) if args.qemu else []
    for e in args.emu:
        label, sep, template = e.partition("=")
        if not sep or not label or not template.strip():
            ap.error(f"--emu wants LABEL=TEMPLATE, got {e!r}")
        emus.append((label, template))
    if not emus:
        ap.error("no emulator: give --qemu and/or --emu LABEL=TEMPLATE")
    workloads = args.workload or ["boot", "cpuloop", "fpuloop"]

    medians: list[tuple[str, str, dict]] = []
    failures = 0
    for workload in workloads:
        runs = args.runs if workload == "boot" else args.loop_runs
        iters = args.cpuloop_iters if workload == "cpuloop" else args.fpuloop_iters
        for label, template in emus:
            good = []
            for n in range(1, runs + 1):
                r = measure(template, args.kernel, args.initrd, workload, iters, args.timeout)
                print(f"run emu={label} workload={workload} n={n} {fmt(r)}", flush=True)
                if r["status"] == "ok":
                    good.append(r)
                else:
                    failures += 1
                    print(f"# {label} {workload} run {n} failed ({r['status']}): {r.get('tail', '')}",
                          file=sys.stderr)
            med: dict = {"runs": len(good)}
            for key in ("init_s", "end_s", "cpu_s", "loop_s", "mips", "guest_mips"):
                vals = [g[key] for g in good if key in g]
                if vals:
                    med[key] = statistics.median(vals)
            print(f"median emu={label} workload={workload} {fmt(med)}", flush=True)
            medians.append((label, workload, med))

    def cell(m: dict, key: str, spec: str) -> str:
        width = int(spec.split(".")[0])
        return format(m[key], spec) if key in m else "-".rjust(width)

    print()
    print(f"{'emulator':<16} {'workload':<9} {'runs':>4} {'init s':>8} {'end s':>8} "
          f"{'cpu s':>8} {'loop s':>8} {'MIPS':>8}")
    for label, workload, m in medians:
        print(f"{label:<16} {workload:<9} {m['runs']:>4} {cell(m, 'init_s', '8.3f')} "
              f"{cell(m, 'end_s', '8.3f')} {cell(m, 'cpu_s', '8.3f')} {cell(m, 'loop_s', '8.3f')} "
              f"{cell(m, 'mips', '8.1f')}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

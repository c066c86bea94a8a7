#!/usr/bin/env python3
"""Download throughput in the guest, doppel's machine against QEMU, both on libslirp user networking.

The host serves one file of --mb MiB (random bytes) with `python3 -m http.server` on 127.0.0.1;
each emulator boots the same guest (guest/build.sh) with `doppel.run=download
doppel.args=http://10.0.2.2:PORT/file.bin`, the guest's busybox wget fetches it into tmpfs and
prints its sha256. Throughput = file size / (host time of the console line `download: fetched`
minus that of `download: start`), both stamped by the host as the lines arrive. The sha256 must
match, or the run counts as failed.

usage: net-download.py --kernel IMAGE --initrd CPIO --doppel PATH [--mb 32] [--runs 3]

QEMU: Debian's qemu-system-riscv64 7.2, virt, 256 MiB, OpenSBI fw_dynamic,
`-netdev user,id=n0 -device virtio-net-device,netdev=n0` (virtio-mmio: the guest kernel has no
PCI; the same libslirp backend as `-nic user`). doppel: `doppel vm run --net user`.
Prints `run ...` and `median ...` key=value lines, then the ratio doppel/QEMU.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "guest", "tools"))
import guestrun  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(argv: list[str], size: int, sha: str, timeout: float) -> dict:
    res = guestrun.run(argv, timeout=timeout)
    start = res.first("download: start")
    fetched = res.first("download: fetched")
    got_sha = res.first("download: sha256")
    if not (start and fetched and got_sha):
        return {"status": "failed", "why": "markers missing", "tail": res.text()[-2000:]}
    if got_sha[1].split()[-1] != sha:
        return {"status": "failed", "why": f"sha256 {got_sha[1].split()[-1]} != {sha}"}
    if f"fetched {size} bytes" not in fetched[1]:
        return {"status": "failed", "why": fetched[1]}
    secs = fetched[0] - start[0]
    return {"status": "ok", "secs": secs, "mbps": size / secs / 1e6, "boot_s": start[0],
            "cpu_s": res.cpu_s}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--doppel", required=True, help="the doppel binary")
    ap.add_argument("--mb", type=int, default=32, help="file size in MiB (default 32)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=1200)
    args = ap.parse_args()

    size = args.mb << 20
    with tempfile.TemporaryDirectory() as www:
        data = os.urandom(size)
        with open(os.path.join(www, "file.bin"), "wb") as f:
            f.write(data)
        sha = hashlib.sha256(data).hexdigest()
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                                   "--directory", www, str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1)
            append = f"console=ttyS0 doppel.run=download doppel.args=http://10.0.2.2:{port}/file.bin"
            emus = [
                ("qemu", guestrun.qemu_argv(args.kernel, args.initrd, append, [
                    "-netdev", "user,id=n0", "-device", "virtio-net-device,netdev=n0",
                    "-global", "virtio-mmio.force-legacy=false"])),
                ("doppel", [args.doppel, "vm", "run", "--kernel", args.kernel, "--initrd", args.initrd,
                            "--append", append, "--net", "user"]),
            ]
            results: dict[str, list[float]] = {}
            for n in range(args.runs):
                for label, argv in emus:
                    r = measure(argv, size, sha, args.timeout)
                    kv = " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                                  for k, v in r.items() if k != "tail")
                    print(f"run emu={label} n={n} mb={args.mb} {kv}", flush=True)
                    if r["status"] != "ok":
                        print(r.get("tail", ""), file=sys.stderr)
                        continue
                    results.setdefault(label, []).append(r["mbps"])
        finally:
            server.terminate()
            server.wait()
    med = {label: statistics.median(v) for label, v in results.items()}
    for label, m in med.items():
        print(f"median emu={label} mb={args.mb} runs={len(results[label])} mbps={m:.3f}")
    if "qemu" in med and "doppel" in med:
        print(f"ratio doppel/qemu download throughput = {med['doppel'] / med['qemu']:.3f}")
    return 0 if len(med) == 2 else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Functional checks of doppel's guest under QEMU `virt` (the anchor machine).

usage: qemutest.py KERNEL INITRAMFS [--only NAME ...] [--keep DIR]

Boots the guest once per check and verifies the console markers and the programs' effects:
boot (init reached, clean power-off), cpuloop and fpuloop (results equal guest/tools/reference.py),
evread (keys and tablet events injected over QMP), diskwrite (the block lands in the disk image),
fbpattern without a framebuffer (clean failure) and with a simple-framebuffer added to QEMU's
device tree (the pattern read back from guest RAM over QMP). Exit status 1 if any check fails.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guestrun  # noqa: E402
import reference  # noqa: E402

BOOT_TIMEOUT = 60.0
FB_BASE, FB_W, FB_H = 0x8F000000, 640, 480
FB_STRIDE = FB_W * 4


class Check:
    def __init__(self, name: str):
        self.name = name
        self.failures: list[str] = []
        self.info = ""

    def expect(self, ok: bool, what: str) -> None:
        if not ok:
            self.failures.append(what)


def boot(args, append: str, extra: list[str] | None = None, timeout: float = BOOT_TIMEOUT,
         on_line=None) -> guestrun.RunResult:
    argv = guestrun.qemu_argv(args.kernel, args.initramfs, "console=ttyS0 " + append, extra)
    return guestrun.run(argv, timeout, on_line=on_line)


def common(c: Check, res: guestrun.RunResult, run: str, want_exit: int = 0) -> None:
    c.expect(not res.timed_out, f"QEMU did not exit within the timeout ({res.exit_s:.1f} s)")
    c.expect(res.first("doppel-init: reached") is not None, "no 'doppel-init: reached' line")
    c.expect(res.first(f"doppel-run: {run} exit={want_exit}") is not None,
             f"no 'doppel-run: {run} exit={want_exit}' line")
    c.expect(res.returncode == 0, f"QEMU exit status {res.returncode}")


def check_boot(args, tmp) -> tuple[Check, guestrun.RunResult]:
    c = Check("boot")
    res = boot(args, "doppel.run=poweroff")
    common(c, res, "poweroff")
    t = res.first("doppel-init: reached")
    c.info = f"init at {t[0]:.3f} s, exit at {res.exit_s:.3f} s" if t else ""
    return c, res


def check_loop(name: str, iters: int):
    def f(args, tmp):
        c = Check(name)
        res = boot(args, f"doppel.run={name} doppel.args={iters}")
        common(c, res, name)
        want = f"0x{getattr(reference, name)(iters):016x}"
        done = res.first(f"{name}: done")
        c.expect(done is not None and f"result={want}" in done[1],
                 f"{name} result differs from reference.py ({want}): {done[1] if done else 'no done line'}")
        c.info = f"{iters} iterations, result {want}"
        return c, res
    return f


def check_evread(args, tmp) -> tuple[Check, guestrun.RunResult]:
    c = Check("evread")
    sock = os.path.join(tmp, "qmp.sock")
    sent = []

    def on_line(line, _res):
        if line.strip() == "evread: ready" and not sent:
            sent.append(True)
            q = guestrun.Qmp(sock)
            for key, down in (("a", True), ("a", False), ("b", True), ("b", False)):
                q.cmd("input-send-event", events=[
                    {"type": "key", "data": {"down": down, "key": {"type": "qcode", "data": key}}}])
            q.cmd("input-send-event", events=[
                {"type": "abs", "data": {"axis": "x", "value": 1000}},
                {"type": "abs", "data": {"axis": "y", "value": 2000}}])
            q.close()

    res = boot(args, "doppel.run=evread doppel.args=6",
               # virtio-input is a virtio 1.0 device; QEMU virt offers legacy virtio-mmio by default.
               ["-global", "virtio-mmio.force-legacy=false",
                "-device", "virtio-keyboard-device", "-device", "virtio-tablet-device",
                "-qmp", f"unix:{sock},server=on,wait=off"], on_line=on_line)
    common(c, res, "evread")
    text = res.text().splitlines()
    want = ["key 30 1", "key 30 0", "key 48 1", "key 48 0", "abs 0 1000", "abs 1 2000"]
    got = [l.strip() for l in text if l.strip().split(" ")[0] in ("key", "btn", "abs", "rel")]
    c.expect(got == want, f"events {got}, want {want}")
    c.expect(sum("evread: open" in l for l in text) == 2, "evread did not open two input devices")
    c.info = f"{len(got)} events"
    return c, res


def check_diskwrite(args, tmp) -> tuple[Check, guestrun.RunResult]:
    c = Check("diskwrite")
    img = os.path.join(tmp, "disk.img")
    size, sector = 1 << 20, 24
    with open(img, "wb") as f:
        f.truncate(size)
    res = boot(args, f"doppel.run=diskwrite doppel.args={sector}",
               ["-drive", f"file={img},if=none,id=d0,format=raw",
                "-device", "virtio-blk-device,drive=d0"])
    common(c, res, "diskwrite")
    data = open(img, "rb").read()
    block = b"doppel-disk-test".ljust(4096, b"\0")
    off = sector * 512
    c.expect(data[off:off + 4096] == block, f"disk image lacks the block at byte {off}")
    c.expect(data[:off].count(0) == off and data[off + 4096:].count(0) == size - off - 4096,
             "disk image changed outside the written block")
    c.expect(res.first("read back ok") is not None, "no 'read back ok' line")
    c.info = f"block found at sector {sector}"
    return c, res


def check_fb_missing(args, tmp) -> tuple[Check, guestrun.RunResult]:
    c = Check("fbpattern-no-fb")
    res = boot(args, "doppel.run=fbpattern")
    common(c, res, "fbpattern", want_exit=2)
    c.expect(res.first("fbpattern: cannot open /dev/fb0") is not None,
             "fbpattern did not report the missing /dev/fb0")
    c.info = "clean failure without a framebuffer"
    return c, res


def fb_dtb(tmp: str) -> str:
    """QEMU virt's own device tree plus a simple-framebuffer in reserved RAM (as doppel's
    machine describes its framebuffer)."""
    raw = os.path.join(tmp, "virt.dtb")
    subprocess.run(["qemu-system-riscv64", "-M", f"virt,dumpdtb={raw}", "-m", "256M",
                    "-nographic", "-bios", guestrun.FW_DYNAMIC], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dts = subprocess.run(["dtc", "-q", "-I", "dtb", "-O", "dts", raw], check=True,
                         capture_output=True, text=True).stdout
    size = FB_STRIDE * FB_H
    extra = f"""
	reserved-memory {{
		#address-cells = <2>;
		#size-cells = <2>;
		ranges;
		doppelfb@{FB_BASE:x} {{ reg = <0x0 0x{FB_BASE:x} 0x0 0x{size:x}>; no-map; }};
	}};
	framebuffer@{FB_BASE:x} {{
		compatible = "simple-framebuffer";
		reg = <0x0 0x{FB_BASE:x} 0x0 0x{size:x}>;
		width = <{FB_W}>;
		height = <{FB_H}>;
		stride = <{FB_STRIDE}>;
		format = "x8r8g8b8";
	}};
}};
"""
    cut = dts.rstrip().rfind("};")
    dts = dts[:cut] + extra
    out = os.path.join(tmp, "virt-fb.dtb")
    subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", out, "-"], input=dts, check=True,
                   text=True)
    return out


def check_fb(args, tmp) -> tuple[Check, guestrun.RunResult]:
    c = Check("fbpattern")
    dtb = fb_dtb(tmp)
    sock = os.path.join(tmp, "qmp-fb.sock")
    dump = os.path.join(tmp, "fb.raw")
    dumped = []

    def on_line(line, _res):
        if line.startswith("doppel-run: fbpattern") and not dumped:
            dumped.append(True)
            q = guestrun.Qmp(sock)
            # The guest holds (doppel.hold) before powering off; stop it and read its RAM.
            q.cmd("stop")
            q.cmd("pmemsave", val=FB_BASE, size=FB_STRIDE * FB_H, filename=dump)
            try:
                q.cmd("quit")
            except (ConnectionError, OSError):
                pass  # QEMU may close the socket before replying
            q.close()

    res = boot(args, "doppel.run=fbpattern doppel.hold=30",
               ["-dtb", dtb, "-qmp", f"unix:{sock},server=on,wait=off"],
               on_line=on_line)
    common(c, res, "fbpattern")
    c.expect(res.first(f"fbpattern: done {FB_W}x{FB_H}") is not None,
             f"no 'fbpattern: done {FB_W}x{FB_H}' line")
    if os.path.exists(dump):
        r = subprocess.run([sys.executable, reference.__file__, "fbcheck", dump, str(FB_W),
                            str(FB_H), str(FB_STRIDE)], capture_output=True, text=True)
        c.expect(r.returncode == 0, f"framebuffer contents: {r.stdout.strip()}")
    else:
        c.expect(False, "framebuffer was not dumped")
    c.info = f"{FB_W}x{FB_H} pattern verified in guest RAM at 0x{FB_BASE:x}"
    return c, res


CHECKS = {
    "boot": check_boot,
    "cpuloop": check_loop("cpuloop", 200000),
    "fpuloop": check_loop("fpuloop", 20000),
    "evread": check_evread,
    "diskwrite": check_diskwrite,
    "fbpattern-no-fb": check_fb_missing,
    "fbpattern": check_fb,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kernel")
    ap.add_argument("initramfs")
    ap.add_argument("--only", action="append", choices=sorted(CHECKS), help="run only these")
    ap.add_argument("--keep", help="directory for console logs and images (default: temporary)")
    args = ap.parse_args()
    failed = 0
    with tempfile.TemporaryDirectory(prefix="doppel-qemutest-") as tmpdir:
        tmp = args.keep or tmpdir
        os.makedirs(tmp, exist_ok=True)
        for name in args.only or list(CHECKS):
            c, res = CHECKS[name](args, tmp)
            log = os.path.join(tmp, f"{name}.console.log")
            with open(log, "w") as f:
                f.write(" ".join(res.argv) + "\n")
                f.writelines(f"[{t:8.3f}] {l}\n" for t, l in res.lines)
            if c.failures:
                failed += 1
                print(f"FAIL {name} ({res.exit_s:.2f} s)")
                for what in c.failures:
                    print(f"     {what}")
                print("     console (last 15 lines):")
                for _, l in res.lines[-15:]:
                    print(f"     | {l}")
            else:
                print(f"ok   {name} ({res.exit_s:.2f} s): {c.info}")
    print(f"{len(args.only or CHECKS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

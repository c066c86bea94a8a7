"""Runs an emulator on doppel's guest and timestamps its console lines (host monotonic clock).

Shared by guest/tools/qemutest.py (functional checks) and bench/guest-bench.py (timings). The
emulator is any command that boots the guest and writes its console to stdout: QEMU now, doppel's
own machine later. A callback sees each line as it arrives, so a test can inject input (QMP) when
the guest prints a marker.
"""
from __future__ import annotations

import json
import os
import resource
import shlex
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

FW_DYNAMIC = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin"


def qemu_argv(kernel: str, initrd: str, append: str, extra: list[str] | None = None,
              mem: str = "256M") -> list[str]:
    """The QEMU anchor command line (Debian's QEMU 7.2, OpenSBI 1.1 fw_dynamic)."""
    return ["qemu-system-riscv64", "-M", "virt", "-m", mem, "-nographic",
            "-bios", FW_DYNAMIC, "-kernel", kernel, "-initrd", initrd,
            "-append", append] + list(extra or [])


def expand_template(template: str, kernel: str, initrd: str, append: str) -> list[str]:
    """Splits an emulator command template like a shell would and fills {kernel}, {initrd},
    {append} in each word (so an append string with spaces stays one argument)."""
    words = shlex.split(template)
    if not words:
        raise ValueError("empty emulator command template")
    return [w.replace("{kernel}", kernel).replace("{initrd}", initrd).replace("{append}", append)
            for w in words]


@dataclass
class RunResult:
    argv: list[str]
    lines: list[tuple[float, str]] = field(default_factory=list)  # (seconds since start, text)
    exit_s: Optional[float] = None  # seconds since start when the process exited
    returncode: Optional[int] = None
    timed_out: bool = False
    cpu_s: Optional[float] = None  # user+system CPU seconds of the emulator (all its threads)

    def first(self, needle: str) -> Optional[tuple[float, str]]:
        for t, line in self.lines:
            if needle in line:
                return t, line
        return None

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)


def run(argv: list[str], timeout: float,
        on_line: Callable[[str, "RunResult"], None] | None = None,
        stop_when: Callable[[str], bool] | None = None) -> RunResult:
    """Starts argv, timestamps each stdout line, calls on_line(line, result) from the reader
    thread, and waits for exit (or kills the process after timeout seconds, or once
    stop_when(line) is true for a line)."""
    res = RunResult(argv=argv)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    stop = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        buf = b""
        while True:
            chunk = proc.stdout.read1(65536)
            if not chunk:
                break
            now = time.monotonic() - t0
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = raw.decode("utf-8", "replace").rstrip("\r")
                res.lines.append((now, line))
                if on_line is not None:
                    try:
                        on_line(line, res)
                    except Exception as e:  # report, never hang the run
                        res.lines.append((now, f"[harness] on_line failed: {e!r}"))
                        stop.set()
                if stop_when is not None and stop_when(line):
                    stop.set()
        if buf:
            res.lines.append((time.monotonic() - t0, buf.decode("utf-8", "replace")))

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    deadline = t0 + timeout
    while proc.poll() is None:
        if stop.is_set():
            proc.kill()
            break
        if time.monotonic() > deadline:
            res.timed_out = True
            proc.kill()
            break
        time.sleep(0.002)
    rc = proc.wait()
    res.exit_s = time.monotonic() - t0
    # Children are run one at a time, so the growth of the children's usage is this process's.
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    res.cpu_s = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    th.join(timeout=5)
    res.returncode = rc
    return res


class Qmp:
    """A minimal QMP client over a unix socket (QEMU's `-qmp unix:PATH,server=on,wait=off`)."""

    def __init__(self, path: str, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        self.sock.settimeout(timeout)
        self.buf = b""
        self._recv()  # greeting
        self.cmd("qmp_capabilities")

    def _recv(self) -> dict:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("QMP socket closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, execute: str, **arguments) -> dict:
        msg = {"execute": execute}
        if arguments:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._recv()
            if "event" in reply:
                continue
            if "error" in reply:
                raise RuntimeError(f"QMP {execute} failed: {reply['error']}")
            return reply

    def close(self) -> None:
        self.sock.close()


def remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass

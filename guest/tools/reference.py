#!/usr/bin/env python3
"""Host-side reference results for doppel's guest test programs (guest/programs/).

  reference.py cpuloop ITERATIONS      prints the result cpuloop prints for ITERATIONS
  reference.py fpuloop ITERATIONS      same for fpuloop (IEEE 754 binary64, round to nearest even)
  reference.py fbcheck FILE W H STRIDE checks a raw x8r8g8b8 dump against fbpattern's pattern

Each computation mirrors the assembly loop of the program instruction by instruction, so an
emulator (QEMU or doppel) that prints a different result computed something wrong.
"""
import math
import struct
import sys
from fractions import Fraction

MASK = (1 << 64) - 1


def cpuloop(iters: int) -> int:
    x, acc, k = 0x9E3779B97F4A7C15, 0, 0xD1B54A32D192ED03
    for _ in range(iters):
        x ^= (x << 13) & MASK
        x ^= x >> 7
        x ^= (x << 17) & MASK
        acc = (acc + ((x * k) & MASK)) & MASK
    return x ^ acc


def fma(a: float, b: float, c: float) -> float:
    """a*b + c with a single rounding (exact rational arithmetic, then one correct rounding)."""
    return float(Fraction(a) * Fraction(b) + Fraction(c))


def bits(d: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", d))[0]


def fpuloop(iters: int) -> int:
    x, s, t, u, v = 1.0, 0.0, 0.0, 0.0, 0.0
    a, b, c = 0.999, 0.5, 3.0
    for _ in range(iters):
        x = fma(x, a, b)  # fmadd.d
        s = s + x * x  # fmul.d, fadd.d
        t = t - x / c  # fdiv.d, fsub.d
        u = u + math.sqrt(s)  # fsqrt.d, fadd.d
        v = fma(x, c, -v)  # fmsub.d: x*c - v
    return bits(x) ^ bits(s) ^ bits(t) ^ bits(u) ^ bits(v)


def fbcheck(path: str, w: int, h: int, stride: int) -> int:
    data = open(path, "rb").read()
    if len(data) < stride * h:
        print(f"fbcheck: {path} has {len(data)} bytes, want at least {stride * h}")
        return 1
    bad = 0
    for y in range(h):
        row = data[y * stride : y * stride + w * 4]
        for x in range(w):
            want = ((x & 255) << 16) | ((y & 255) << 8) | ((x ^ y) & 255)
            got = int.from_bytes(row[x * 4 : x * 4 + 4], "little") & 0xFFFFFF
            if got != want:
                if bad < 5:
                    print(f"fbcheck: pixel ({x},{y}) is 0x{got:06x}, want 0x{want:06x}")
                bad += 1
    if bad:
        print(f"fbcheck: {bad} of {w * h} pixels differ")
        return 1
    print(f"fbcheck: all {w}x{h} pixels match")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] in ("cpuloop", "fpuloop"):
        fn = cpuloop if argv[1] == "cpuloop" else fpuloop
        print(f"0x{fn(int(argv[2], 0)):016x}")
        return 0
    if len(argv) == 6 and argv[1] == "fbcheck":
        return fbcheck(argv[2], int(argv[3]), int(argv[4]), int(argv[5]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#include "test.h"
/* F and D: FS gating, NaN boxing, canonical NaN, rounding modes (static and dynamic), flags. */
.macro FS_ON
    li t0, 0x6000
    csrs mstatus, t0
.endm
.macro LOADS freg, bits
    li t0, \bits
    fmv.w.x \freg, t0
.endm
.macro LOADD freg, bits
    li t0, \bits
    fmv.d.x \freg, t0
.endm
.macro FLAGS_ARE val
    csrrw t1, fflags, zero
    EXPECT t1, \val
.endm
START
    la t0, mtrap
    csrw mtvec, t0
    CASE 1  /* FS = Off: every FP instruction and fcsr access is illegal */
    li t0, 0x6000
    csrc mstatus, t0
    la s5, 1f
    fadd.s f0, f1, f2
1:  EXPECT s1, 2
    la s5, 1f
    csrr a0, fflags
1:  EXPECT s1, 2
    la s5, 1f
    flw f0, 0(sp)
1:  EXPECT s1, 2

    CASE 2  /* basic arithmetic, and FS becomes dirty (SD set) */
    li t0, 0x2000           /* FS = Initial */
    csrs mstatus, t0
    LOADS f1, 0x3fc00000    /* 1.5 */
    LOADS f2, 0x40100000    /* 2.25 */
    fadd.s f3, f1, f2
    fmv.x.w a0, f3
    EXPECT a0, 0x40700000   /* 3.75 */
    csrr t0, mstatus
    bltz t0, 1f             /* SD */
    j fail
1:  FLAGS_ARE 0

    CASE 3  /* NaN boxing: an unboxed single reads as the canonical NaN */
    LOADD f1, 0x000000003f800000
    fadd.s f2, f1, f1
    fmv.x.w a0, f2
    EXPECT a0, 0x7fc00000
    fsgnj.s f3, f1, f1
    fmv.x.d a0, f3
    EXPECT a0, 0xffffffff7fc00000
    LOADS f4, 0x3f800000
    fmv.x.d a0, f4          /* fmv.w.x boxes */
    EXPECT a0, 0xffffffff3f800000
    FLAGS_ARE 0

    CASE 4  /* canonical NaN from 0/0 with NV; 1/0 is inf with DZ */
    fmv.w.x f1, zero
    fdiv.s f2, f1, f1
    fmv.x.w a0, f2
    EXPECT a0, 0x7fc00000
    FLAGS_ARE 0x10
    LOADS f3, 0x3f800000
    fdiv.s f2, f3, f1
    fmv.x.w a0, f2
    EXPECT a0, 0x7f800000
    FLAGS_ARE 0x08
    LOADD f4, 0
    fdiv.d f5, f4, f4
    fmv.x.d a0, f5
    EXPECT a0, 0x7ff8000000000000
    FLAGS_ARE 0x10

    CASE 5  /* static rounding modes on fcvt.w.s */
    LOADS f1, 0x40200000    /* 2.5 */
    fcvt.w.s a0, f1, rne
    EXPECT a0, 2
    fcvt.w.s a0, f1, rmm
    EXPECT a0, 3
    fcvt.w.s a0, f1, rup
    EXPECT a0, 3
    fcvt.w.s a0, f1, rdn
    EXPECT a0, 2
    fcvt.w.s a0, f1, rtz
    EXPECT a0, 2
    LOADS f2, 0xc0200000    /* -2.5 */
    fcvt.w.s a0, f2, rdn
    EXPECT a0, -3
    fcvt.w.s a0, f2, rtz
    EXPECT a0, -2
    FLAGS_ARE 0x01

    CASE 6  /* dynamic rounding from frm; an invalid frm makes dynamic instructions illegal */
    LOADS f1, 0x40066666    /* 2.1 */
    fsrmi 3                 /* rup */
    fcvt.w.s a0, f1
    EXPECT a0, 3
    fsrmi 2                 /* rdn */
    fcvt.w.s a0, f1
    EXPECT a0, 2
    csrr a1, fcsr
    EXPECT a1, 0x41         /* frm = 2, NX accrued */
    fsrmi 5
    la s5, 1f
    fcvt.w.s a0, f1
    j fail
1:  EXPECT s1, 2
    fcvt.w.s a0, f1, rtz    /* static modes still work */
    EXPECT a0, 2
    fsrmi 0
    FLAGS_ARE 0x01

    CASE 7  /* fused multiply-add, all four forms, double */
    LOADD f1, 0x4000000000000000 /* 2 */
    LOADD f2, 0x4008000000000000 /* 3 */
    LOADD f3, 0x3ff0000000000000 /* 1 */
    fmadd.d f4, f1, f2, f3
    fmv.x.d a0, f4
    EXPECT a0, 0x401c000000000000
    fmsub.d f4, f1, f2, f3
    fmv.x.d a0, f4
    EXPECT a0, 0x4014000000000000
    fnmsub.d f4, f1, f2, f3
    fmv.x.d a0, f4
    EXPECT a0, 0xc014000000000000
    fnmadd.d f4, f1, f2, f3
    fmv.x.d a0, f4
    EXPECT a0, 0xc01c000000000000
    LOADS f5, 0x40000000
    LOADS f6, 0x40400000
    LOADS f7, 0x3f800000
    fmadd.s f8, f5, f6, f7
    fmv.x.w a0, f8
    EXPECT a0, 0x40e00000   /* 7.0f */
    FLAGS_ARE 0

    CASE 8  /* conversions between formats; classification */
    LOADS f1, 0x3fc00000
    fcvt.d.s f2, f1
    fmv.x.d a0, f2
    EXPECT a0, 0x3ff8000000000000
    LOADD f3, 0x3fb999999999999a /* 0.1 */
    fcvt.s.d f4, f3
    fmv.x.w a0, f4
    EXPECT a0, 0x3dcccccd
    FLAGS_ARE 0x01
    LOADS f5, 0xff800000
    fclass.s a0, f5
    EXPECT a0, 1
    fmv.w.x f5, zero
    fclass.s a0, f5
    EXPECT a0, 0x10
    LOADS f5, 0x7fc00000
    fclass.s a0, f5
    EXPECT a0, 0x200
    LOADS f5, 0x7f800001
    fclass.s a0, f5
    EXPECT a0, 0x100
    fclass.d a0, f3
    EXPECT a0, 0x40

    CASE 9  /* min/max: -0 < +0, a NaN operand yields the other */
    LOADS f1, 0x80000000
    fmv.w.x f2, zero
    fmin.s f3, f1, f2
    fmv.x.w a0, f3
    EXPECT a0, 0xffffffff80000000
    fmax.s f3, f1, f2
    fmv.x.w a0, f3
    EXPECT a0, 0
    LOADS f4, 0x7fc00000
    LOADS f5, 0x3f800000
    fmin.s f3, f4, f5
    fmv.x.w a0, f3
    EXPECT a0, 0x3f800000
    FLAGS_ARE 0

    CASE 10 /* out-of-range conversions saturate with NV */
    LOADS f1, 0xbf800000    /* -1.0 */
    fcvt.wu.s a0, f1, rtz
    EXPECT a0, 0
    FLAGS_ARE 0x10
    LOADS f2, 0x7fc00000
    fcvt.w.s a0, f2, rtz
    EXPECT a0, 0x7fffffff
    FLAGS_ARE 0x10
    LOADD f3, 0x4415af1d78b58c40 /* 1e20 */
    fcvt.l.d a0, f3, rtz
    EXPECT a0, 0x7fffffffffffffff
    FLAGS_ARE 0x10
    li a1, -1
    fcvt.s.lu f4, a1
    fmv.x.w a0, f4
    EXPECT a0, 0x5f800000   /* 2^64 after rounding */
    FLAGS_ARE 0x01
    li a1, -7
    fcvt.d.w f5, a1
    fmv.x.d a0, f5
    EXPECT a0, 0xc01c000000000000

    CASE 11 /* comparisons: signaling NaN always raises NV, quiet NaN only for lt/le */
    LOADS f1, 0x7f800001
    LOADS f2, 0x7fc00000
    LOADS f3, 0x3f800000
    feq.s a0, f1, f3
    EXPECT a0, 0
    FLAGS_ARE 0x10
    feq.s a0, f2, f3
    EXPECT a0, 0
    FLAGS_ARE 0
    flt.s a0, f2, f3
    EXPECT a0, 0
    FLAGS_ARE 0x10
    fle.s a0, f3, f3
    EXPECT a0, 1

    CASE 12 /* loads/stores keep bits; flw boxes */
    la t2, scratch
    li t0, 0x40490fdb
    sw t0, 0(t2)
    flw f1, 0(t2)
    fmv.x.d a0, f1
    EXPECT a0, 0xffffffff40490fdb
    fsd f1, 8(t2)
    ld a0, 8(t2)
    EXPECT a0, 0xffffffff40490fdb
    fsw f1, 16(t2)
    lwu a0, 16(t2)
    EXPECT a0, 0x40490fdb
    LOADD f3, 0x4010000000000000
    fsqrt.d f2, f3
    fmv.x.d a0, f2
    EXPECT a0, 0x4000000000000000
    PASS

RECORDING_MTRAP
    .data
    .balign 8
scratch: .fill 4, 8, 0

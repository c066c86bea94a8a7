//! Instruction decoding: 32-bit and compressed encodings into one pre-decoded form, [`Insn`].
//!
//! Decoding happens once per instruction per basic block (see `block.rs`), not per execution.
//! Integer destination register 0 is mapped to the scratch register 32, so execution never needs
//! to test for `x0` (reads of `x0` see the architectural zero in `x[0]`).

// Field extraction truncates by design.
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]

/// What an instruction does. One variant per integer operation; floating-point arithmetic is
/// grouped (`Fp`) and decoded again from the raw bits by the slow FP path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    Illegal,
    Lui,
    Auipc,
    Jal,
    Jalr,
    Beq,
    Bne,
    Blt,
    Bge,
    Bltu,
    Bgeu,
    Lb,
    Lh,
    Lw,
    Ld,
    Lbu,
    Lhu,
    Lwu,
    Sb,
    Sh,
    Sw,
    Sd,
    Addi,
    Slti,
    Sltiu,
    Xori,
    Ori,
    Andi,
    Slli,
    Srli,
    Srai,
    Add,
    Sub,
    Sll,
    Slt,
    Sltu,
    Xor,
    Srl,
    Sra,
    Or,
    And,
    Addiw,
    Slliw,
    Srliw,
    Sraiw,
    Addw,
    Subw,
    Sllw,
    Srlw,
    Sraw,
    Mul,
    Mulh,
    Mulhsu,
    Mulhu,
    Div,
    Divu,
    Rem,
    Remu,
    Mulw,
    Divw,
    Divuw,
    Remw,
    Remuw,
    LrW,
    ScW,
    LrD,
    ScD,
    /// An AMO; `rs3` holds the function (bits 31:27), `imm` the width (4 or 8).
    Amo,
    Fence,
    FenceI,
    Ecall,
    Ebreak,
    Mret,
    Sret,
    Wfi,
    SfenceVma,
    Csrrw,
    Csrrs,
    Csrrc,
    Csrrwi,
    Csrrsi,
    Csrrci,
    Flw,
    Fld,
    Fsw,
    Fsd,
    /// Any other F/D instruction; executed from `raw`.
    Fp,
}

/// A decoded instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub op: Op,
    /// Integer destination (0 mapped to 32) or FP destination.
    pub rd: u8,
    pub rs1: u8,
    pub rs2: u8,
    pub rs3: u8,
    /// Encoded length: 2 or 4.
    pub len: u8,
    pub imm: i32,
    /// The 32-bit encoding (the 16-bit one, zero-extended, for compressed instructions): `mtval`
    /// of an illegal-instruction trap.
    pub raw: u32,
}

impl Insn {
    /// Whether the instruction ends a basic block: control flow, and everything that may change
    /// privilege, translation, interrupt state or the code itself.
    pub fn ends_block(&self) -> bool {
        use Op::*;
        matches!(
            self.op,
            Illegal
                | Jal
                | Jalr
                | Beq
                | Bne
                | Blt
                | Bge
                | Bltu
                | Bgeu
                | FenceI
                | Ecall
                | Ebreak
                | Mret
                | Sret
                | Wfi
                | SfenceVma
                | Csrrw
                | Csrrs
                | Csrrc
                | Csrrwi
                | Csrrsi
                | Csrrci
        )
    }
}

const fn xd(r: u32) -> u8 {
    if r == 0 {
        32
    } else {
        r as u8
    }
}

fn mk(op: Op, rd: u32, rs1: u32, rs2: u32, imm: i32, raw: u32) -> Insn {
    Insn { op, rd: xd(rd), rs1: rs1 as u8, rs2: rs2 as u8, rs3: 0, len: 4, imm, raw }
}

fn illegal(raw: u32, len: u8) -> Insn {
    Insn { op: Op::Illegal, rd: 32, rs1: 0, rs2: 0, rs3: 0, len, imm: 0, raw }
}

/// Length in bytes of the instruction whose low 16 bits are `low`.
pub fn insn_len(low: u16) -> u8 {
    if low & 3 == 3 {
        4
    } else {
        2
    }
}

fn imm_i(w: u32) -> i32 {
    (w as i32) >> 20
}
fn imm_s(w: u32) -> i32 {
    (((w & 0xfe00_0000) as i32) >> 20) | ((w >> 7) & 0x1f) as i32
}
fn imm_b(w: u32) -> i32 {
    (((w & 0x8000_0000) as i32) >> 19)
        | (((w >> 7) & 1) << 11) as i32
        | (((w >> 25) & 0x3f) << 5) as i32
        | (((w >> 8) & 0xf) << 1) as i32
}
fn imm_u(w: u32) -> i32 {
    (w & 0xffff_f000) as i32
}
fn imm_j(w: u32) -> i32 {
    (((w & 0x8000_0000) as i32) >> 11)
        | (w & 0x000f_f000) as i32
        | (((w >> 20) & 1) << 11) as i32
        | (((w >> 21) & 0x3ff) << 1) as i32
}

/// Decode a 32-bit instruction.
pub fn decode32(w: u32) -> Insn {
    use Op::*;
    let rd = (w >> 7) & 31;
    let rs1 = (w >> 15) & 31;
    let rs2 = (w >> 20) & 31;
    let f3 = (w >> 12) & 7;
    let f7 = w >> 25;
    let bad = illegal(w, 4);
    match w & 0x7f {
        0x37 => mk(Lui, rd, 0, 0, imm_u(w), w),
        0x17 => mk(Auipc, rd, 0, 0, imm_u(w), w),
        0x6f => mk(Jal, rd, 0, 0, imm_j(w), w),
        0x67 if f3 == 0 => mk(Jalr, rd, rs1, 0, imm_i(w), w),
        0x63 => {
            let op = match f3 {
                0 => Beq,
                1 => Bne,
                4 => Blt,
                5 => Bge,
                6 => Bltu,
                7 => Bgeu,
                _ => return bad,
            };
            mk(op, 0, rs1, rs2, imm_b(w), w)
        }
        0x03 => {
            let op = match f3 {
                0 => Lb,
                1 => Lh,
                2 => Lw,
                3 => Ld,
                4 => Lbu,
                5 => Lhu,
                6 => Lwu,
                _ => return bad,
            };
            mk(op, rd, rs1, 0, imm_i(w), w)
        }
        0x23 => {
            let op = match f3 {
                0 => Sb,
                1 => Sh,
                2 => Sw,
                3 => Sd,
                _ => return bad,
            };
            mk(op, 0, rs1, rs2, imm_s(w), w)
        }
        0x13 => {
            let imm = imm_i(w);
            let op = match f3 {
                0 => Addi,
                2 => Slti,
                3 => Sltiu,
                4 => Xori,
                6 => Ori,
                7 => Andi,
                1 if w >> 26 == 0 => return mk(Slli, rd, rs1, 0, ((w >> 20) & 63) as i32, w),
                5 if w >> 26 == 0 => return mk(Srli, rd, rs1, 0, ((w >> 20) & 63) as i32, w),
                5 if w >> 26 == 0x10 => return mk(Srai, rd, rs1, 0, ((w >> 20) & 63) as i32, w),
                _ => return bad,
            };
            mk(op, rd, rs1, 0, imm, w)
        }
        0x1b => match f3 {
            0 => mk(Addiw, rd, rs1, 0, imm_i(w), w),
            1 if f7 == 0 => mk(Slliw, rd, rs1, 0, rs2 as i32, w),
            5 if f7 == 0 => mk(Srliw, rd, rs1, 0, rs2 as i32, w),
            5 if f7 == 0x20 => mk(Sraiw, rd, rs1, 0, rs2 as i32, w),
            _ => bad,
        },
        0x33 => {
            let op = match (f7, f3) {
                (0, 0) => Add,
                (0x20, 0) => Sub,
                (0, 1) => Sll,
                (0, 2) => Slt,
                (0, 3) => Sltu,
                (0, 4) => Xor,
                (0, 5) => Srl,
                (0x20, 5) => Sra,
                (0, 6) => Or,
                (0, 7) => And,
                (1, 0) => Mul,
                (1, 1) => Mulh,
                (1, 2) => Mulhsu,
                (1, 3) => Mulhu,
                (1, 4) => Div,
                (1, 5) => Divu,
                (1, 6) => Rem,
                (1, 7) => Remu,
                _ => return bad,
            };
            mk(op, rd, rs1, rs2, 0, w)
        }
        0x3b => {
            let op = match (f7, f3) {
                (0, 0) => Addw,
                (0x20, 0) => Subw,
                (0, 1) => Sllw,
                (0, 5) => Srlw,
                (0x20, 5) => Sraw,
                (1, 0) => Mulw,
                (1, 4) => Divw,
                (1, 5) => Divuw,
                (1, 6) => Remw,
                (1, 7) => Remuw,
                _ => return bad,
            };
            mk(op, rd, rs1, rs2, 0, w)
        }
        0x2f => {
            let width = match f3 {
                2 => 4,
                3 => 8,
                _ => return bad,
            };
            let f5 = w >> 27;
            let op = match (f5, width) {
                (2, 4) if rs2 == 0 => LrW,
                (2, 8) if rs2 == 0 => LrD,
                (3, 4) => ScW,
                (3, 8) => ScD,
                (0 | 1 | 4 | 8 | 12 | 16 | 20 | 24 | 28, _) => Amo,
                _ => return bad,
            };
            let mut i = mk(op, rd, rs1, rs2, width, w);
            i.rs3 = f5 as u8;
            i
        }
        0x0f => match f3 {
            0 => mk(Fence, 0, 0, 0, 0, w),
            1 => mk(FenceI, 0, 0, 0, 0, w),
            _ => bad,
        },
        0x73 => {
            let csr = (w >> 20) as i32;
            match f3 {
                0 => match w {
                    0x0000_0073 => mk(Ecall, 0, 0, 0, 0, w),
                    0x0010_0073 => mk(Ebreak, 0, 0, 0, 0, w),
                    0x3020_0073 => mk(Mret, 0, 0, 0, 0, w),
                    0x1020_0073 => mk(Sret, 0, 0, 0, 0, w),
                    0x1050_0073 => mk(Wfi, 0, 0, 0, 0, w),
                    _ if f7 == 0x09 && rd == 0 => mk(SfenceVma, 0, rs1, rs2, 0, w),
                    _ => bad,
                },
                1 => mk(Csrrw, rd, rs1, 0, csr, w),
                2 => mk(Csrrs, rd, rs1, 0, csr, w),
                3 => mk(Csrrc, rd, rs1, 0, csr, w),
                5 => mk(Csrrwi, rd, rs1, 0, csr, w),
                6 => mk(Csrrsi, rd, rs1, 0, csr, w),
                7 => mk(Csrrci, rd, rs1, 0, csr, w),
                _ => bad,
            }
        }
        0x07 => match f3 {
            2 => fpmk(Flw, rd, rs1, 0, imm_i(w), w),
            3 => fpmk(Fld, rd, rs1, 0, imm_i(w), w),
            _ => bad,
        },
        0x27 => match f3 {
            2 => fpmk(Fsw, 0, rs1, rs2, imm_s(w), w),
            3 => fpmk(Fsd, 0, rs1, rs2, imm_s(w), w),
            _ => bad,
        },
        0x43 | 0x47 | 0x4b | 0x4f | 0x53 => {
            let mut i = fpmk(Fp, rd, rs1, rs2, 0, w);
            i.rs3 = (w >> 27) as u8;
            i
        }
        _ => bad,
    }
}

/// FP-register forms keep `rd` as is (f0 is a real register).
fn fpmk(op: Op, rd: u32, rs1: u32, rs2: u32, imm: i32, raw: u32) -> Insn {
    Insn { op, rd: rd as u8, rs1: rs1 as u8, rs2: rs2 as u8, rs3: 0, len: 4, imm, raw }
}

fn bits(h: u32, hi: u32, lo: u32) -> u32 {
    (h >> lo) & ((1 << (hi - lo + 1)) - 1)
}

fn sext(v: u32, width: u32) -> i32 {
    let shift = 32 - width;
    ((v << shift) as i32) >> shift
}

/// Decode a 16-bit (compressed) instruction into its 32-bit equivalent's form.
pub fn decode16(h: u16) -> Insn {
    let i = decode16_inner(u32::from(h));
    Insn { len: 2, raw: u32::from(h), ..i }
}

fn decode16_inner(h: u32) -> Insn {
    use Op::*;
    let bad = illegal(h, 2);
    let f3 = bits(h, 15, 13);
    let rdp = bits(h, 4, 2) + 8; // rd' / rs2'
    let rs1p = bits(h, 9, 7) + 8; // rs1' / rd'
    let rd = bits(h, 11, 7);
    let rs2 = bits(h, 6, 2);
    match (h & 3, f3) {
        (0, 0) => {
            // c.addi4spn
            let imm = (bits(h, 12, 11) << 4) | (bits(h, 10, 7) << 6) | (bits(h, 6, 6) << 2) | (bits(h, 5, 5) << 3);
            if imm == 0 {
                return bad;
            }
            mk(Addi, rdp, 2, 0, imm as i32, h)
        }
        (0, 1) => fpmk(Fld, rdp, rs1p, 0, ((bits(h, 12, 10) << 3) | (bits(h, 6, 5) << 6)) as i32, h),
        (0, 2) => mk(Lw, rdp, rs1p, 0, ((bits(h, 12, 10) << 3) | (bits(h, 6, 6) << 2) | (bits(h, 5, 5) << 6)) as i32, h),
        (0, 3) => mk(Ld, rdp, rs1p, 0, ((bits(h, 12, 10) << 3) | (bits(h, 6, 5) << 6)) as i32, h),
        (0, 5) => fpmk(Fsd, 0, rs1p, rdp, ((bits(h, 12, 10) << 3) | (bits(h, 6, 5) << 6)) as i32, h),
        (0, 6) => mk(Sw, 0, rs1p, rdp, ((bits(h, 12, 10) << 3) | (bits(h, 6, 6) << 2) | (bits(h, 5, 5) << 6)) as i32, h),
        (0, 7) => mk(Sd, 0, rs1p, rdp, ((bits(h, 12, 10) << 3) | (bits(h, 6, 5) << 6)) as i32, h),
        (1, 0) => {
            // c.addi / c.nop
            let imm = sext((bits(h, 12, 12) << 5) | bits(h, 6, 2), 6);
            mk(Addi, rd, rd, 0, imm, h)
        }
        (1, 1) => {
            // c.addiw
            if rd == 0 {
                return bad;
            }
            let imm = sext((bits(h, 12, 12) << 5) | bits(h, 6, 2), 6);
            mk(Addiw, rd, rd, 0, imm, h)
        }
        (1, 2) => mk(Addi, rd, 0, 0, sext((bits(h, 12, 12) << 5) | bits(h, 6, 2), 6), h), // c.li
        (1, 3) => {
            if rd == 2 {
                // c.addi16sp
                let imm = (bits(h, 12, 12) << 9)
                    | (bits(h, 6, 6) << 4)
                    | (bits(h, 5, 5) << 6)
                    | (bits(h, 4, 3) << 7)
                    | (bits(h, 2, 2) << 5);
                if imm == 0 {
                    return bad;
                }
                mk(Addi, 2, 2, 0, sext(imm, 10), h)
            } else {
                // c.lui
                let imm = (bits(h, 12, 12) << 17) | (bits(h, 6, 2) << 12);
                if imm == 0 {
                    return bad;
                }
                mk(Lui, rd, 0, 0, sext(imm, 18), h)
            }
        }
        (1, 4) => {
            let shamt = ((bits(h, 12, 12) << 5) | bits(h, 6, 2)) as i32;
            match bits(h, 11, 10) {
                0 => mk(Srli, rs1p, rs1p, 0, shamt, h),
                1 => mk(Srai, rs1p, rs1p, 0, shamt, h),
                2 => mk(Andi, rs1p, rs1p, 0, sext((bits(h, 12, 12) << 5) | bits(h, 6, 2), 6), h),
                _ => {
                    let op = match (bits(h, 12, 12), bits(h, 6, 5)) {
                        (0, 0) => Sub,
                        (0, 1) => Xor,
                        (0, 2) => Or,
                        (0, 3) => And,
                        (1, 0) => Subw,
                        (1, 1) => Addw,
                        _ => return bad,
                    };
                    mk(op, rs1p, rs1p, rdp, 0, h)
                }
            }
        }
        (1, 5) => {
            // c.j
            let imm = (bits(h, 12, 12) << 11)
                | (bits(h, 11, 11) << 4)
                | (bits(h, 10, 9) << 8)
                | (bits(h, 8, 8) << 10)
                | (bits(h, 7, 7) << 6)
                | (bits(h, 6, 6) << 7)
                | (bits(h, 5, 3) << 1)
                | (bits(h, 2, 2) << 5);
            mk(Jal, 0, 0, 0, sext(imm, 12), h)
        }
        (1, 6 | 7) => {
            let imm = (bits(h, 12, 12) << 8)
                | (bits(h, 11, 10) << 3)
                | (bits(h, 6, 5) << 6)
                | (bits(h, 4, 3) << 1)
                | (bits(h, 2, 2) << 5);
            mk(if f3 == 6 { Beq } else { Bne }, 0, rs1p, 0, sext(imm, 9), h)
        }
        (2, 0) => mk(Slli, rd, rd, 0, ((bits(h, 12, 12) << 5) | bits(h, 6, 2)) as i32, h),
        (2, 1) => fpmk(Fld, rd, 2, 0, ((bits(h, 12, 12) << 5) | (bits(h, 6, 5) << 3) | (bits(h, 4, 2) << 6)) as i32, h),
        (2, 2) => {
            if rd == 0 {
                return bad;
            }
            mk(Lw, rd, 2, 0, ((bits(h, 12, 12) << 5) | (bits(h, 6, 4) << 2) | (bits(h, 3, 2) << 6)) as i32, h)
        }
        (2, 3) => {
            if rd == 0 {
                return bad;
            }
            mk(Ld, rd, 2, 0, ((bits(h, 12, 12) << 5) | (bits(h, 6, 5) << 3) | (bits(h, 4, 2) << 6)) as i32, h)
        }
        (2, 4) => match (bits(h, 12, 12), rd, rs2) {
            (0, 0, 0) => bad,
            (0, _, 0) => mk(Jalr, 0, rd, 0, 0, h),         // c.jr
            (0, _, _) => mk(Add, rd, 0, rs2, 0, h),        // c.mv
            (1, 0, 0) => mk(Ebreak, 0, 0, 0, 0, h),        // c.ebreak
            (1, _, 0) => mk(Jalr, 1, rd, 0, 0, h),         // c.jalr
            _ => mk(Add, rd, rd, rs2, 0, h),               // c.add
        },
        (2, 5) => fpmk(Fsd, 0, 2, rs2, ((bits(h, 12, 10) << 3) | (bits(h, 9, 7) << 6)) as i32, h),
        (2, 6) => mk(Sw, 0, 2, rs2, ((bits(h, 12, 9) << 2) | (bits(h, 8, 7) << 6)) as i32, h),
        (2, 7) => mk(Sd, 0, 2, rs2, ((bits(h, 12, 10) << 3) | (bits(h, 9, 7) << 6)) as i32, h),
        _ => bad,
    }
}

/// ABI names of the integer registers.
const XREG: [&str; 32] = [
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7",
    "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6",
];

fn xr(r: u8) -> &'static str {
    XREG[usize::from(r & 31)]
}

/// A short disassembly of `raw` (a 16-bit encoding zero-extended, or a 32-bit one) for traces:
/// the operation and its operands as decoded (compressed instructions show their 32-bit
/// equivalent). Floating-point arithmetic shows only its register numbers.
pub fn disasm(raw: u32) -> String {
    use Op::*;
    let i = if raw <= 0xffff && insn_len(raw as u16) == 2 { decode16(raw as u16) } else { decode32(raw) };
    let name = format!("{:?}", i.op).to_ascii_lowercase();
    let (rd, rs1, rs2, imm) = (xr(i.rd), xr(i.rs1), xr(i.rs2), i.imm);
    match i.op {
        Illegal => "illegal".to_string(),
        Lui | Auipc => format!("{name} {rd}, {:#x}", (imm as u32) >> 12),
        Jal => format!("jal {rd}, {imm:+}"),
        Jalr => format!("jalr {rd}, {imm}({rs1})"),
        Beq | Bne | Blt | Bge | Bltu | Bgeu => format!("{name} {rs1}, {rs2}, {imm:+}"),
        Lb | Lh | Lw | Ld | Lbu | Lhu | Lwu => format!("{name} {rd}, {imm}({rs1})"),
        Sb | Sh | Sw | Sd => format!("{name} {rs2}, {imm}({rs1})"),
        Flw | Fld => format!("{name} f{}, {imm}({rs1})", i.rd),
        Fsw | Fsd => format!("{name} f{}, {imm}({rs1})", i.rs2),
        Addi | Slti | Sltiu | Xori | Ori | Andi | Slli | Srli | Srai | Addiw | Slliw | Srliw | Sraiw => {
            format!("{name} {rd}, {rs1}, {imm}")
        }
        LrW | LrD => format!("{name} {rd}, ({rs1})"),
        ScW | ScD => format!("{name} {rd}, {rs2}, ({rs1})"),
        Amo => format!("amo{}.{} {rd}, {rs2}, ({rs1})", i.rs3, if imm == 4 { 'w' } else { 'd' }),
        Fence | FenceI | Ecall | Ebreak | Mret | Sret | Wfi => name,
        SfenceVma => format!("sfence.vma {rs1}, {rs2}"),
        Csrrw | Csrrs | Csrrc => format!("{name} {rd}, {:#x}, {rs1}", imm & 0xfff),
        Csrrwi | Csrrsi | Csrrci => format!("{name} {rd}, {:#x}, {}", imm & 0xfff, i.rs1),
        Fp => format!("fp.{:#04x} f{}, f{}, f{}", raw >> 25, i.rd, i.rs1, i.rs2),
        _ => format!("{name} {rd}, {rs1}, {rs2}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x0_destination_maps_to_scratch() {
        // addi x0, x0, 0 (nop)
        let i = decode32(0x0000_0013);
        assert_eq!((i.op, i.rd), (Op::Addi, 32));
        // addi a0, a0, -1
        let i = decode32(0xfff5_0513);
        assert_eq!((i.op, i.rd, i.rs1, i.imm), (Op::Addi, 10, 10, -1));
    }

    #[test]
    fn branch_and_jump_immediates() {
        // beq x0, x0, -4  => 0xfe000ee3
        assert_eq!(decode32(0xfe00_0ee3).imm, -4);
        // jal x0, -8 => 0xff9ff06f
        assert_eq!(decode32(0xff9f_f06f).imm, -8);
        // c.j -2 => 0xbffd
        assert_eq!(decode16(0xbffd).imm, -2);
        // c.bnez a0, -4 => 0xfd75
        let i = decode16(0xfd75);
        assert_eq!((i.op, i.rs1, i.imm), (Op::Bne, 10, -4));
    }

    #[test]
    fn disassembly_names_the_operation_and_operands() {
        assert_eq!(disasm(0xfff5_0513), "addi a0, a0, -1");
        assert_eq!(disasm(0xfd75), "bne a0, zero, -4"); // c.bnez
        assert_eq!(disasm(0x0000_0073), "ecall");
        assert_eq!(disasm(0x00b5_3023), "sd a1, 0(a0)");
        assert_eq!(disasm(0x3410_2573), "csrrs a0, 0x341, zero");
        assert_eq!(disasm(0xffff_ffff), "illegal");
    }

    #[test]
    fn reserved_compressed_encodings_are_illegal() {
        assert_eq!(decode16(0x0000).op, Op::Illegal); // all-zero halfword
        assert_eq!(decode16(0x6101).op, Op::Illegal); // c.addi16sp with imm 0
        assert_eq!(decode16(0x8002).op, Op::Illegal); // c.jr x0
    }
}

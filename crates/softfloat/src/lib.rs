//! IEEE 754 binary32/binary64 arithmetic in integer software, with RISC-V semantics.

//! ISA conformance tests: one test per assembly source in `tests/isa/`, each assembled with the
//! RISC-V cross compiler at test time and run bare-metal; the program reports through the syscon
//! finisher. Install the compiler with `bash scripts/setup.sh`.

// Tests are host code: they run the cross compiler and read its output.
#![allow(clippy::disallowed_methods)]

mod common;

macro_rules! isa_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                common::run_isa_test(stringify!($name));
            }
        )*
        const ALL: &[&str] = &[$(stringify!($name)),*];
    };
}

isa_tests!(rv64i_arith, rv64m, rv64a, rvc, zicsr_fencei, privilege, sv39, interrupts, fpu, pmp);

#[test]
fn every_source_has_a_test() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/isa");
    let mut missing = Vec::new();
    for e in std::fs::read_dir(&dir).expect("tests/isa exists") {
        let name = e.expect("readable dir entry").file_name().to_string_lossy().to_string();
        if let Some(stem) = name.strip_suffix(".S") {
            if !ALL.contains(&stem) {
                missing.push(stem.to_string());
            }
        }
    }
    assert!(missing.is_empty(), "add these to isa_tests! in tests/isa_tests.rs: {missing:?}");
}

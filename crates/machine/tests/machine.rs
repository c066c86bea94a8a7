//! Whole-machine behaviour: exact stopping, determinism independent of how a run is sliced,
//! trap loops, external interrupts from injected input, the Linux boot path with the host SBI,
//! dirty tracking through the TLB, and image validation.

#![allow(clippy::disallowed_methods)]

mod common;

use common::{assemble, assemble_raw, bare_machine, program_source};
use doppel_machine::{
    BootMode, EnvError, Environment, Exit, IdleState, InputEvent, InstructionCount, Machine, MachineConfig,
    MachineError, NullEnvironment, Output, Ticks,
};

fn busy() -> Machine {
    bare_machine(assemble(&program_source("busy")))
}

#[test]
fn run_stops_at_exactly_the_requested_instruction_count() {
    let mut m = busy();
    let mut env = NullEnvironment::default();
    for until in [1, 2, 3, 10, 11, 97, 1000, 1001, 5003, 77_777] {
        assert!(matches!(m.run(&mut env, until), Exit::Limit));
        assert_eq!(m.icount(), until);
    }
    // Asking for a count already reached returns at once.
    assert!(matches!(m.run(&mut env, 10), Exit::Limit));
    assert_eq!(m.icount(), 77_777);
}

/// Run `m` to `end` in steps of `step`, returning the state hashes at `checkpoints`.
fn hashes(m: &mut Machine, env: &mut NullEnvironment, step: u64, checkpoints: &[u64]) -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    for &c in checkpoints {
        while m.icount() < c {
            let next = (m.icount() + step).min(c);
            assert!(matches!(m.run(env, next), Exit::Limit));
        }
        out.push(m.state_hash());
    }
    out
}

#[test]
fn runs_are_identical_however_they_are_sliced_and_after_the_block_cache_is_dropped() {
    let checkpoints = [10_000, 123_457, 400_000, 1_000_003];
    let mut e1 = NullEnvironment::default();
    let reference = hashes(&mut busy(), &mut e1, u64::MAX / 4, &checkpoints);
    for step in [1_000, 7_919, 65_536] {
        let mut env = NullEnvironment::default();
        assert_eq!(hashes(&mut busy(), &mut env, step, &checkpoints), reference, "sliced by {step}");
        assert_eq!(env.console, e1.console, "console output differs when sliced by {step}");
    }
    // Dropping decoded blocks and the TLB (as after a snapshot restore) changes nothing.
    let mut m = busy();
    let mut env = NullEnvironment::default();
    let mut got = Vec::new();
    for &c in &checkpoints {
        while m.icount() < c {
            let next = (m.icount() + 3_001).min(c);
            assert!(matches!(m.run(&mut env, next), Exit::Limit));
            m.cpu.flush_blocks();
            m.cpu.tlb_flush();
        }
        got.push(m.state_hash());
    }
    assert_eq!(got, reference);
    // The workload did take timer interrupts and print.
    assert!(e1.console.len() > 100, "only {} console bytes", e1.console.len());
    // Different states hash differently.
    assert_ne!(reference[0], reference[1]);
}

#[test]
fn a_trap_loop_is_stopped_at_until_and_location_names_it() {
    let mut m = bare_machine(assemble(&program_source("trap_loop")));
    let mut env = NullEnvironment::default();
    assert!(matches!(m.run(&mut env, 100_000), Exit::Limit));
    assert_eq!(m.icount(), 100_000);
    let loc = m.location();
    assert!(loc.contains("pc=0x1000") && loc.contains("priv=M"), "{loc}");
    assert!(loc.contains("exception 1 at pc=0x1000"), "{loc}");
}

/// Delivers one UART byte the first time the guest idles.
struct TypeOnIdle {
    pending: Option<InputEvent>,
    deliver: bool,
    idles: u32,
}

impl Environment for TypeOnIdle {
    fn poll(&mut self, _icount: InstructionCount) -> Result<Option<InputEvent>, EnvError> {
        Ok(if self.deliver { self.pending.take() } else { None })
    }
    fn idle(&mut self, _state: IdleState) -> Result<Ticks, EnvError> {
        self.idles += 1;
        if self.idles > 10 {
            return Err(EnvError::msg("guest idles forever"));
        }
        self.deliver = true;
        Ok(1)
    }
    fn entropy(&mut self, _icount: InstructionCount, buf: &mut [u8]) {
        buf.fill(0);
    }
    fn output(&mut self, _icount: InstructionCount, _output: Output<'_>) {}
}

#[test]
fn uart_input_reaches_the_hart_through_the_plic() {
    let mut m = bare_machine(assemble(&program_source("plic_uart")));
    let mut env = TypeOnIdle { pending: Some(InputEvent::UartRx(b"x".to_vec())), deliver: false, idles: 0 };
    match m.run(&mut env, 1_000_000) {
        Exit::PowerOff(0) => {}
        other => panic!("{other:?} at {}", m.location()),
    }
    assert_eq!(env.idles, 1);
}

fn sbi_kernel() -> Vec<u8> {
    assemble_raw(&program_source("sbi_hello"), 0x8020_0000)
}

#[test]
fn linux_boot_path_enters_s_mode_with_the_dtb_and_serves_sbi_calls() {
    let config = MachineConfig { ram_size: 64 << 20, kernel: sbi_kernel(), ..MachineConfig::default() };
    let mut m = Machine::new(config).expect("machine builds");
    let mut env = NullEnvironment::default();
    match m.run(&mut env, 10_000_000) {
        Exit::PowerOff(0) => {}
        other => panic!("{other:?} at {}; console {:?}", m.location(), String::from_utf8_lossy(&env.console)),
    }
    assert_eq!(env.console, b"hi!\n");
    // The SBI timer waited by warping, not by spinning.
    assert!(m.icount() < 1_000, "icount {}", m.icount());
    assert!(m.now() >= 100);
    let fb = m.framebuffer().expect("a framebuffer by default");
    assert_eq!((fb.width, fb.height, fb.stride), (640, 480, 2560));
    assert_eq!(fb.pixels.len(), 640 * 480 * 4);
}

#[test]
fn bad_images_are_refused_with_clear_errors() {
    let err = |config: MachineConfig| Machine::new(config).err().map(|e| {
        let mut s = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(inner) = src {
            s.push_str(": ");
            s.push_str(&inner.to_string());
            src = inner.source();
        }
        s
    });
    let e = err(MachineConfig::default()).expect("empty kernel refused");
    assert!(e.contains("empty"), "{e}");
    let e = err(MachineConfig { kernel: vec![1; 4096], ..MachineConfig::default() }).expect("garbage refused");
    assert!(e.contains("RSC"), "{e}");
    let e = err(MachineConfig {
        ram_size: 16 << 20,
        framebuffer: None,
        kernel: sbi_kernel(),
        initrd: Some(vec![0; 16 << 20]),
        ..MachineConfig::default()
    })
    .expect("oversized initrd refused");
    assert!(e.contains("initrd"), "{e}");
    let e = err(MachineConfig { ram_size: 12345, kernel: sbi_kernel(), ..MachineConfig::default() }).expect("odd RAM size");
    assert!(e.contains("RAM size"), "{e}");
    let bad_elf = {
        let mut v = b"\x7fELF".to_vec();
        v.resize(64, 0);
        v
    };
    let e = err(MachineConfig { kernel: bad_elf, boot: BootMode::BareMetal, ..MachineConfig::default() }).expect("bad ELF");
    assert!(e.contains("ELF"), "{e}");
    assert!(matches!(
        Machine::new(MachineConfig { instructions_per_tick: 0, kernel: sbi_kernel(), ..MachineConfig::default() }),
        Err(MachineError::ZeroIpt)
    ));
}

#[test]
fn take_dirty_sees_every_write_again_after_it_clears() {
    let mut m = busy();
    let mut env = NullEnvironment::default();
    assert!(matches!(m.run(&mut env, 50_000), Exit::Limit));
    let buf_page = |bitmap: &[u64]| bitmap.iter().map(|w| w.count_ones()).sum::<u32>();
    let first = m.take_dirty();
    assert!(buf_page(&first) >= 2, "the loop's buffer pages are dirty");
    assert!(matches!(m.run(&mut env, 100_000), Exit::Limit));
    let second = m.take_dirty();
    assert_eq!(second, first, "the same pages are written again and must be seen again");
}

#[test]
fn a_restored_snapshot_runs_on_identically() {
    use doppel_machine::persist::{decode, encode, SnapshotHeader};
    use doppel_machine::MachineState;

    let config = || MachineConfig {
        ram_size: 4 << 20,
        kernel: assemble(&program_source("busy")),
        framebuffer: None,
        boot: BootMode::BareMetal,
        ..MachineConfig::default()
    };
    let mut a = Machine::new(config()).expect("machine builds");
    let mut ea = NullEnvironment::default();
    assert!(matches!(a.run(&mut ea, 100_003), Exit::Limit));
    let sealed = SnapshotHeader::seal(&encode(&a.save_state()));
    let ram = a.ram().as_slice().to_vec();

    let state: MachineState = decode(SnapshotHeader::open(&sealed).expect("framing")).expect("decodes");
    let mut b = Machine::from_state(config(), &state, &ram).expect("restores");
    assert_eq!(b.state_hash(), a.state_hash());
    assert_eq!(b.icount(), 100_003);
    let mut eb = NullEnvironment::default();
    let before = ea.console.len();
    for stop in [150_000, 400_000] {
        assert!(matches!(a.run(&mut ea, stop), Exit::Limit));
        assert!(matches!(b.run(&mut eb, stop), Exit::Limit));
        assert_eq!(a.state_hash(), b.state_hash(), "diverged by {stop}");
    }
    assert_eq!(ea.console[before..], eb.console[..]);
    assert!(!eb.console.is_empty());

    // Restored state is validated: a RAM image of the wrong size is refused.
    let err = Machine::from_state(config(), &state, &ram[..4096]).expect_err("short RAM refused");
    assert!(matches!(err, MachineError::RamImage { .. }), "{err}");
}

#[test]
fn a_reset_boots_the_machine_again_from_its_images() {
    let elf = assemble(&program_source("reboot"));
    let mut m = bare_machine(elf.clone());
    let fresh = bare_machine(elf.clone()).state_hash();
    let mut env = NullEnvironment::default();
    for _ in 0..3 {
        assert!(matches!(m.run(&mut env, 1000), Exit::Reset), "at {}", m.location());
        assert!(m.icount() > 0);
        m.reset(&elf, None).expect("reset");
        assert_eq!(m.icount(), 0);
        // Exactly a fresh machine again: RAM (the run counter) cleared, hart and devices reset.
        assert_eq!(m.state_hash(), fresh);
    }
}

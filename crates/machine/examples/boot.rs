//! Boot a Linux `Image` (and optional initramfs) on the machine, console on stdout, with no
//! input: a smoke test of the boot path and a speed figure for a real guest.
//!
//! Run: `cargo run -p doppel-machine --release --example boot -- <Image> [initrd] [instructions]`

// Host code: reads files, prints, measures wall time.
#![allow(clippy::disallowed_methods)]

use std::io::Write;
use std::time::Instant;

use doppel_machine::{
    EnvError, Environment, Exit, IdleState, InputEvent, InstructionCount, Machine, MachineConfig, Output, Ticks,
};

/// Console to stdout, idle time skipped to the next deadline.
struct Stdout {
    idle_ticks: u64,
    /// Instruction count at which the console first showed a shell prompt.
    prompt_at: Option<InstructionCount>,
    tail: Vec<u8>,
}

impl Environment for Stdout {
    fn poll(&mut self, _icount: InstructionCount) -> Result<Option<InputEvent>, EnvError> {
        Ok(None)
    }
    fn idle(&mut self, state: IdleState) -> Result<Ticks, EnvError> {
        let warp = state.deadline.map_or(doppel_machine::TIMEBASE_HZ, |d| d.saturating_sub(state.now));
        self.idle_ticks += warp;
        Ok(warp)
    }
    fn entropy(&mut self, _icount: InstructionCount, buf: &mut [u8]) {
        buf.fill(0x5a);
    }
    fn output(&mut self, icount: InstructionCount, output: Output<'_>) {
        if let Output::Console(bytes) = output {
            self.tail.extend_from_slice(bytes);
            if self.prompt_at.is_none() && self.tail.ends_with(b"/ # ") {
                self.prompt_at = Some(icount);
            }
            if self.tail.len() > 64 {
                self.tail.drain(..32);
            }
            let mut out = std::io::stdout();
            let _ = out.write_all(bytes);
            let _ = out.flush();
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(kernel) = args.get(1) else {
        eprintln!("usage: boot <Image> [initrd] [instructions]");
        std::process::exit(2);
    };
    let kernel = std::fs::read(kernel).expect("read kernel");
    let initrd = args.get(2).filter(|a| !a.is_empty()).map(|p| std::fs::read(p).expect("read initrd"));
    let until: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(2_000_000_000);
    let config = MachineConfig {
        kernel,
        initrd,
        cmdline: "console=ttyS0 earlycon=sbi panic=-1".into(),
        ..MachineConfig::default()
    };
    let mut m = Machine::new(config).expect("machine builds");
    let mut env = Stdout { idle_ticks: 0, prompt_at: None, tail: Vec::new() };
    let start = Instant::now();
    let exit = m.run(&mut env, until);
    let secs = start.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let mips = m.icount() as f64 / secs / 1e6;
    eprintln!(
        "\n[{exit:?} after {} instructions (shell prompt at {:?}), guest time {:.3} s ({} idle ticks), {secs:.2} s wall, {mips:.0} MIPS] {}",
        m.icount(),
        env.prompt_at,
        m.now() as f64 / doppel_machine::TIMEBASE_HZ as f64,
        env.idle_ticks,
        m.location()
    );
    if !matches!(exit, Exit::PowerOff(0) | Exit::Limit) {
        std::process::exit(1);
    }
}

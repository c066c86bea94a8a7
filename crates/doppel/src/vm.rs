//! `doppel vm …`: run a guest on this terminal.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use doppel_host::images::read_image;
use doppel_host::live::LiveEnvironment;
use doppel_host::net::{self, HostFwd, NetMode, UserNetConfig};
use doppel_host::terminal::{self, RawMode, StdoutSink};
use doppel_machine::devices::DevicesConfig;
use doppel_machine::machine::{BootMode, Exit, Machine, MachineConfig};

#[derive(Subcommand, Debug)]
pub enum VmCommand {
    /// Boot a guest with its serial console on this terminal (Ctrl-A x quits).
    ///
    /// Examples:
    ///   doppel vm run --kernel Image --initrd initramfs.cpio
    ///   doppel vm run --kernel Image --initrd initramfs.cpio --append "console=ttyS0 doppel.run=cpuloop"
    ///   doppel vm run --kernel Image --disk disk.img --memory 512M --fb 1024x768
    ///   doppel vm run --kernel Image --initrd initramfs.cpio --vnc 127.0.0.1:5900 --ws 127.0.0.1:5700
    ///   doppel vm run --kernel Image --initrd initramfs.cpio --vnc 0.0.0.0:5900 --tls --password-file pw
    ///   doppel vm run --kernel Image --initrd initramfs.cpio --net user --hostfwd tcp:127.0.0.1:8080-:80
    ///   doppel vm run --kernel Image --initrd initramfs.cpio --max-instructions 2000000 --trace trace.txt
    ///
    /// A guest reboot (SBI system reset, or the syscon reboot register) restarts the machine:
    /// devices reset, RAM cleared, the kernel and initramfs read again and booted; the disk
    /// keeps what the guest wrote.
    ///
    /// Exit status: the guest's power-off code (0 when it powers off cleanly or you quit with
    /// Ctrl-A x), 3 when --max-instructions stops it, 1 on an error.
    #[command(verbatim_doc_comment)]
    Run(RunArgs),
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Linux kernel `Image` (or, with --bare-metal, a raw binary or ELF).
    #[arg(long, value_name = "PATH")]
    kernel: PathBuf,
    #[command(flatten)]
    machine: MachineArgs,
    /// Stop after this many guest instructions (exit status 3, with where the guest was).
    #[arg(long, value_name = "N")]
    max_instructions: Option<u64>,
    /// Network backend of the virtio-net device: `null` (a device whose frames go nowhere),
    /// `user` (user-mode networking with libslirp, like QEMU's `-nic user`: the guest is 10.0.2.15/24,
    /// the host 10.0.2.2, DNS 10.0.2.3, and it reaches whatever the host reaches), `loopback`
    /// (frames come straight back), or `none` (no network device).
    #[arg(long, default_value = "null", value_name = "BACKEND")]
    net: NetMode,
    /// Forward a host port into the guest (with --net user), QEMU's hostfwd syntax:
    /// [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT, e.g. tcp:127.0.0.1:8080-:80. Repeatable.
    #[arg(long, value_name = "RULE")]
    hostfwd: Vec<HostFwd>,
    /// Print instructions executed, wall time and guest MIPS on exit.
    #[arg(long)]
    stats: bool,
    /// Write every executed instruction to FILE, one line each: instruction count, privilege,
    /// pc, encoding and disassembly. Slow (one instruction per block); for debugging.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    #[command(flatten)]
    vnc: crate::vnc::VncArgs,
}

/// The machine options every command that boots a guest shares (`vm run`, `record`, `host`,
/// `workload run`); the kernel is each command's own option, since `record --resume` needs none.
#[derive(Args, Debug)]
pub struct MachineArgs {
    /// Initramfs (a cpio archive, optionally compressed as the kernel supports).
    #[arg(long, value_name = "PATH")]
    pub initrd: Option<PathBuf>,
    /// Raw disk image for the virtio block device. Never modified: guest writes go to a
    /// copy-on-write overlay held in memory.
    #[arg(long, value_name = "PATH")]
    pub disk: Option<PathBuf>,
    /// Kernel command line.
    #[arg(long, default_value = "console=ttyS0", value_name = "CMDLINE")]
    pub append: String,
    /// Guest RAM, in bytes or with a K/M/G suffix.
    #[arg(long, default_value = "256M", value_parser = parse_size)]
    pub memory: usize,
    /// Framebuffer size WIDTHxHEIGHT, or `none`.
    #[arg(long, default_value = "640x480", value_parser = parse_fb)]
    pub fb: Fb,
    /// Guest instructions per 100 ns timer tick: the guest's nominal speed (10 = 100 MIPS).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub instructions_per_tick: u64,
    /// Boot in M-mode at the start of RAM (ISA tests, firmware) instead of Linux's S-mode entry.
    #[arg(long)]
    pub bare_metal: bool,
}

impl MachineArgs {
    /// The machine configuration: reads the kernel and initramfs (clear errors naming the file),
    /// takes the disk and device choices from the caller.
    pub fn config(&self, kernel: &std::path::Path, devices: DevicesConfig) -> Result<MachineConfig> {
        Ok(MachineConfig {
            ram_size: self.memory,
            kernel: read_image("kernel", kernel, IMAGE_LIMIT)?,
            initrd: self.read_initrd()?,
            cmdline: self.append.clone(),
            framebuffer: self.fb.0,
            instructions_per_tick: self.instructions_per_tick,
            devices,
            boot: if self.bare_metal { BootMode::BareMetal } else { BootMode::Linux },
        })
    }

    /// The initramfs, read again (a reboot boots from the files as they are now).
    pub fn read_initrd(&self) -> Result<Option<Vec<u8>>> {
        Ok(self.initrd.as_deref().map(|p| read_image("initramfs", p, IMAGE_LIMIT)).transpose()?)
    }
}

#[derive(Debug, Clone, Copy)]
/// `--fb`: a framebuffer size, or none. Shared by every command that builds a machine.
pub struct Fb(pub Option<(u32, u32)>);

pub fn parse_fb(s: &str) -> Result<Fb, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(Fb(None));
    }
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("`{s}`: expected WIDTHxHEIGHT or none"))?;
    let parse = |v: &str| {
        v.parse::<u32>()
            .map_err(|_| format!("`{s}`: `{v}` is not a number"))
    };
    Ok(Fb(Some((parse(w)?, parse(h)?))))
}

/// `256M`, `1G`, `65536`, `512K` → bytes.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let (digits, shift) = match s.trim().to_ascii_uppercase().as_str() {
        t if t.ends_with("G") || t.ends_with("GIB") => (
            t.trim_end_matches("IB").trim_end_matches('G').to_string(),
            30,
        ),
        t if t.ends_with("M") || t.ends_with("MIB") => (
            t.trim_end_matches("IB").trim_end_matches('M').to_string(),
            20,
        ),
        t if t.ends_with("K") || t.ends_with("KIB") => (
            t.trim_end_matches("IB").trim_end_matches('K').to_string(),
            10,
        ),
        t => (t.to_string(), 0),
    };
    let n: usize = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a size (e.g. 256M, 1G)"))?;
    n.checked_shl(shift)
        .filter(|v| v >> shift == n)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// Kernel and initramfs files larger than this are refused (a wrong path, not a kernel).
const IMAGE_LIMIT: u64 = 1 << 30;

pub fn main(command: VmCommand) -> Result<ExitCode> {
    match command {
        VmCommand::Run(args) => run(args),
    }
}

/// Instructions per slice between polls of the environment: ~1 ms of guest time at 100 MIPS,
/// short enough that typing feels immediate.
const SLICE: u64 = 100_000;

fn run(args: RunArgs) -> Result<ExitCode> {
    let disk = match &args.machine.disk {
        Some(path) => Some(Box::new(doppel_host::disk::FileDisk::open(path)?) as _),
        None => None,
    };
    let devices = DevicesConfig {
        disk,
        net: args.net != NetMode::None,
        ..DevicesConfig::default()
    };
    let config = args.machine.config(&args.kernel, devices)?;
    let mut machine = Machine::new(config).context("cannot build the machine")?;

    let (mut env, input) = LiveEnvironment::new(Box::new(StdoutSink::default()));
    let net_config = UserNetConfig {
        hostfwd: args.hostfwd.clone(),
        ..UserNetConfig::default()
    };
    if let Some(backend) =
        net::start(args.net, net_config, &input).context("cannot start the network")?
    {
        env.set_network(backend);
    }
    let mut vnc = if args.vnc.enabled() {
        if args.machine.fb.0.is_none() {
            bail!("--vnc and --ws need a framebuffer (not --fb none)");
        }
        Some(crate::vnc::start(&args.vnc, "doppel", input.clone())?)
    } else {
        None
    };
    let mut env = crate::vnc::DisplayEnv { inner: env, due: None };
    let raw = RawMode::enable();
    terminal::spawn_stdin_reader(input).context("cannot read the terminal")?;

    let mut trace = match &args.trace {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create the trace file {}", path.display()))?;
            machine.set_trace(true);
            Some((std::io::BufWriter::new(file), path))
        }
        None => None,
    };

    let started = Instant::now();
    let limit = args.max_instructions.unwrap_or(u64::MAX);
    // Instructions run before the last reboot (--max-instructions counts across reboots).
    let mut before_reset = 0u64;
    let exit = loop {
        let until = machine
            .icount()
            .saturating_add(SLICE)
            .min(limit.saturating_sub(before_reset));
        let exit = machine.run(&mut env, until);
        if let Some((out, path)) = &mut trace {
            write_trace(out, &machine.take_trace())
                .with_context(|| format!("cannot write the trace file {}", path.display()))?;
        }
        if let Some(v) = &mut vnc {
            v.publisher.tick(&mut machine, Instant::now());
            env.due = Some(v.publisher.due());
        }
        match exit {
            Exit::Limit if before_reset + machine.icount() >= limit => break None,
            Exit::Limit => continue,
            Exit::Reset => {
                before_reset += machine.icount();
                eprintln!("\r\ndoppel: the guest asked for a reboot; restarting the machine\r");
                let kernel = read_image("kernel", &args.kernel, IMAGE_LIMIT)?;
                let initrd = args.machine.read_initrd()?;
                machine
                    .reset(&kernel, initrd.as_deref())
                    .context("cannot restart the machine")?;
            }
            other => break Some(other),
        }
    };
    if let Some((mut out, path)) = trace {
        std::io::Write::flush(&mut out)
            .with_context(|| format!("cannot write the trace file {}", path.display()))?;
    }
    drop(raw);
    let elapsed = started.elapsed();
    if args.stats {
        let n = before_reset + machine.icount();
        eprintln!(
            "\ndoppel: {n} instructions in {:.3} s ({:.1} MIPS), guest time {:.3} s, peak RSS {}",
            elapsed.as_secs_f64(),
            n as f64 / elapsed.as_secs_f64() / 1e6,
            machine.now() as f64 / doppel_machine::TIMEBASE_HZ as f64,
            peak_rss().unwrap_or_else(|| "unknown".into()),
        );
        if let Some(v) = &vnc {
            eprintln!("{}", crate::vnc::stats_line(v, elapsed));
        }
        if let Some(s) = env.inner.network_stats() {
            eprintln!(
                "doppel: network ({}): guest sent {} frames ({} bytes), received {} frames ({} bytes)",
                args.net.name(),
                s.tx_frames,
                s.tx_bytes,
                s.rx_frames,
                s.rx_bytes
            );
        }
    }
    Ok(match exit {
        None => {
            eprintln!(
                "\ndoppel: stopped after {limit} instructions (--max-instructions) at {}",
                machine.location()
            );
            ExitCode::from(3)
        }
        Some(Exit::PowerOff(0)) => ExitCode::SUCCESS,
        Some(Exit::PowerOff(code)) => {
            eprintln!("\ndoppel: guest powered off with code {code}");
            ExitCode::from(u8::try_from(code).unwrap_or(1).max(1))
        }
        Some(Exit::Reset) => unreachable!("Reset restarts the machine in the loop"),
        Some(Exit::Environment(e)) if e.to_string().contains("Ctrl-A x") => {
            eprintln!("\ndoppel: quit at {}", machine.location());
            ExitCode::SUCCESS
        }
        Some(Exit::Environment(e)) => bail!("the machine stopped: {e} (at {})", machine.location()),
        Some(Exit::Limit) => unreachable!("Limit is handled in the loop"),
    })
}

/// One line per traced instruction: `icount priv pc encoding disassembly`.
fn write_trace(
    out: &mut impl std::io::Write,
    entries: &[doppel_machine::cpu::TraceEntry],
) -> std::io::Result<()> {
    for e in entries {
        let word = if e.raw <= 0xffff && e.raw & 3 != 3 {
            format!("{:04x}    ", e.raw)
        } else {
            format!("{:08x}", e.raw)
        };
        writeln!(
            out,
            "{} {} {:016x} {word} {}",
            e.icount,
            e.prv.letter(),
            e.pc,
            doppel_machine::cpu::decode::disasm(e.raw)
        )?;
    }
    Ok(())
}

/// This process's peak resident set size, from `/proc/self/status` (`VmHWM`).
fn peak_rss() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.trim_start_matches("VmHWM:").trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256M").unwrap(), 256 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("64KiB").unwrap(), 64 << 10);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn framebuffer_sizes() {
        assert_eq!(parse_fb("640x480").unwrap().0, Some((640, 480)));
        assert_eq!(parse_fb("none").unwrap().0, None);
        assert!(parse_fb("640").is_err());
        assert!(parse_fb("ax480").is_err());
    }
}

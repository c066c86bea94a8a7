//! `doppel record` and `doppel replay`: record a guest run to a replay log plus its starting
//! snapshot, and replay it exactly, verifying checkpoints.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use doppel_host::disk::FileDisk;
use doppel_host::live::LiveEnvironment;
use doppel_host::terminal::{self, RawMode, StdoutSink};
use doppel_machine::devices::{DevicesConfig, DiskBase, EnvDisk};
use doppel_machine::{
    EnvError, Environment, Exit, IdleState, InputEvent, InstructionCount, Machine,
    NullEnvironment, Output, Ticks, TIMEBASE_HZ,
};
use doppel_replay::snapshot::Step;
use doppel_replay::wire::Header;
use doppel_replay::{
    AsyncOptions, AsyncSnapshot, LogStats, MachineInfo, RecordOptions, Recorder, ReplayError, ReplayStop, Replayer,
    Snapshot,
};

/// Exit status of `doppel replay` when the replay diverged from the recording.
pub const EXIT_DIVERGED: u8 = 4;

/// How the guest's disk reaches the replayer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiskModeArg {
    /// Snapshotted disk: the replayer needs the same base image; only guest writes (the
    /// copy-on-write overlay) travel, inside snapshots. The log carries no disk data.
    Snapshot,
    /// Output-replayed disk: every read of the base image goes into the log; the replayer needs
    /// no disk image.
    Log,
}

/// Record a guest run to a replay log, plus the snapshot it starts from.
///
/// Like `doppel vm run` (same machine options), but everything non-deterministic that enters the
/// machine (terminal or scripted input, idle time, entropy, disk reads with --disk-mode log) is
/// written to LOG, with periodic checkpoints (hashes of the machine state). The machine state at
/// the start is written to LOG.snap (CPU, devices, RAM, disk overlay), so `doppel replay LOG`
/// needs neither the kernel nor the initramfs. A summary goes to LOG.json.
///
/// Input comes from this terminal (Ctrl-A x stops and ends the log cleanly), or with --script
/// from a file of timed steps, one per line, run in order:
///
///   wait "TEXT"        wait until the console prints TEXT (counted from the previous step)
///   sleep SECONDS      let this much guest time pass
///   at N               wait until instruction N
///   uart "TEXT"        type bytes on the serial console (escapes: \n \r \t \\ \" \xNN)
///   key CODE down|up   a key on the virtio keyboard (Linux key code, KEY_A = 30)
///   move X Y           the virtio tablet's pointer, in framebuffer pixels
///   button CODE down|up  a pointer button (BTN_LEFT = 272)
///   wheel N            wheel detents
///   net HEX            an Ethernet frame received by the virtio NIC, as hex
///   # ...              a comment
///
/// With a script, idle guest time is skipped (the run is as fast as the host allows, and exactly
/// reproducible). Without one, the guest idles in real time as under `vm run`.
///
/// Examples:
///   doppel record --kernel Image --initrd initramfs.cpio run.drr
///   doppel record --kernel Image --initrd initramfs.cpio --append "console=ttyS0 doppel.run=evread" \
///       --script inputs.txt run.drr
///   doppel record --kernel Image --initrd initramfs.cpio --disk disk.img --disk-mode log run.drr
///   doppel record --kernel Image --initrd initramfs.cpio --start-at 300000000 tail.drr
///
/// Exit status: 0 when the log was written (whatever the guest did), 1 on an error.
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct RecordArgs {
    /// Where to write the replay log (LOG.snap and LOG.json are written beside it).
    #[arg(value_name = "LOG")]
    log_file: PathBuf,
    /// Linux kernel `Image` (not needed with --resume).
    #[arg(long, value_name = "PATH", required_unless_present = "resume")]
    kernel: Option<PathBuf>,
    #[command(flatten)]
    machine: crate::vm::MachineArgs,
    /// How the disk reaches the replayer (see DISK MODES in the long help).
    #[arg(long, value_enum, default_value = "snapshot")]
    disk_mode: DiskModeArg,
    /// Drive the guest from a script of timed inputs instead of this terminal.
    #[arg(long, value_name = "FILE")]
    script: Option<PathBuf>,
    /// Stop after this many guest instructions (the log ends cleanly there).
    #[arg(long, value_name = "N")]
    max_instructions: Option<u64>,
    /// Instructions between checkpoints.
    #[arg(long, default_value_t = 100_000_000, value_name = "N")]
    checkpoint_every: u64,
    /// Every N-th checkpoint also hashes all of RAM (0: never; the last one always does).
    #[arg(long, default_value_t = 10, value_name = "N")]
    full_every: u64,
    /// Run unrecorded up to instruction N, then take an asynchronous snapshot of the running
    /// machine and start the log there (RecRep §3.1; rounds and stall are reported).
    #[arg(long, value_name = "N")]
    start_at: Option<u64>,
    /// Start from a snapshot file (LOG.snap of an earlier recording, or --save-snapshot's)
    /// instead of booting; --kernel is then not needed.
    #[arg(long, value_name = "SNAP", conflicts_with = "start_at")]
    resume: Option<PathBuf>,
    /// At the end of the run, also write a snapshot of the final state to this file (restore it
    /// with --resume).
    #[arg(long, value_name = "SNAP")]
    save_snapshot: Option<PathBuf>,
    /// Run exactly the same way without recording (no log; for measuring record overhead).
    #[arg(long)]
    unrecorded: bool,
    /// Do not echo the guest console.
    #[arg(long, short)]
    quiet: bool,
}

/// Replay a log made by `doppel record`, verifying every checkpoint.
///
/// The machine is restored from the log's snapshot (LOG.snap by default) and replayed to the end
/// of the log. Idle time is skipped, so a mostly idle guest replays much faster than it ran. At
/// the end the replay speed is compared with the recording's (from LOG.json).
///
/// Examples:
///   doppel replay run.drr
///   doppel replay run.drr --disk disk.img          (a log recorded with --disk-mode snapshot)
///   doppel replay run.drr --snapshot mid.snap      (start from a later snapshot at a checkpoint)
///
/// Exit status: 0 when the replay reached the end of the log with every checkpoint equal;
/// 4 when it diverged (the message names the instruction count and what differs); 1 on any other
/// error (unreadable or corrupt log or snapshot, another machine configuration).
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ReplayArgs {
    /// The replay log.
    #[arg(value_name = "LOG")]
    log_file: PathBuf,
    /// The snapshot to start from (default: LOG.snap). It must be the log's start or a snapshot
    /// taken at one of its checkpoints.
    #[arg(long, value_name = "SNAP")]
    snapshot: Option<PathBuf>,
    /// The base disk image, for a log recorded with --disk-mode snapshot.
    #[arg(long, value_name = "PATH")]
    disk: Option<PathBuf>,
    /// Stop after this many guest instructions.
    #[arg(long, value_name = "N")]
    max_instructions: Option<u64>,
    /// Echo the guest console as it is replayed.
    #[arg(long)]
    console: bool,
}

/// Instructions per run slice between environment polls and script steps.
const SLICE: u64 = 100_000;

fn with_ext(path: &Path, ext: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(ext);
    PathBuf::from(s)
}

/// Serves base-image reads for the output-replayed disk, around any environment.
struct DiskServer<E> {
    inner: E,
    disk: Option<FileDisk>,
}

impl<E: Environment> Environment for DiskServer<E> {
    fn poll(&mut self, icount: InstructionCount) -> Result<Option<InputEvent>, EnvError> {
        self.inner.poll(icount)
    }
    fn next_event_at(&self) -> Option<InstructionCount> {
        self.inner.next_event_at()
    }
    fn idle(&mut self, state: IdleState) -> Result<Ticks, EnvError> {
        self.inner.idle(state)
    }
    fn yield_after_idle(&mut self) -> bool {
        self.inner.yield_after_idle()
    }
    fn entropy(&mut self, icount: InstructionCount, buf: &mut [u8]) {
        self.inner.entropy(icount, buf);
    }
    fn output(&mut self, icount: InstructionCount, output: Output<'_>) {
        self.inner.output(icount, output);
    }
    fn disk_read(&mut self, _icount: InstructionCount, offset: u64, buf: &mut [u8]) -> Result<(), EnvError> {
        let disk = self.disk.as_mut().ok_or_else(|| EnvError::msg("no disk image to serve"))?;
        disk.read_at(offset, buf).map_err(|e| EnvError(Box::new(e)))
    }
}

/// The scripted environment: input from the script driver, idle time skipped to the next timer
/// deadline or to the end of the script's current `sleep` (`wake_at`), whichever comes first, a
/// fixed entropy stream, the console kept (for `wait`) and optionally echoed. An idle warp that
/// reaches `wake_at` ends the slice, so the input after a `sleep` arrives on time (a key
/// released late would autorepeat in the guest).
#[derive(Default)]
struct ScriptEnv {
    null: NullEnvironment,
    queue: VecDeque<InputEvent>,
    echo: bool,
    wake_at: Option<Ticks>,
    woke: bool,
}

impl Environment for ScriptEnv {
    fn poll(&mut self, _icount: InstructionCount) -> Result<Option<InputEvent>, EnvError> {
        Ok(self.queue.pop_front())
    }
    fn idle(&mut self, state: IdleState) -> Result<Ticks, EnvError> {
        match self.wake_at {
            Some(w) if state.deadline.is_none_or(|d| w < d) => {
                self.woke = true;
                Ok(w.saturating_sub(state.now))
            }
            _ => self.null.idle(state),
        }
    }
    fn yield_after_idle(&mut self) -> bool {
        std::mem::take(&mut self.woke)
    }
    fn entropy(&mut self, icount: InstructionCount, buf: &mut [u8]) {
        self.null.entropy(icount, buf);
    }
    fn output(&mut self, icount: InstructionCount, output: Output<'_>) {
        if let (true, Output::Console(bytes)) = (self.echo, output) {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(bytes);
            let _ = out.flush();
        }
        self.null.output(icount, output);
        // Only the console is needed (for `wait`); drop what the guest transmits.
        self.null.net_tx.clear();
    }
}

/// One step of a script.
#[derive(Debug, Clone, PartialEq)]
pub enum ScriptStep {
    Wait(String),
    Sleep(f64),
    At(u64),
    Input(InputEvent),
}

/// Parse a script (see `doppel record --help`). Errors name the line.
pub fn parse_script(text: &str) -> Result<Vec<ScriptStep>> {
    let mut steps = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let step = parse_step(line).with_context(|| format!("script line {}: `{line}`", n + 1))?;
        steps.push(step);
    }
    Ok(steps)
}

fn parse_step(line: &str) -> Result<ScriptStep> {
    let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    let args: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| -> Result<i64> {
        let a = args.get(i).with_context(|| format!("`{word}` needs argument {}", i + 1))?;
        a.parse::<i64>().with_context(|| format!("`{a}` is not a number"))
    };
    let updown = |i: usize| -> Result<bool> {
        match args.get(i).copied() {
            Some("down") => Ok(true),
            Some("up") => Ok(false),
            other => bail!("expected `down` or `up`, found {other:?}"),
        }
    };
    let code = |i: usize| -> Result<u16> { u16::try_from(num(i)?).context("code out of range") };
    Ok(match word {
        "wait" => ScriptStep::Wait(String::from_utf8_lossy(&unquote(rest)?).into_owned()),
        "sleep" => {
            let s: f64 = rest.parse().with_context(|| format!("`{rest}` is not a number of seconds"))?;
            if !(0.0..1e6).contains(&s) {
                bail!("sleep {s}: out of range");
            }
            ScriptStep::Sleep(s)
        }
        "at" => ScriptStep::At(u64::try_from(num(0)?).context("negative instruction count")?),
        "uart" => ScriptStep::Input(InputEvent::UartRx(unquote(rest)?)),
        "key" => ScriptStep::Input(InputEvent::Key { code: code(0)?, down: updown(1)? }),
        "button" => ScriptStep::Input(InputEvent::PointerButton { code: code(0)?, down: updown(1)? }),
        "move" => ScriptStep::Input(InputEvent::PointerMove {
            x: u32::try_from(num(0)?).context("x out of range")?,
            y: u32::try_from(num(1)?).context("y out of range")?,
        }),
        "wheel" => ScriptStep::Input(InputEvent::Wheel { delta: i32::try_from(num(0)?).context("out of range")? }),
        "net" => ScriptStep::Input(InputEvent::NetRx(parse_hex(rest)?)),
        other => bail!("unknown step `{other}` (wait, sleep, at, uart, key, move, button, wheel, net)"),
    })
}

fn parse_hex(s: &str) -> Result<Vec<u8>> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) || digits.is_empty() {
        bail!("a frame needs an even, non-zero number of hex digits");
    }
    digits
        .chunks(2)
        .map(|p| {
            let t = std::str::from_utf8(p).unwrap_or("??");
            u8::from_str_radix(t, 16).with_context(|| format!("`{t}` is not hex"))
        })
        .collect()
}

/// A double-quoted string with \n \r \t \\ \" \xNN escapes.
fn unquote(s: &str) -> Result<Vec<u8>> {
    let inner = s
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .filter(|_| s.len() >= 2)
        .context("expected a double-quoted string")?;
    let mut out = Vec::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut b = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            continue;
        }
        match chars.next() {
            Some('n') => out.push(b'\n'),
            Some('r') => out.push(b'\r'),
            Some('t') => out.push(b'\t'),
            Some('\\') => out.push(b'\\'),
            Some('"') => out.push(b'"'),
            Some('x') => {
                let h: String = chars.by_ref().take(2).collect();
                out.push(u8::from_str_radix(&h, 16).with_context(|| format!("`\\x{h}` is not a hex escape"))?);
            }
            other => bail!("unknown escape `\\{}`", other.map(String::from).unwrap_or_default()),
        }
    }
    Ok(out)
}

/// Walks a script between run slices.
struct ScriptDriver {
    steps: VecDeque<ScriptStep>,
    /// Console length when the current step began (for `wait`).
    console_mark: usize,
    /// Guest time when the current step began (for `sleep`).
    time_mark: Option<Ticks>,
}

impl ScriptDriver {
    /// Advance as far as the machine's position allows; queue inputs on `env`.
    fn advance(&mut self, m: &Machine, env: &mut ScriptEnv) {
        env.wake_at = None;
        while let Some(step) = self.steps.front() {
            let done = match step {
                ScriptStep::Input(ev) => {
                    env.queue.push_back(ev.clone());
                    true
                }
                ScriptStep::At(n) => m.icount() >= *n,
                ScriptStep::Sleep(s) => {
                    let start = *self.time_mark.get_or_insert(m.now());
                    // Whole ticks; the fraction is intended to be dropped.
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let ticks = (s * TIMEBASE_HZ as f64) as u64;
                    let due = start + ticks;
                    if m.now() < due {
                        env.wake_at = Some(due);
                    }
                    m.now() >= due
                }
                ScriptStep::Wait(text) => {
                    let console = &env.null.console[self.console_mark.min(env.null.console.len())..];
                    String::from_utf8_lossy(console).contains(text.as_str())
                }
            };
            if !done {
                return;
            }
            self.steps.pop_front();
            self.console_mark = env.null.console.len();
            self.time_mark = None;
        }
    }
}

/// A progress line on stderr, at most once a second, rewritten in place on a terminal.
struct Progress {
    tty: bool,
    last: Instant,
    shown: bool,
}

impl Progress {
    fn new() -> Progress {
        Progress { tty: std::io::stderr().is_terminal(), last: Instant::now(), shown: false }
    }

    fn tick(&mut self, line: impl FnOnce() -> String) {
        if self.last.elapsed() < Duration::from_secs(if self.tty { 1 } else { 10 }) {
            return;
        }
        self.last = Instant::now();
        self.shown = true;
        if self.tty {
            eprint!("\r\x1b[K{}", line());
        } else {
            eprintln!("{}", line());
        }
    }

    fn done(&mut self) {
        if self.shown && self.tty {
            eprintln!();
        }
    }
}

fn secs(ticks: Ticks) -> f64 {
    ticks as f64 / TIMEBASE_HZ as f64
}

fn open_disk(path: &Path) -> Result<FileDisk> {
    FileDisk::open(path).with_context(|| format!("cannot open disk image {}", path.display()))
}

/// Build the machine to record: booted from images, or restored from `--resume`.
fn build_machine(args: &RecordArgs) -> Result<(Machine, MachineInfo, Option<FileDisk>)> {
    let m = &args.machine;
    // The file the environment serves in --disk-mode log, and the machine's own base otherwise.
    let (base, served): (Option<Box<dyn DiskBase>>, Option<FileDisk>) = match (&m.disk, args.disk_mode) {
        (None, _) => (None, None),
        (Some(p), DiskModeArg::Snapshot) => (Some(Box::new(open_disk(p)?)), None),
        (Some(p), DiskModeArg::Log) => {
            let d = open_disk(p)?;
            (Some(Box::new(EnvDisk { len: d.len() })), Some(d))
        }
    };
    if let Some(path) = &args.resume {
        let snap = read_snapshot(path)?;
        let machine = snap.restore(base).with_context(|| format!("cannot restore {}", path.display()))?;
        return Ok((machine, snap.meta.machine.clone(), served));
    }
    let kernel = args.kernel.as_deref().context("--kernel is required (or --resume)")?;
    let config = m.config(kernel, DevicesConfig { disk: base, ..DevicesConfig::default() })?;
    let info = MachineInfo::of(&config);
    let machine = Machine::new(config).context("cannot build the machine")?;
    Ok((machine, info, served))
}

fn read_snapshot(path: &Path) -> Result<Snapshot> {
    let f = File::open(path).with_context(|| format!("cannot open snapshot {}", path.display()))?;
    Snapshot::read_from(BufReader::with_capacity(1 << 20, f)).with_context(|| format!("cannot read snapshot {}", path.display()))
}

fn write_snapshot(snap: &Snapshot, path: &Path) -> Result<u64> {
    let f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    snap.write_to(BufWriter::with_capacity(1 << 20, f)).with_context(|| format!("cannot write snapshot {}", path.display()))
}

/// What the asynchronous snapshot measured.
#[derive(Debug, Clone, serde::Serialize)]
struct AsyncReport {
    rounds: usize,
    pages_per_round: Vec<usize>,
    final_pages: usize,
    total_s: f64,
    stall_s: f64,
    /// The part of the stall that copies (the rest hashes the copy).
    final_copy_s: f64,
    instructions_during: u64,
}

/// Run unrecorded to `at`, then snapshot asynchronously while the machine keeps running.
fn async_snapshot<E: Environment>(
    machine: &mut Machine,
    env: &mut E,
    info: &MachineInfo,
    at: u64,
    progress: &mut Progress,
) -> Result<(Snapshot, AsyncReport)> {
    while machine.icount() < at {
        let until = (machine.icount() + SLICE).min(at);
        match machine.run(env, until) {
            Exit::Limit => progress.tick(|| format!("running to instruction {at}: {}", machine.icount())),
            other => bail!("the guest stopped ({other:?}) before instruction {at}"),
        }
    }
    progress.done();
    let started = Instant::now();
    let start_icount = machine.icount();
    let mut snap = AsyncSnapshot::begin(machine, info, AsyncOptions::default());
    // 1024 pages (4 MiB) per 100 000-instruction slice: the copy and the guest share the thread.
    while snap.step(machine, 1024) == Step::Copying {
        match machine.run(env, machine.icount() + SLICE) {
            Exit::Limit => {}
            other => bail!("the guest stopped ({other:?}) during the asynchronous snapshot"),
        }
    }
    let stall_start = Instant::now();
    let rounds: Vec<usize> = snap.rounds().iter().map(|r| r.pages).collect();
    let (frozen, final_pages) = snap.freeze(machine);
    let final_copy = stall_start.elapsed();
    // The log header needs the snapshot's state hash before the machine runs on, so hashing the
    // copy is part of the stall here.
    let snapshot = frozen.seal();
    let stall = stall_start.elapsed();
    let report = AsyncReport {
        rounds: rounds.len(),
        pages_per_round: rounds,
        final_pages,
        total_s: started.elapsed().as_secs_f64(),
        stall_s: stall.as_secs_f64(),
        final_copy_s: final_copy.as_secs_f64(),
        instructions_during: machine.icount() - start_icount,
    };
    Ok((snapshot, report))
}

/// The summary written to LOG.json and read back by `replay`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct RecordSummary {
    start_icount: u64,
    end_icount: u64,
    instructions: u64,
    guest_seconds: f64,
    wall_seconds: f64,
    log_bytes: u64,
    snapshot_bytes: u64,
    disk_mode: String,
    exit: String,
    kinds: serde_json::Value,
    async_snapshot: Option<serde_json::Value>,
}

fn kinds_json(s: &LogStats) -> serde_json::Value {
    let k = |k: doppel_replay::KindStats| serde_json::json!({ "records": k.records, "bytes": k.bytes });
    serde_json::json!({
        "events": k(s.events), "warps": k(s.warps), "entropy": k(s.entropy),
        "disk_reads": k(s.disk_reads), "checkpoints": k(s.checkpoints),
    })
}

pub fn record(args: RecordArgs) -> Result<ExitCode> {
    let (mut machine, info, served) = build_machine(&args)?;
    let script = match &args.script {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("cannot read script {}", p.display()))?;
            Some(parse_script(&text)?)
        }
        None => None,
    };
    match script {
        Some(steps) => {
            let env = ScriptEnv { echo: !args.quiet, ..ScriptEnv::default() };
            let driver = ScriptDriver { steps: steps.into(), console_mark: 0, time_mark: None };
            record_with(&args, &mut machine, &info, DiskServer { inner: env, disk: served }, Some(driver))
        }
        None => {
            let (env, input) = LiveEnvironment::new(Box::new(StdoutSink::default()));
            let raw = RawMode::enable();
            terminal::spawn_stdin_reader(input).context("cannot read the terminal")?;
            let r = record_with(&args, &mut machine, &info, DiskServer { inner: env, disk: served }, None::<ScriptDriver>);
            drop(raw);
            r
        }
    }
}

/// Queue script inputs, when the environment is the scripted one.
trait Drive<E> {
    fn drive(&mut self, m: &Machine, env: &mut E);
}

impl Drive<DiskServer<ScriptEnv>> for Option<ScriptDriver> {
    fn drive(&mut self, m: &Machine, env: &mut DiskServer<ScriptEnv>) {
        if let Some(d) = self {
            d.advance(m, &mut env.inner);
        }
    }
}

impl Drive<DiskServer<LiveEnvironment>> for Option<ScriptDriver> {
    fn drive(&mut self, _m: &Machine, _env: &mut DiskServer<LiveEnvironment>) {}
}

fn record_with<E: Environment>(
    args: &RecordArgs,
    machine: &mut Machine,
    info: &MachineInfo,
    mut env: E,
    mut driver: Option<ScriptDriver>,
) -> Result<ExitCode>
where
    Option<ScriptDriver>: Drive<E>,
{
    let mut progress = Progress::new();
    let limit = args.max_instructions.unwrap_or(u64::MAX);
    let mut async_report = None;
    let start_snapshot = match args.start_at {
        Some(at) => {
            let (snap, report) = async_snapshot(machine, &mut env, info, at, &mut progress)?;
            eprintln!(
                "doppel: asynchronous snapshot: {} rounds {:?} + {} final pages, total {:.3} s, stall {:.3} s \
                 (final copy {:.4} s, state hash {:.3} s), guest ran {} instructions meanwhile",
                report.rounds, report.pages_per_round, report.final_pages, report.total_s, report.stall_s,
                report.final_copy_s, report.stall_s - report.final_copy_s, report.instructions_during
            );
            async_report = Some(report);
            snap
        }
        None => Snapshot::take(machine, info),
    };
    let started = Instant::now();
    let start_icount = start_snapshot.meta.icount;
    let start_ticks = machine.now();
    let snap_path = with_ext(&args.log_file, ".snap");
    let mut snapshot_bytes = 0;
    let options = RecordOptions { checkpoint_period: args.checkpoint_every, full_every: args.full_every };

    let (exit, stats, log_bytes) = if args.unrecorded {
        let exit = run_loop(machine, &mut env, &mut driver, limit, &mut progress, |m, e, until| Ok(m.run(e, until)))?;
        (exit, LogStats::default(), 0)
    } else {
        snapshot_bytes = write_snapshot(&start_snapshot, &snap_path)?;
        let file = File::create(&args.log_file).with_context(|| format!("cannot create {}", args.log_file.display()))?;
        let sink = BufWriter::with_capacity(1 << 16, file);
        // The snapshot was just taken of the machine as it is: its hash is the log's start hash.
        let header = Header { fingerprint: info.fingerprint, start_icount, start_hash: start_snapshot.state_hash() };
        let mut rec = Recorder::with_header(env, sink, &header, options).context("cannot start the replay log")?;
        let exit = run_loop(machine, &mut rec, &mut driver, limit, &mut progress, |m, rec: &mut Recorder<E, _>, until| {
            rec.run(m, until).context("recording failed")
        })?;
        let stats = *rec.stats();
        let (_, mut sink) = rec.finish(machine).context("cannot end the replay log")?;
        sink.flush()?;
        let log_bytes = std::fs::metadata(&args.log_file)?.len();
        (exit, stats, log_bytes)
    };
    progress.done();
    let wall = started.elapsed().as_secs_f64();
    let instructions = machine.icount() - start_icount;
    let guest_seconds = secs(machine.now() - start_ticks);
    if let Some(path) = &args.save_snapshot {
        write_snapshot(&Snapshot::take(machine, info), path)?;
    }
    let summary = RecordSummary {
        start_icount,
        end_icount: machine.icount(),
        instructions,
        guest_seconds,
        wall_seconds: wall,
        log_bytes,
        snapshot_bytes,
        disk_mode: format!("{:?}", args.disk_mode).to_lowercase(),
        exit: exit.clone(),
        kinds: kinds_json(&stats),
        async_snapshot: async_report.map(|r| serde_json::to_value(r).unwrap_or_default()),
    };
    let json_path = with_ext(&args.log_file, ".json");
    if !args.unrecorded {
        std::fs::write(&json_path, serde_json::to_string_pretty(&summary)?)
            .with_context(|| format!("cannot write {}", json_path.display()))?;
    }
    eprintln!(
        "\ndoppel: {}: {instructions} instructions, {guest_seconds:.3} guest s in {wall:.3} wall s ({:.1} MIPS); \
         log {log_bytes} bytes ({:.2} KB per guest second: events {} B, warps {} B, entropy {} B, disk {} B, checkpoints {} B); \
         snapshot {snapshot_bytes} bytes",
        if args.unrecorded { "ran unrecorded" } else { "recorded" },
        instructions as f64 / wall.max(1e-9) / 1e6,
        log_bytes as f64 / 1000.0 / guest_seconds.max(1e-9),
        stats.events.bytes,
        stats.warps.bytes,
        stats.entropy.bytes,
        stats.disk_reads.bytes,
        stats.checkpoints.bytes,
    );
    if let Ok(path) = std::env::var("DOPPEL_RECORD_SUMMARY") {
        // For benchmark scripts: the summary even for --unrecorded runs.
        std::fs::write(&path, serde_json::to_string(&summary)?).with_context(|| format!("cannot write {path}"))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Run slices until the guest stops, the limit, or an environment error; returns how it ended.
fn run_loop<E, R>(
    machine: &mut Machine,
    env: &mut R,
    driver: &mut Option<ScriptDriver>,
    limit: u64,
    progress: &mut Progress,
    mut run: impl FnMut(&mut Machine, &mut R, u64) -> Result<Exit>,
) -> Result<String>
where
    R: AsInner<E>,
    Option<ScriptDriver>: Drive<E>,
{
    loop {
        driver.drive(machine, env.inner_env());
        if machine.icount() >= limit {
            return Ok(format!("stopped at --max-instructions {limit}"));
        }
        let until = machine.icount().saturating_add(SLICE).min(limit);
        match run(machine, env, until)? {
            Exit::Limit => progress.tick(|| {
                format!("recording: {} instructions, guest time {:.2} s", machine.icount(), secs(machine.now()))
            }),
            Exit::PowerOff(code) => return Ok(format!("guest powered off with code {code}")),
            Exit::Reset => return Ok("guest asked for a reset (not supported; stopped)".into()),
            Exit::Environment(e) if e.to_string().contains("Ctrl-A x") => return Ok("quit with Ctrl-A x".into()),
            Exit::Environment(e) => bail!("the machine stopped: {e} (at {})", machine.location()),
        }
    }
}

/// The scripted environment inside whatever wraps it (the recorder or nothing).
trait AsInner<E> {
    fn inner_env(&mut self) -> &mut E;
}

impl<E: Environment> AsInner<E> for E {
    fn inner_env(&mut self) -> &mut E {
        self
    }
}

impl<E: Environment, W: Write> AsInner<E> for Recorder<E, W> {
    fn inner_env(&mut self) -> &mut E {
        self.inner_mut()
    }
}

pub fn replay(args: ReplayArgs) -> Result<ExitCode> {
    let snap_path = args.snapshot.clone().unwrap_or_else(|| with_ext(&args.log_file, ".snap"));
    let snap = read_snapshot(&snap_path)?;
    let base: Option<Box<dyn DiskBase>> = match &args.disk {
        Some(p) => Some(Box::new(open_disk(p)?)),
        None => None,
    };
    let mut machine = snap.restore(base).with_context(|| format!("cannot restore {}", snap_path.display()))?;
    let file = File::open(&args.log_file).with_context(|| format!("cannot open replay log {}", args.log_file.display()))?;
    let mut replayer = Replayer::new(BufReader::with_capacity(1 << 16, file))
        .with_context(|| format!("cannot read replay log {}", args.log_file.display()))?;
    let header = *replayer.header();
    if header.fingerprint != snap.meta.machine.fingerprint {
        bail!(
            "{} was recorded on another machine configuration than snapshot {} was taken of",
            args.log_file.display(),
            snap_path.display()
        );
    }
    if header.start_icount == machine.icount() {
        replayer.check_start(&machine, &snap.meta.machine.fingerprint).context("the snapshot is not where the log starts")?;
    } else {
        replayer
            .skip_to_checkpoint(machine.icount())
            .with_context(|| format!("the snapshot (instruction {}) is not at one of the log's checkpoints", machine.icount()))?;
        replayer.verify(&machine).context("the snapshot differs from the log's checkpoint")?;
    }
    let summary: Option<RecordSummary> = std::fs::read_to_string(with_ext(&args.log_file, ".json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok());
    let limit = args.max_instructions.unwrap_or(u64::MAX);
    let start_icount = machine.icount();
    let start_ticks = machine.now();
    let mut progress = Progress::new();
    let started = Instant::now();
    let mut console_done = 0;
    let result = loop {
        let until = machine.icount().saturating_add(10_000_000).min(limit);
        let r = replayer.run(&mut machine, until);
        if args.console && replayer.console.len() > console_done {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&replayer.console[console_done..]);
            let _ = out.flush();
            console_done = replayer.console.len();
        }
        match r {
            Ok(ReplayStop::Limit) if machine.icount() >= limit => break Ok("stopped at --max-instructions".to_string()),
            Ok(ReplayStop::Limit) => progress.tick(|| {
                let total = summary.as_ref().map_or(0, |s| s.end_icount);
                let pct = if total > 0 { format!(" ({:.0}%)", 100.0 * machine.icount() as f64 / total as f64) } else { String::new() };
                format!("replaying: instruction {}{pct}, {} checkpoints verified", machine.icount(), replayer.checkpoints_verified())
            }),
            Ok(ReplayStop::End) => break Ok("reached the end of the log".to_string()),
            Ok(ReplayStop::PowerOff(code)) => {
                break replayer.finish(&machine).map(|()| format!("the guest powered off with code {code}, as recorded"))
            }
            Ok(ReplayStop::Reset) => break Ok("the guest asked for a reset, as recorded".to_string()),
            Ok(ReplayStop::Starved) => break Err(ReplayError::NoHeader),
            Err(e) => break Err(e),
        }
    };
    progress.done();
    let wall = started.elapsed().as_secs_f64();
    let instructions = machine.icount() - start_icount;
    let guest = secs(machine.now() - start_ticks);
    match result {
        Ok(how) => {
            eprintln!(
                "doppel: replay ok: {how}; {instructions} instructions, {guest:.3} guest s in {wall:.3} wall s, \
                 {} checkpoints equal, final state hash {}",
                replayer.checkpoints_verified(),
                hex8(&machine.state_hash())
            );
            if let Some(s) = summary.filter(|s| s.start_icount == start_icount && s.wall_seconds > 0.0) {
                eprintln!(
                    "doppel: recorded in {:.3} wall s, replayed in {wall:.3} wall s: replay is {:.2}x the recording's speed",
                    s.wall_seconds,
                    s.wall_seconds / wall.max(1e-9)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ (ReplayError::Divergence { .. } | ReplayError::Checkpoint { .. })) => {
            eprintln!("doppel: replay diverged: {e} (at {})", machine.location());
            Ok(ExitCode::from(EXIT_DIVERGED))
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("replay of {} failed at instruction {}", args.log_file.display(), machine.icount()))),
    }
}

fn hex8(h: &[u8; 32]) -> String {
    h[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_lines_parse_and_errors_name_the_line() {
        let steps = parse_script(
            "# boot\nwait \"~ # \"\nuart \"ls\\n\\x41\"\nsleep 0.5\nat 100\nkey 30 down\nmove 10 20\nbutton 272 up\nwheel -2\nnet 0a0b 0c\n",
        )
        .unwrap();
        assert_eq!(
            steps,
            vec![
                ScriptStep::Wait("~ # ".into()),
                ScriptStep::Input(InputEvent::UartRx(b"ls\nA".to_vec())),
                ScriptStep::Sleep(0.5),
                ScriptStep::At(100),
                ScriptStep::Input(InputEvent::Key { code: 30, down: true }),
                ScriptStep::Input(InputEvent::PointerMove { x: 10, y: 20 }),
                ScriptStep::Input(InputEvent::PointerButton { code: 272, down: false }),
                ScriptStep::Input(InputEvent::Wheel { delta: -2 }),
                ScriptStep::Input(InputEvent::NetRx(vec![10, 11, 12])),
            ]
        );
        for (bad, what) in [
            ("key 30 sideways", "line 1"),
            ("\n\nuart ls", "line 3"),
            ("net abc", "line 1"),
            ("jump 3", "unknown step"),
            ("uart \"\\q\"", "escape"),
        ] {
            let e = format!("{:#}", parse_script(bad).unwrap_err());
            assert!(e.contains(what), "{bad}: {e}");
        }
    }
}

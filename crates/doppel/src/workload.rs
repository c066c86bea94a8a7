//! `doppel workload …`: boot the guest with one of its workloads, drive the workload's scripted
//! input through the environment, report what happened.
//!
//! The guest image says which workloads it carries: `guest/build.sh` writes `workloads.txt` beside
//! the `Image` (the same file is `/etc/workloads/MANIFEST` in the initramfs), one line per
//! workload, `NAME<TAB>NEEDS<TAB>SECONDS<TAB>DESCRIPTION` (see [`parse_manifest`]). The guest's
//! `/init` runs `/etc/workloads/NAME` for `doppel.run=NAME`.
//!
//! Determinism: the machine runs in fixed slices of [`SLICE`] instructions; the console is read
//! between slices, and a workload's script is a list of inputs at guest times measured from the
//! moment its *ready line* appeared on the console. Both are functions of the instruction stream
//! only, so two runs with the same guest, workload and script feed the same inputs at the same
//! instruction counts and end in the same state (the report prints the state hash). Idle time is
//! skipped to the guest's next timer deadline, as in every test environment: guest time runs
//! at the guest's own pace, faster than real time when it sleeps.
//!
//! Captures: a guest program that prints `doppel-capture: LABEL` (the video player after each
//! frame, the game at its end) has the framebuffer hashed at the end of that slice (the report
//! lists `capture LABEL fb_blake3=…`) and, with `--capture DIR`, saved as `DIR/LABEL.ppm`.

// Guest seconds to ticks and statistics: float conversions whose truncation is intended.
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use doppel_host::images::read_image;
use doppel_machine::machine::{Exit, Machine, MachineConfig};
use doppel_machine::{
    DevicesConfig, EnvError, Environment, IdleState, InputEvent, InstructionCount,
    NullEnvironment, Output, Ticks, TIMEBASE_HZ,
};

#[derive(Subcommand, Debug)]
pub enum WorkloadCommand {
    /// List the workloads the guest image carries (from its workloads.txt).
    List(GuestArgs),
    /// Boot the guest with one workload, drive its scripted input, report what happened.
    ///
    /// Examples:
    ///   doppel workload run idle --seconds 5
    ///   doppel workload run video-local-240p --capture /tmp/frames
    ///   doppel workload run game --script alt --screenshot game.png
    ///   doppel workload run desktop --seconds 20 --screenshot desktop.png
    ///
    /// The report is `key=value` lines on stdout. Exit status: 0 when the workload ended with
    /// status 0 (or ran its --seconds), 1 on an error, the workload's own status otherwise.
    #[command(verbatim_doc_comment)]
    Run(RunArgs),
}

#[derive(Args, Debug)]
pub struct GuestArgs {
    /// Guest directory (Image, initramfs.cpio, workloads.txt, workloads.img). Default:
    /// $DOPPEL_GUEST_DIR, else $DOPPEL_CACHE/guest/current, else ~/.cache/doppel/guest/current.
    #[arg(long, value_name = "DIR")]
    guest: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The workload's name (see `doppel workload list`).
    name: String,
    #[command(flatten)]
    guest: GuestArgs,
    /// Guest seconds to run: passed to workloads that take a duration (idle, emptyloop, game);
    /// for the others, the machine stops after this much guest time if the workload has not ended.
    #[arg(long, value_name = "N")]
    seconds: Option<f64>,
    /// Which of the workload's built-in input scripts to play (`default`, or e.g. `alt` for game).
    #[arg(long, default_value = "default", value_name = "NAME")]
    script: String,
    /// Extra arguments for the workload (comma-separated, passed as `doppel.args`).
    #[arg(long, value_name = "A,B")]
    args: Option<String>,
    /// Save the framebuffer when the run ends: PNG, or PPM when PATH ends in `.ppm`.
    #[arg(long, value_name = "PATH")]
    screenshot: Option<PathBuf>,
    /// Save each `doppel-capture: LABEL` screen as DIR/LABEL.ppm.
    #[arg(long, value_name = "DIR")]
    capture: Option<PathBuf>,
    /// Copy the guest's console to stderr as it runs.
    #[arg(long)]
    console: bool,
    /// Guest instructions per 100 ns timer tick: the guest's nominal speed (10 = 100 MIPS).
    #[arg(long, default_value_t = 10, value_name = "N")]
    instructions_per_tick: u64,
    /// Stop after this many guest instructions (a safety net; exit status 3).
    #[arg(long, default_value_t = 200_000_000_000, value_name = "N")]
    max_instructions: u64,
}

/// One line of a guest's workload manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    /// What the workload needs of the machine: `disk`, `fb`, `net`.
    pub needs: Vec<String>,
    /// The workload takes its duration in seconds as its first argument.
    pub seconds_arg: bool,
    pub description: String,
}

/// Parses `workloads.txt`: one workload per line, four tab-separated fields
/// `NAME NEEDS SECONDS DESCRIPTION`; NEEDS is a comma list or `-`, SECONDS is `arg` or `-`.
/// Empty lines and `#` comments are skipped. Errors name the line.
pub fn parse_manifest(text: &str) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let at = i + 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.splitn(4, '\t').collect();
        let [name, needs, seconds, description] = fields[..] else {
            return Err(format!("line {at}: expected 4 tab-separated fields, found {}", fields.len()));
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(format!("line {at}: `{name}` is not a workload name"));
        }
        let needs: Vec<String> = match needs {
            "-" | "" => Vec::new(),
            list => list.split(',').map(str::to_string).collect(),
        };
        if let Some(bad) = needs.iter().find(|n| !["disk", "fb", "net"].contains(&n.as_str())) {
            return Err(format!("line {at}: unknown need `{bad}` (known: disk, fb, net)"));
        }
        let seconds_arg = match seconds {
            "arg" => true,
            "-" | "" => false,
            other => return Err(format!("line {at}: seconds field `{other}` is neither `arg` nor `-`")),
        };
        if entries.iter().any(|e: &Entry| e.name == name) {
            return Err(format!("line {at}: workload `{name}` listed twice"));
        }
        entries.push(Entry { name: name.to_string(), needs, seconds_arg, description: description.to_string() });
    }
    Ok(entries)
}

/// Workloads the issue names that a guest image may lack (they come with guest networking).
const PLANNED: &[&str] = &[
    "video-stream-240p",
    "video-stream-360p",
    "video-stream-480p",
    "inet",
    "onet",
    "download",
    "compile",
];

fn guest_dir(args: &GuestArgs) -> Result<PathBuf> {
    if let Some(dir) = &args.guest {
        return Ok(dir.clone());
    }
    if let Some(dir) = std::env::var_os("DOPPEL_GUEST_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let cache = std::env::var_os("DOPPEL_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/doppel")))
        .context("neither DOPPEL_CACHE nor HOME is set; give --guest DIR")?;
    Ok(cache.join("guest/current"))
}

fn read_manifest(dir: &Path) -> Result<Vec<Entry>> {
    let path = dir.join("workloads.txt");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read the guest's workload list {} (a guest built before workloads existed? \
             rebuild it with guest/build.sh)",
            path.display()
        )
    })?;
    parse_manifest(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

pub fn main(command: WorkloadCommand) -> Result<ExitCode> {
    match command {
        WorkloadCommand::List(args) => {
            let dir = guest_dir(&args)?;
            for e in read_manifest(&dir)? {
                let needs = if e.needs.is_empty() { "-".to_string() } else { e.needs.join(",") };
                println!("{:<18} needs={:<8} {}", e.name, needs, e.description);
            }
            Ok(ExitCode::SUCCESS)
        }
        WorkloadCommand::Run(args) => run(&args),
    }
}

// ---------------------------------------------------------------------------------------------
// Scripts: inputs at guest milliseconds after the workload's ready line.

/// A workload's scripted input: `ready` is the console text after which the clock starts.
struct Script {
    ready: &'static str,
    steps: Vec<(u64, InputEvent)>,
}

fn key(code: u16, down: bool) -> InputEvent {
    InputEvent::Key { code, down }
}

/// Linux key codes for US-layout characters: (code, needs shift).
fn key_for(c: char) -> Option<(u16, bool)> {
    const ROW1: &str = "1234567890-=";
    const ROW2: &str = "qwertyuiop[]";
    const ROW3: &str = "asdfghjkl;'";
    const ROW4: &str = "zxcvbnm,./";
    const SHIFT1: &str = "!@#$%^&*()_+";
    let find = |row: &str, base: u16| {
        row.chars()
            .position(|r| r == c.to_ascii_lowercase())
            .and_then(|i| u16::try_from(i).ok())
            .map(|i| base + i)
    };
    if let Some(i) = SHIFT1.chars().position(|r| r == c) {
        return Some((2 + u16::try_from(i).ok()?, true));
    }
    match c {
        ' ' => return Some((57, false)),
        '\n' => return Some((28, false)),
        '\x1b' => return Some((1, false)),
        ':' => return Some((39, true)),
        '"' => return Some((40, true)),
        '?' => return Some((53, true)),
        _ => {}
    }
    let shift = c.is_ascii_uppercase();
    find(ROW1, 2)
        .or_else(|| find(ROW2, 16))
        .or_else(|| find(ROW3, 30))
        .or_else(|| find(ROW4, 44))
        .map(|code| (code, shift))
}

/// Types `text` starting at `start` ms, one key every `every` ms; returns the time after.
fn type_text(steps: &mut Vec<(u64, InputEvent)>, text: &str, start: u64, every: u64) -> u64 {
    const SHIFT: u16 = 42;
    let mut t = start;
    for c in text.chars() {
        let Some((code, shift)) = key_for(c) else { continue };
        if shift {
            steps.push((t, key(SHIFT, true)));
        }
        steps.push((t, key(code, true)));
        steps.push((t + every / 2, key(code, false)));
        if shift {
            steps.push((t + every / 2, key(SHIFT, false)));
        }
        t += every;
    }
    t
}

/// Holds `code` from `start` for `ms`.
fn hold(steps: &mut Vec<(u64, InputEvent)>, code: u16, start: u64, ms: u64) {
    steps.push((start, key(code, true)));
    steps.push((start + ms, key(code, false)));
}

/// The text the `edit` workload types into vi.
pub const EDIT_TEXT: &str = "Hello from doppel.\nThe quick brown fox jumps over the lazy dog, 42 times!";

fn script_for(name: &str, variant: &str) -> Result<Script> {
    const UP: u16 = 103;
    const DOWN: u16 = 108;
    const LEFT: u16 = 105;
    const RIGHT: u16 = 106;
    const SPACE: u16 = 57;
    let mut steps = Vec::new();
    let ready = match (name, variant) {
        ("edit", "default") => {
            // vi: insert, the text, Esc, :wq, Enter.
            let t = type_text(&mut steps, "i", 1000, 80);
            let t = type_text(&mut steps, EDIT_TEXT, t, 80);
            type_text(&mut steps, "\x1b:wq\n", t + 200, 80);
            "edit: ready"
        }
        ("game", "default") => {
            hold(&mut steps, RIGHT, 500, 1200);
            hold(&mut steps, UP, 1000, 700);
            for i in 0..8 {
                hold(&mut steps, SPACE, 1500 + i * 300, 100);
            }
            hold(&mut steps, DOWN, 3000, 1500);
            hold(&mut steps, LEFT, 4000, 400);
            "game: ready"
        }
        ("game", "alt") => {
            hold(&mut steps, DOWN, 300, 1800);
            hold(&mut steps, LEFT, 2500, 300);
            for i in 0..4 {
                hold(&mut steps, SPACE, 3000 + i * 500, 100);
            }
            "game: ready"
        }
        ("desktop", "default") => "desktop: ready",
        ("desktop", "info") => {
            // The launcher's "System information" page.
            type_text(&mut steps, "7", 3000, 100);
            "desktop: ready"
        }
        (_, "default") => "doppel-workload: ",
        (_, other) => bail!("workload `{name}` has no input script `{other}`"),
    };
    steps.sort_by_key(|(t, _)| *t);
    Ok(Script { ready, steps })
}

// ---------------------------------------------------------------------------------------------
// The run.

/// Instructions per slice: the console is read and inputs are fed between slices.
/// 250 000 instructions are 2.5 ms of guest time at 100 MIPS.
pub const SLICE: u64 = 250_000;

/// A deterministic environment: inputs the runner queues, idle time skipped to the timer
/// deadline or to the next scripted input (`wake_at`), whichever comes first. An idle warp that
/// reaches `wake_at` ends [`Machine::run`] so the runner feeds that input on time: a key
/// released late would autorepeat.
#[derive(Default)]
struct Scripted {
    inner: NullEnvironment,
    queue: VecDeque<InputEvent>,
    echo: bool,
    wake_at: Option<Ticks>,
    woke: bool,
}

impl Environment for Scripted {
    fn poll(&mut self, _icount: InstructionCount) -> Result<Option<InputEvent>, EnvError> {
        Ok(self.queue.pop_front())
    }
    fn idle(&mut self, state: IdleState) -> Result<Ticks, EnvError> {
        match self.wake_at {
            Some(w) if state.deadline.is_none_or(|d| w < d) => {
                self.woke = true;
                Ok(w.saturating_sub(state.now))
            }
            _ => self.inner.idle(state),
        }
    }
    fn yield_after_idle(&mut self) -> bool {
        std::mem::take(&mut self.woke)
    }
    fn entropy(&mut self, icount: InstructionCount, buf: &mut [u8]) {
        self.inner.entropy(icount, buf);
    }
    fn output(&mut self, icount: InstructionCount, output: Output<'_>) {
        if let (true, Output::Console(bytes)) = (self.echo, &output) {
            use std::io::Write as _;
            let _ = std::io::stderr().write_all(bytes);
        }
        self.inner.output(icount, output);
    }
}

fn seconds_of(ticks: Ticks) -> f64 {
    ticks as f64 / TIMEBASE_HZ as f64
}

fn run(args: &RunArgs) -> Result<ExitCode> {
    let dir = guest_dir(&args.guest)?;
    let manifest = read_manifest(&dir)?;
    let Some(entry) = manifest.iter().find(|e| e.name == args.name) else {
        let have: Vec<&str> = manifest.iter().map(|e| e.name.as_str()).collect();
        if PLANNED.contains(&args.name.as_str()) {
            bail!(
                "the guest image {} has no workload `{}` (it needs a newer guest build; this one has: {})",
                dir.display(),
                args.name,
                have.join(" ")
            );
        }
        bail!("no workload named `{}` (the guest image {} has: {})", args.name, dir.display(), have.join(" "));
    };
    if entry.needs.iter().any(|n| n == "net") {
        bail!("workload `{}` needs guest networking, which this doppel build does not have", entry.name);
    }
    let script = script_for(&entry.name, &args.script)?;

    let kernel = read_image("kernel", &dir.join("Image"), 1 << 30)?;
    let initrd = read_image("initramfs", &dir.join("initramfs.cpio"), 1 << 30)?;
    let disk = if entry.needs.iter().any(|n| n == "disk") {
        let path = dir.join("workloads.img");
        Some(Box::new(
            doppel_host::disk::FileDisk::open(&path)
                .with_context(|| format!("workload `{}` needs the workload disk", entry.name))?,
        ) as _)
    } else {
        None
    };
    let mut guest_args: Vec<String> = Vec::new();
    if let (true, Some(s)) = (entry.seconds_arg, args.seconds) {
        guest_args.push(format!("{s}"));
    }
    if let Some(extra) = &args.args {
        guest_args.extend(extra.split(',').map(str::to_string));
    }
    let mut cmdline = format!("console=ttyS0 panic=-1 consoleblank=0 doppel.run={}", entry.name);
    if !guest_args.is_empty() {
        if guest_args.iter().any(|a| a.contains(char::is_whitespace)) {
            bail!("--args must not contain spaces");
        }
        write!(cmdline, " doppel.args={}", guest_args.join(","))?;
    }
    let config = MachineConfig {
        kernel,
        initrd: Some(initrd),
        cmdline,
        framebuffer: Some((640, 480)),
        instructions_per_tick: args.instructions_per_tick,
        devices: DevicesConfig { disk, ..DevicesConfig::default() },
        ..MachineConfig::default()
    };
    let mut machine = Machine::new(config).context("cannot build the machine")?;
    if let Some(dir) = &args.capture {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }

    let mut env = Scripted { echo: args.console, ..Scripted::default() };
    let limit_ticks = match (entry.seconds_arg, args.seconds) {
        (false, Some(s)) if s > 0.0 => Some((s * TIMEBASE_HZ as f64) as u64),
        _ => None,
    };
    let run_marker = format!("doppel-run: {} exit=", entry.name);
    let started = Instant::now();
    let mut scanned = 0usize;
    let mut ready_at: Option<Ticks> = None;
    let mut next_step = 0usize;
    let mut captures: Vec<(String, String)> = Vec::new();
    let mut fb_pages: u64 = 0;
    let mut exit_code: Option<u32> = None;
    let mut ended = "power-off";
    let (fb_lo, fb_hi) = fb_page_range(&machine);
    machine.take_dirty();
    let outcome = loop {
        let until = machine.icount().saturating_add(SLICE);
        let exit = machine.run(&mut env, until);
        fb_pages += count_dirty(&machine.take_dirty(), fb_lo, fb_hi);
        // New complete console lines.
        let console = &env.inner.console;
        while let Some(nl) = console[scanned..].iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&console[scanned..scanned + nl]).trim_end().to_string();
            scanned += nl + 1;
            if ready_at.is_none() && line.contains(script.ready) {
                ready_at = Some(machine.now());
            }
            if let Some(label) = line.strip_prefix("doppel-capture: ") {
                let label: String = label
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
                    .collect();
                if let Some(fb) = machine.framebuffer() {
                    captures.push((label.clone(), blake3::hash(fb.pixels).to_hex().to_string()));
                    if let Some(dir) = &args.capture {
                        let path = dir.join(format!("{label}.ppm"));
                        std::fs::write(&path, ppm(&fb)).with_context(|| format!("cannot write {}", path.display()))?;
                    }
                }
            }
            if let Some(code) = line.strip_prefix(&run_marker) {
                exit_code = code.trim().parse().ok();
            }
        }
        env.wake_at = None;
        if let Some(t0) = ready_at {
            let now = machine.now();
            while let Some((at, event)) = script.steps.get(next_step) {
                let due = t0 + at * (TIMEBASE_HZ / 1000);
                if due > now {
                    env.wake_at = Some(due);
                    break;
                }
                env.queue.push_back(event.clone());
                next_step += 1;
            }
        }
        match exit {
            Exit::Limit => {}
            other => break other,
        }
        if limit_ticks.is_some_and(|l| machine.now() >= l) {
            ended = "seconds";
            break Exit::Limit;
        }
        if machine.icount() >= args.max_instructions {
            ended = "max-instructions";
            break Exit::Limit;
        }
    };
    let wall = started.elapsed().as_secs_f64();
    let guest_s = seconds_of(machine.now());
    let n = machine.icount();

    if let Some(path) = &args.screenshot {
        let fb = machine.framebuffer().context("the machine has no framebuffer")?;
        let bytes = if path.extension().is_some_and(|e| e == "ppm") { ppm(&fb) } else { png(&fb)? };
        std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }

    let console = String::from_utf8_lossy(&env.inner.console).into_owned();
    // What the workload printed (after init's start line; kernel messages and captures left
    // out), then the report.
    let start_marker = format!("doppel-workload: {} start", entry.name);
    for line in console.lines().skip_while(|l| !l.contains(&start_marker)).skip(1) {
        if !line.starts_with('[') && !line.starts_with("doppel-capture") && !line.is_empty() {
            println!("guest: {line}");
        }
    }
    for (label, hash) in &captures {
        println!("capture {label} fb_blake3={hash}");
    }
    println!("workload={} script={}", entry.name, args.script);
    println!("ended={ended}");
    match exit_code {
        Some(c) => println!("exit={c}"),
        None => println!("exit=none"),
    }
    println!("inputs={}/{}", next_step, script.steps.len());
    println!("instructions={n}");
    println!("guest_seconds={guest_s:.3}");
    println!("guest_mips={:.1}", n as f64 / guest_s.max(1e-9) / 1e6);
    println!("wall_seconds={wall:.3}");
    println!("host_mips={:.1}", n as f64 / wall.max(1e-9) / 1e6);
    println!("fb_pages_dirtied={fb_pages}");
    println!("fb_pages_per_guest_second={:.1}", fb_pages as f64 / guest_s.max(1e-9));
    if let Some(fb) = machine.framebuffer() {
        println!("fb_blake3={}", blake3::hash(fb.pixels).to_hex());
    }
    println!("state_hash={}", hex(&machine.state_hash()));

    match outcome {
        Exit::PowerOff(_) | Exit::Limit => {}
        Exit::Reset => bail!("the guest rebooted during workload `{}`", entry.name),
        Exit::Environment(e) => bail!("the machine stopped: {e} (at {})\nconsole:\n{console}", machine.location()),
    }
    if ended == "max-instructions" {
        eprintln!("doppel: workload `{}` did not end within {} instructions", entry.name, args.max_instructions);
        return Ok(ExitCode::from(3));
    }
    if next_step < script.steps.len() {
        eprintln!(
            "doppel: the run ended before its script did ({} of {} inputs fed); ready line `{}` {}",
            next_step,
            script.steps.len(),
            script.ready,
            if ready_at.is_some() { "seen" } else { "never seen" }
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(match (ended, exit_code) {
        ("seconds", _) | (_, Some(0)) => ExitCode::SUCCESS,
        (_, Some(code)) => {
            eprintln!("doppel: workload `{}` exited with status {code}", entry.name);
            ExitCode::from(u8::try_from(code).unwrap_or(1).max(1))
        }
        (_, None) => {
            eprintln!("doppel: the guest powered off without reporting workload `{}`'s status\nconsole:\n{console}", entry.name);
            ExitCode::FAILURE
        }
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The framebuffer's page indices in RAM, `lo..hi`.
fn fb_page_range(m: &Machine) -> (usize, usize) {
    let Some(fb) = m.framebuffer() else { return (0, 0) };
    let ram = m.ram().as_slice();
    let start = (fb.pixels.as_ptr() as usize).wrapping_sub(ram.as_ptr() as usize);
    let page = doppel_machine::PAGE_SIZE;
    (start / page, (start + fb.pixels.len()).div_ceil(page))
}

fn count_dirty(bitmap: &[u64], lo: usize, hi: usize) -> u64 {
    (lo..hi).filter(|&p| bitmap.get(p / 64).is_some_and(|w| w >> (p % 64) & 1 == 1)).count() as u64
}

fn rgb_rows<'a>(fb: &'a doppel_machine::Framebuffer<'a>) -> impl Iterator<Item = Vec<u8>> + 'a {
    (0..fb.height as usize).map(move |y| {
        let row = &fb.pixels[y * fb.stride as usize..][..fb.width as usize * 4];
        row.chunks_exact(4).flat_map(|p| [p[2], p[1], p[0]]).collect()
    })
}

/// The framebuffer as a binary PPM (P6).
fn ppm(fb: &doppel_machine::Framebuffer<'_>) -> Vec<u8> {
    let mut out = format!("P6\n{} {}\n255\n", fb.width, fb.height).into_bytes();
    for row in rgb_rows(fb) {
        out.extend_from_slice(&row);
    }
    out
}

/// The framebuffer as an 8-bit RGB PNG (zlib from flate2, CRCs from crc32fast).
fn png(fb: &doppel_machine::Framebuffer<'_>) -> Result<Vec<u8>> {
    use std::io::Write as _;
    let mut raw = Vec::with_capacity((fb.width as usize * 3 + 1) * fb.height as usize);
    for row in rgb_rows(fb) {
        raw.push(0); // filter: none
        raw.extend_from_slice(&row);
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&raw)?;
    let idat = z.finish()?;
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let chunk = |out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]| {
        out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.finalize().to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&fb.width.to_be_bytes());
    ihdr.extend_from_slice(&fb.height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit, truecolour, deflate, no filter, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &idat);
    chunk(&mut out, b"IEND", &[]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_lines_parse_and_errors_name_the_line() {
        let m = parse_manifest("idle\t-\targ\tsleeps\ncp\tdisk\t-\tcopies 100 MB\n\n").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].needs, ["disk"]);
        assert!(m[0].seconds_arg && !m[1].seconds_arg);
        assert!(parse_manifest("idle -\n").unwrap_err().contains("line 1"));
        assert!(parse_manifest("a\t-\t-\tx\nb c\t-\t-\tx\n").unwrap_err().contains("line 2"));
        assert!(parse_manifest("a\tgpu\t-\tx\n").unwrap_err().contains("gpu"));
        assert!(parse_manifest("a\t-\tsometimes\tx\n").unwrap_err().contains("sometimes"));
        assert!(parse_manifest("a\t-\t-\tx\na\t-\t-\ty\n").unwrap_err().contains("twice"));
    }

    #[test]
    fn typed_text_becomes_balanced_key_presses_with_shift() {
        let mut steps = Vec::new();
        let end = type_text(&mut steps, "Hi:", 0, 100);
        assert_eq!(end, 300);
        let codes: Vec<(u16, bool)> = steps
            .iter()
            .map(|(_, e)| match e {
                InputEvent::Key { code, down } => (*code, *down),
                other => panic!("{other:?}"),
            })
            .collect();
        // H (shifted), i, : (shifted ;)
        assert_eq!(
            codes,
            [(42, true), (35, true), (35, false), (42, false), (23, true), (23, false), (42, true), (39, true), (39, false), (42, false)]
        );
        assert!(EDIT_TEXT.chars().all(|c| key_for(c).is_some()), "every character of the edit text is typeable");
    }

    #[test]
    fn scripts_are_sorted_and_unknown_variants_are_errors() {
        let s = script_for("game", "default").unwrap();
        assert!(s.steps.windows(2).all(|w| w[0].0 <= w[1].0));
        assert_ne!(script_for("game", "alt").unwrap().steps, s.steps);
        assert!(script_for("idle", "alt").is_err());
    }

    #[test]
    fn png_has_signature_and_chunks() {
        let pixels = vec![0u8; 4 * 2 * 2];
        let fb = doppel_machine::Framebuffer { width: 2, height: 2, stride: 8, pixels: &pixels };
        let p = png(&fb).unwrap();
        assert!(p.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(&p[12..16], b"IHDR");
        assert!(p.ends_with(&[0xae, 0x42, 0x60, 0x82]), "IEND CRC");
    }
}

//! `doppel host` and `doppel replica`: live streaming of a recorded VM over TCP.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use doppel_host::live::LiveEnvironment;
use doppel_host::terminal::{self, RawMode, StdoutSink};
use doppel_machine::devices::DevicesConfig;
use doppel_machine::machine::{Exit, Machine};
use doppel_stream::host::{self, BlockSource, HostOptions, HostStats, Streamer, Tap};
use doppel_stream::proto::{MachineInfo, PAGE};
use doppel_stream::replica::{self, Control, Ended, ReplicaOptions, Status};

/// Run a VM (as `doppel vm run`), record it, and serve it live to replicas over TCP.
///
/// Every client gets a snapshot taken for it while the VM keeps running, RAM pages and disk
/// blocks on demand as of that snapshot, and the live replay log from there.
///
/// Examples:
///   doppel host --kernel Image --initrd initramfs.cpio --listen 0.0.0.0:7878
///   doppel host --kernel Image --initrd initramfs.cpio --append "console=ttyS0 doppel.run=fbpattern doppel.hold=600" --stats
///
/// Exit status as for `doppel vm run`.
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct HostArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7878", value_name = "ADDR:PORT")]
    listen: String,
    /// Linux kernel `Image` (or, with --bare-metal, a raw binary or ELF).
    #[arg(long, value_name = "PATH")]
    kernel: PathBuf,
    #[command(flatten)]
    machine: crate::vm::MachineArgs,
    /// Stop after this many guest instructions.
    #[arg(long, value_name = "N")]
    max_instructions: Option<u64>,
    /// Instructions between checkpoints and framebuffer hashes in the stream.
    #[arg(long, default_value_t = 50_000_000, value_name = "N")]
    checkpoint_every: u64,
    /// Print per-client meters every 5 s and at exit (log/page/block bytes per second, lag).
    #[arg(long)]
    stats: bool,
}

/// Follow a `doppel host` live: restore its VM from a snapshot with demand-paged RAM and replay
/// its log as it arrives, checking the host's framebuffer hash at every checkpoint.
///
/// A status line shows the replica's instruction count, its lag behind the host (instructions and
/// host milliseconds), and the traffic of log, pages and blocks.
///
/// Examples:
///   doppel replica 127.0.0.1:7878
///   doppel replica 10.0.0.5:7878 --prefetch --stats --seconds 60
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ReplicaArgs {
    /// The host's address.
    #[arg(value_name = "HOST:PORT")]
    addr: String,
    /// Page cache directory (default: $DOPPEL_CACHE/stream-cache, else ~/.cache/doppel/stream-cache).
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Use no page cache.
    #[arg(long, conflicts_with = "cache")]
    no_cache: bool,
    /// Fetch all non-zero pages in the background after the restore.
    #[arg(long)]
    prefetch: bool,
    /// Stop after this many seconds.
    #[arg(long, value_name = "S")]
    seconds: Option<u64>,
    /// Print the final meters (and the time and bytes to the host's current screen).
    #[arg(long)]
    stats: bool,
}

/// The host's disk base, read-only, served block by block.
struct FileBlocks(std::fs::File, u64);

impl BlockSource for FileBlocks {
    fn read_block(&self, index: u64, buf: &mut [u8; PAGE]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        buf.fill(0);
        let at = index * PAGE as u64;
        let n = usize::try_from(self.1.saturating_sub(at).min(PAGE as u64)).unwrap_or(0);
        self.0.read_exact_at(&mut buf[..n], at)
    }
}

pub fn host(args: HostArgs) -> Result<ExitCode> {
    let m = &args.machine;
    let (disk, blocks) = match &m.disk {
        Some(path) => {
            let base = doppel_host::disk::FileDisk::open(path)?;
            let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            let len = file.metadata()?.len();
            (Some(Box::new(base) as _), Some(Arc::new(FileBlocks(file, len)) as Arc<dyn BlockSource>))
        }
        None => (None, None),
    };
    let config = m.config(&args.kernel, DevicesConfig { disk, ..DevicesConfig::default() })?;
    let disk_len = config.devices.disk.as_ref().map_or(0, |d| d.len());
    let info = MachineInfo {
        fingerprint: doppel_replay::fingerprint(&config),
        ram_size: config.ram_size as u64,
        framebuffer: if m.bare_metal { None } else { config.framebuffer },
        instructions_per_tick: config.instructions_per_tick,
        net: config.devices.net,
        input: config.devices.input,
        rng: config.devices.rng,
        bare_metal: m.bare_metal,
        mac: config.devices.mac,
        disk_len,
    };
    let mut machine = Machine::new(config).context("cannot build the machine")?;
    let listener = host::listen(&args.listen)?;
    let options = HostOptions { checkpoint_every: args.checkpoint_every, ..HostOptions::default() };
    let mut streamer = Streamer::start(&mut machine, info, options, listener, blocks)?;
    eprintln!("doppel host: serving on {} (Ctrl-A x quits)", args.listen);
    let stats = streamer.stats();
    let done = Arc::new(AtomicBool::new(false));
    if args.stats {
        let (stats, done) = (stats.clone(), done.clone());
        std::thread::spawn(move || {
            let mut last = Meters::default();
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(5));
                last = print_host_stats(&stats, &last, 5.0);
            }
        });
    }

    let (env, input) = LiveEnvironment::new(Box::new(StdoutSink::default()));
    // A new client's snapshot is taken between slices: wake a sleeping guest's idle wait for it.
    let waker = input.clone();
    streamer.set_waker(move || waker.wake());
    let raw = RawMode::enable();
    terminal::spawn_stdin_reader(input).context("cannot read the terminal")?;
    let mut tap = Tap::new(env);
    let started = Instant::now();
    let limit = args.max_instructions.unwrap_or(u64::MAX);
    let stop = AtomicBool::new(false);
    let exit = host::run_vm(&mut machine, &mut tap, &mut streamer, limit, &stop, started);
    drop(raw);
    done.store(true, Ordering::Relaxed);
    if args.stats {
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "\ndoppel host: {} instructions in {secs:.1} s; {} snapshots, stall max {:.2} ms total {:.1} ms, {} pages copied; {} clients dropped",
            machine.icount(),
            stats.snapshots.load(Ordering::Relaxed),
            stats.max_stall_us.load(Ordering::Relaxed) as f64 / 1e3,
            stats.total_stall_us.load(Ordering::Relaxed) as f64 / 1e3,
            stats.pages_copied.load(Ordering::Relaxed),
            stats.dropped.load(Ordering::Relaxed),
        );
        print_host_stats(&stats, &Meters::default(), secs);
    }
    Ok(match exit {
        Exit::Limit => ExitCode::from(3),
        Exit::PowerOff(0) | Exit::Reset => ExitCode::SUCCESS,
        Exit::PowerOff(code) => ExitCode::from(u8::try_from(code).unwrap_or(1).max(1)),
        Exit::Environment(e) if e.to_string().contains("Ctrl-A x") => ExitCode::SUCCESS,
        Exit::Environment(e) => bail!("the machine stopped: {e} (at {})", machine.location()),
    })
}

/// Per-client byte counts at the last report, to print rates.
#[derive(Default)]
struct Meters(Vec<(u64, u64, u64, u64)>);

fn print_host_stats(stats: &HostStats, last: &Meters, secs: f64) -> Meters {
    let host_icount = stats.host_icount.load(Ordering::Relaxed);
    let mut now = Meters::default();
    let Ok(sessions) = stats.sessions.lock() else { return now };
    for m in sessions.iter() {
        let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let cur = (m.id, ld(&m.log_bytes), ld(&m.page_bytes), ld(&m.block_bytes));
        now.0.push(cur);
        if m.closed.load(Ordering::Relaxed) && last.0.iter().all(|l| l.0 != m.id) {
            continue;
        }
        let prev = last.0.iter().find(|l| l.0 == m.id).copied().unwrap_or((m.id, 0, 0, 0));
        let replica = ld(&m.replica_icount);
        eprintln!(
            "doppel host: client {}{}: log {:.1} KB/s, pages {:.1} KB/s ({} served), blocks {:.1} KB/s; replica at {} ({} instructions behind)",
            m.id,
            if m.closed.load(Ordering::Relaxed) { " (closed)" } else { "" },
            (cur.1 - prev.1) as f64 / secs / 1e3,
            (cur.2 - prev.2) as f64 / secs / 1e3,
            ld(&m.pages_served),
            (cur.3 - prev.3) as f64 / secs / 1e3,
            replica,
            host_icount.saturating_sub(replica),
        );
    }
    now
}

pub fn replica(args: ReplicaArgs) -> Result<ExitCode> {
    let cache = if args.no_cache {
        None
    } else {
        Some(match args.cache {
            Some(dir) => dir,
            None => std::env::var_os("DOPPEL_CACHE")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/doppel")))
                .context("set --cache, DOPPEL_CACHE or HOME")?
                .join("stream-cache"),
        })
    };
    let options = ReplicaOptions { cache, prefetch: args.prefetch };
    let deadline = args.seconds.map(|s| Instant::now() + Duration::from_secs(s));
    let tty = std::io::stderr().is_terminal();
    let (ended, status) = replica::run(&args.addr, &options, &mut |s: &Status| {
        if tty {
            eprint!("\r\x1b[K{}", s.line());
        } else {
            eprintln!("{}", s.line());
        }
        match deadline {
            Some(d) if Instant::now() >= d => Control::Stop,
            _ => Control::Continue,
        }
    })
    .with_context(|| format!("replica of {}", args.addr))?;
    if tty {
        eprintln!();
    }
    if args.stats {
        print_replica_stats(&status);
    }
    Ok(match ended {
        Ended::Stopped | Ended::End | Ended::PowerOff(0) => ExitCode::SUCCESS,
        Ended::PowerOff(code) => ExitCode::from(u8::try_from(code).unwrap_or(1).max(1)),
    })
}

fn print_replica_stats(s: &Status) {
    eprintln!("doppel replica: snapshot at instruction {}, now at {} ({} behind, {} ms)", s.snapshot_icount, s.icount, s.lag_instructions, s.lag_ms);
    if let Some((t, bytes, pages)) = s.first_screen {
        eprintln!(
            "doppel replica: host's current screen after {:.3} s, {:.1} KB received, {pages} pages fetched",
            t.as_secs_f64(),
            bytes as f64 / 1e3
        );
    }
    eprintln!(
        "doppel replica: {} pages fetched, {} from cache, {} faults, {:.1} MB received in {:.1} s; {} checkpoints and {} framebuffer hashes matched",
        s.pages_fetched,
        s.pages_from_cache,
        s.faults,
        s.total_bytes as f64 / 1e6,
        s.elapsed.as_secs_f64(),
        s.checkpoints,
        s.fb_checks
    );
}

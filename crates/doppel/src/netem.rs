//! `doppel netem`: the userspace WAN link emulator's command line (relay, tun, bench).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use doppel_netem::bench::{
    bulk_transfer, echo_server, median, percentile, round_trips, sink_server,
};
use doppel_netem::control::{parse_switch, ParamChanges};
use doppel_netem::tun::Tun;
use doppel_netem::units::{
    parse_duration, parse_loss, parse_rate, parse_size, Loss, Rate, UnitError,
};
use doppel_netem::{ControlSocket, Dir, LinkHandle, LinkParams, TcpRelay, TunBridge, UdpRelay};
use tracing::info;

const EXAMPLES: &str = "\
Examples:
  # A 100 ms round trip, 10 Mbit/s each way, in front of a VNC server:
  doppel netem relay --listen 127.0.0.1:5901 --target 127.0.0.1:5900 --delay 50ms --rate 10mbit

  # Asymmetric: 50 Mbit/s down, 5 Mbit/s up, 1% UDP loss up, jitter, a fixed seed:
  doppel netem relay --listen 0.0.0.0:7000 --target 10.0.0.2:7000 --proto both \\
      --delay 40ms --jitter 5ms --down-rate 50mbit --up-rate 5mbit --up-loss 1% --seed 42

  # Change the link while it runs (for experiments that step through conditions):
  doppel netem relay ... --control /tmp/netem.sock &
  echo 'set both delay=5ms rate=1gbit' | socat - UNIX-CONNECT:/tmp/netem.sock
  echo 'stats' | socat - UNIX-CONNECT:/tmp/netem.sock
  # ... or from a file of `set` lines, read at start and again on SIGHUP:
  doppel netem relay ... --config link.conf &   kill -HUP $!

  # IP level between two network namespaces (real IP packets, any protocol):
  ip netns add a; ip netns add b
  doppel netem tun --dev-a nmA --dev-b nmB --netns-a a --netns-b b --delay 25ms &
  ip -n a addr add 10.99.0.1/24 dev nmA; ip -n a link set nmA up
  ip -n b addr add 10.99.0.2/24 dev nmB; ip -n b link set nmB up
  ip netns exec a ping 10.99.0.2

  # Cost of the relay against socat at 1 Gbit/s:
  doppel netem bench

Units: durations 50ms 1.5s 200us; rates 10mbit 1gbit 500kbit (bits/s, `unlimited`);
sizes 64k 256KiB 1MiB (binary); loss 1% 0.25%. --delay is one way: the round trip is
up delay + down delay. Up is client -> target (A -> B for tun), down the reverse.";

/// Emulate a WAN link in user space: delay, jitter, rate limit, bounded queue, loss.
#[derive(Args, Debug)]
#[command(after_long_help = EXAMPLES)]
pub struct NetemArgs {
    #[command(subcommand)]
    command: NetemCommand,
}

#[derive(Subcommand, Debug)]
enum NetemCommand {
    /// Relay TCP and/or UDP from a listen address to a target through the emulated link.
    Relay(Box<RelayArgs>),
    /// Bridge two TUN devices through the emulated link (IP level; needs root).
    Tun(Box<TunArgs>),
    /// Measure the relay's added latency and CPU per MB against socat (unshaped).
    Bench(BenchArgs),
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    Tcp,
    Udp,
    Both,
}

#[derive(Args, Debug)]
struct RelayArgs {
    /// Address to accept clients on, e.g. 127.0.0.1:5901.
    #[arg(long)]
    listen: SocketAddr,
    /// Address to relay to, e.g. 127.0.0.1:5900.
    #[arg(long)]
    target: SocketAddr,
    /// What to relay.
    #[arg(long, value_enum, default_value = "tcp")]
    proto: Proto,
    /// A UDP session ends after this long without traffic.
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    udp_idle: Duration,
    #[command(flatten)]
    link: LinkArgs,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args, Debug)]
struct TunArgs {
    /// Name of TUN device A (created; packets read from it go up to B).
    #[arg(long, value_name = "NAME")]
    dev_a: String,
    /// Name of TUN device B (created; packets read from it go down to A).
    #[arg(long, value_name = "NAME")]
    dev_b: String,
    /// Move device A into this network namespace (`ip link set A netns NS`).
    #[arg(long, value_name = "NS")]
    netns_a: Option<String>,
    /// Move device B into this network namespace.
    #[arg(long, value_name = "NS")]
    netns_b: Option<String>,
    #[command(flatten)]
    link: LinkArgs,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Serve the control protocol on this Unix socket (`set`, `get`, `stats`, `help`).
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,
    /// Read `set ...` lines (the control protocol, `#` comments) from this file at start and
    /// again on SIGHUP; a bad file on SIGHUP is logged and the link keeps its parameters.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Log counters (at info level) this often; 0 turns it off.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    stats_every: Duration,
}

#[derive(Clone, Debug)]
struct RateArg(Option<Rate>);

fn rate_arg(s: &str) -> Result<RateArg, UnitError> {
    parse_rate(s).map(RateArg)
}

fn switch_arg(s: &str) -> Result<bool, String> {
    parse_switch(s).ok_or_else(|| format!("`{s}` is not on or off"))
}

/// Link parameters: the plain flags set both directions, `--up-*`/`--down-*` override one.
#[derive(Args, Debug)]
struct LinkArgs {
    /// One-way delay each direction, e.g. 50ms.
    #[arg(long, value_parser = parse_duration, allow_hyphen_values = true, value_name = "DURATION", help_heading = "Link")]
    delay: Option<Duration>,
    /// Delay varies uniformly within delay ± jitter (TCP stays in order).
    #[arg(long, value_parser = parse_duration, allow_hyphen_values = true, value_name = "DURATION", help_heading = "Link")]
    jitter: Option<Duration>,
    /// Rate limit each direction, e.g. 10mbit (default unlimited).
    #[arg(long, value_parser = rate_arg, allow_hyphen_values = true, value_name = "RATE", help_heading = "Link")]
    rate: Option<RateArg>,
    /// Bytes that may wait for the rate limiter (default 256KiB); UDP/IP beyond it is dropped.
    #[arg(long, value_parser = parse_size, allow_hyphen_values = true, value_name = "SIZE", help_heading = "Link")]
    queue: Option<u64>,
    /// Token-bucket depth: bytes that may leave back to back after idling (default 0).
    #[arg(long, value_parser = parse_size, allow_hyphen_values = true, value_name = "SIZE", help_heading = "Link")]
    burst: Option<u64>,
    /// Random loss of UDP datagrams / IP packets, e.g. 1% (TCP relay never loses bytes).
    #[arg(long, value_parser = parse_loss, allow_hyphen_values = true, value_name = "PERCENT", help_heading = "Link")]
    loss: Option<Loss>,
    /// Let jitter reorder UDP datagrams / IP packets (on/off, default off).
    #[arg(long, value_parser = switch_arg, value_name = "on|off", help_heading = "Link")]
    reorder: Option<bool>,
    /// Seed for loss and jitter: the same seed repeats the same run.
    #[arg(long, default_value_t = 1, help_heading = "Link")]
    seed: u64,

    #[arg(long, value_parser = parse_duration, allow_hyphen_values = true, value_name = "DURATION", help_heading = "Up only (client -> target)")]
    up_delay: Option<Duration>,
    #[arg(long, value_parser = parse_duration, allow_hyphen_values = true, value_name = "DURATION", help_heading = "Up only (client -> target)")]
    up_jitter: Option<Duration>,
    #[arg(long, value_parser = rate_arg, allow_hyphen_values = true, value_name = "RATE", help_heading = "Up only (client -> target)")]
    up_rate: Option<RateArg>,
    #[arg(long, value_parser = parse_size, allow_hyphen_values = true, value_name = "SIZE", help_heading = "Up only (client -> target)")]
    up_queue: Option<u64>,
    #[arg(long, value_parser = parse_size, allow_hyphen_values = true, value_name = "SIZE", help_heading = "Up only (client -> target)")]
    up_burst: Option<u64>,
    #[arg(long, value_parser = parse_loss, allow_hyphen_values = true, value_name = "PERCENT", help_heading = "Up only (client -> target)")]
    up_loss: Option<Loss>,
    #[arg(long, value_parser = switch_arg, value_name = "on|off", help_heading = "Up only (client -> target)")]
    up_reorder: Option<bool>,

    #[arg(long, value_parser = parse_duration, allow_hyphen_values = true, value_name = "DURATION", help_heading = "Down only (target -> client)")]
    down_delay: Option<Duration>,
    #[arg(long, value_parser = parse_duration, allow_hyphen_values = true, value_name = "DURATION", help_heading = "Down only (target -> client)")]
    down_jitter: Option<Duration>,
    #[arg(long, value_parser = rate_arg, allow_hyphen_values = true, value_name = "RATE", help_heading = "Down only (target -> client)")]
    down_rate: Option<RateArg>,
    #[arg(long, value_parser = parse_size, allow_hyphen_values = true, value_name = "SIZE", help_heading = "Down only (target -> client)")]
    down_queue: Option<u64>,
    #[arg(long, value_parser = parse_size, allow_hyphen_values = true, value_name = "SIZE", help_heading = "Down only (target -> client)")]
    down_burst: Option<u64>,
    #[arg(long, value_parser = parse_loss, allow_hyphen_values = true, value_name = "PERCENT", help_heading = "Down only (target -> client)")]
    down_loss: Option<Loss>,
    #[arg(long, value_parser = switch_arg, value_name = "on|off", help_heading = "Down only (target -> client)")]
    down_reorder: Option<bool>,
}

impl LinkArgs {
    fn handle(&self) -> Result<LinkHandle> {
        let common = ParamChanges {
            delay: self.delay,
            jitter: self.jitter,
            rate: self.rate.clone().map(|r| r.0),
            queue: self.queue,
            burst: self.burst,
            loss: self.loss,
            reorder: self.reorder,
        };
        let up = ParamChanges {
            delay: self.up_delay,
            jitter: self.up_jitter,
            rate: self.up_rate.clone().map(|r| r.0),
            queue: self.up_queue,
            burst: self.up_burst,
            loss: self.up_loss,
            reorder: self.up_reorder,
        };
        let down = ParamChanges {
            delay: self.down_delay,
            jitter: self.down_jitter,
            rate: self.down_rate.clone().map(|r| r.0),
            queue: self.down_queue,
            burst: self.down_burst,
            loss: self.down_loss,
            reorder: self.down_reorder,
        };
        let base = common.apply(&LinkParams::default());
        LinkHandle::new(up.apply(&base), down.apply(&base), self.seed)
            .context("invalid link parameters")
    }
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// Bytes to push through each relay for the CPU measurement.
    #[arg(long, default_value = "512MiB", value_parser = parse_size, value_name = "SIZE")]
    bytes: u64,
    /// Pace the bulk sender to this rate (`unlimited` for as fast as possible).
    #[arg(long, default_value = "1gbit", value_parser = rate_arg, value_name = "RATE")]
    pace: RateArg,
    /// Round trips timed per path.
    #[arg(long, default_value_t = 2000)]
    round_trips: usize,
    /// Message size for the round trips, in bytes.
    #[arg(long, default_value_t = 64)]
    message: usize,
    /// The socat binary used as the anchor.
    #[arg(long, default_value = "socat")]
    socat: String,
}

/// Runs `doppel netem`.
pub fn run(args: NetemArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match args.command {
            NetemCommand::Relay(a) => relay(*a).await,
            NetemCommand::Tun(a) => tun(*a).await,
            NetemCommand::Bench(a) => bench(a).await,
        }
    })
}

/// Applies a config file of `set` lines: all or nothing.
fn apply_config(handle: &LinkHandle, path: &std::path::Path) -> Result<()> {
    use doppel_netem::control::{parse_command, Command as Ctl, Target};
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let (mut up, mut down) = (handle.params(Dir::Up), handle.params(Dir::Down));
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), i + 1);
        match parse_command(line).with_context(at)? {
            Ctl::Set { target, changes } => {
                if target != Target::Down {
                    up = changes.apply(&up);
                }
                if target != Target::Up {
                    down = changes.apply(&down);
                }
            }
            _ => bail!("{}: only `set` lines belong in a config file", at()),
        }
    }
    up.validate()
        .with_context(|| format!("{}: up parameters", path.display()))?;
    down.validate()
        .with_context(|| format!("{}: down parameters", path.display()))?;
    handle.set_params(Dir::Up, up)?;
    handle.set_params(Dir::Down, down)?;
    Ok(())
}

fn describe(handle: &LinkHandle) -> String {
    format!(
        "up: {}; down: {}; seed {}",
        handle.params(Dir::Up),
        handle.params(Dir::Down),
        handle.seed()
    )
}

async fn relay(a: RelayArgs) -> Result<()> {
    let handle = a.link.handle()?;
    if let Some(path) = &a.run.config {
        apply_config(&handle, path)?;
    }
    let tcp = match a.proto {
        Proto::Tcp | Proto::Both => {
            Some(TcpRelay::start(a.listen, a.target, handle.clone()).await?)
        }
        Proto::Udp => None,
    };
    let udp = match a.proto {
        Proto::Udp | Proto::Both => {
            Some(UdpRelay::start(a.listen, a.target, handle.clone(), a.udp_idle).await?)
        }
        Proto::Tcp => None,
    };
    let local = tcp
        .as_ref()
        .map(TcpRelay::local_addr)
        .or(udp.as_ref().map(UdpRelay::local_addr));
    println!(
        "netem: relaying {:?} {} -> {} ({})",
        a.proto,
        local.map_or_else(|| a.listen.to_string(), |l| l.to_string()),
        a.target,
        describe(&handle)
    );
    serve(handle, &a.run).await
}

async fn tun(a: TunArgs) -> Result<()> {
    let handle = a.link.handle()?;
    if let Some(path) = &a.run.config {
        apply_config(&handle, path)?;
    }
    let dev_a = Tun::create(&a.dev_a)?;
    let dev_b = Tun::create(&a.dev_b)?;
    let bridge = TunBridge::start(dev_a, dev_b, handle.clone())?;
    for (dev, ns) in [(&a.dev_a, &a.netns_a), (&a.dev_b, &a.netns_b)] {
        if let Some(ns) = ns {
            let out = Command::new("ip")
                .args(["link", "set", "dev", dev, "netns", ns])
                .output()
                .context("cannot run `ip` (is iproute2 installed?)")?;
            if !out.status.success() {
                bail!(
                    "cannot move {dev} into namespace {ns}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
    }
    let [na, nb] = bridge.names();
    println!("netem: bridging TUN {na} <-> {nb} ({})", describe(&handle));
    serve(handle, &a.run).await
}

/// Runs until Ctrl-C or SIGTERM: control socket, periodic stats, final stats line.
async fn serve(handle: LinkHandle, run: &RunArgs) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    // Signals first: a client that sees the control socket may send SIGHUP at once.
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    let _control = match &run.control {
        Some(path) => Some(ControlSocket::start(path, handle.clone()).await?),
        None => None,
    };
    let every = if run.stats_every.is_zero() {
        Duration::from_secs(365 * 86_400)
    } else {
        run.stats_every
    };
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            r = tokio::signal::ctrl_c() => { r.context("cannot watch Ctrl-C")?; break; }
            _ = term.recv() => break,
            _ = hup.recv() => match &run.config {
                Some(path) => match apply_config(&handle, path) {
                    Ok(()) => info!(path = %path.display(), link = %describe(&handle), "config reloaded"),
                    Err(e) => tracing::error!("config not reloaded: {e:#}"),
                },
                None => info!("SIGHUP ignored: no --config file"),
            },
            _ = tick.tick() => info!(stats = %handle.stats_line(), "netem"),
        }
    }
    eprintln!("netem: final {}", handle.stats_line());
    Ok(())
}

// ---- bench ----

/// A child process killed and reaped when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// User + system CPU seconds of a process and its reaped children (/proc/PID/stat, USER_HZ = 100).
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let after = stat
        .rsplit_once(')')
        .map(|x| x.1)
        .context("odd /proc stat")?;
    let f: Vec<&str> = after.split_whitespace().collect();
    // After the command: state is field 3; utime, stime, cutime, cstime are fields 14-17.
    let ticks: u64 = f
        .get(11..15)
        .context("short /proc stat")?
        .iter()
        .map(|x| x.parse::<u64>().unwrap_or(0))
        .sum();
    Ok(ticks as f64 / 100.0)
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

async fn wait_listening(addr: SocketAddr) -> Result<()> {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("nothing started listening on {addr}")
}

/// Starts a relay process (doppel or socat) from a free port to `target`.
async fn spawn_relay(kind: &str, socat: &str, target: SocketAddr) -> Result<(Reaped, SocketAddr)> {
    let port = free_port()?;
    let listen: SocketAddr = ([127, 0, 0, 1], port).into();
    let child = if kind == "doppel" {
        Command::new(std::env::current_exe()?)
            .args([
                "netem",
                "relay",
                "--listen",
                &listen.to_string(),
                "--target",
                &target.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start the doppel relay")?
    } else {
        Command::new(socat)
            .args([
                format!("TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr"),
                format!("TCP:{target}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start `{socat}` (run scripts/setup.sh)"))?
    };
    let child = Reaped(child);
    wait_listening(listen).await?;
    Ok((child, listen))
}

struct Row {
    name: &'static str,
    median_us: f64,
    p99_us: f64,
    mbit_s: f64,
    cpu_s_per_mb: f64,
}

async fn bench(a: BenchArgs) -> Result<()> {
    let echo = echo_server("127.0.0.1:0".parse()?).await?;
    let sink = sink_server("127.0.0.1:0".parse()?).await?;
    let mb = a.bytes as f64 / 1e6;
    let pace = a.pace.0;
    println!(
        "netem bench: {} round trips of {} B; {:.0} MB bulk paced at {}; relays unshaped",
        a.round_trips,
        a.message,
        mb,
        pace.map_or_else(|| "unlimited".to_owned(), |r| r.to_string())
    );
    let mut rows = Vec::new();
    for name in ["direct", "doppel", "socat"] {
        let (echo_child, echo_addr, sink_child, sink_addr) = if name == "direct" {
            (None, echo.addr(), None, sink.addr())
        } else {
            let (c1, a1) = spawn_relay(name, &a.socat, echo.addr()).await?;
            let (c2, a2) = spawn_relay(name, &a.socat, sink.addr()).await?;
            (Some(c1), a1, Some(c2), a2)
        };
        let rtts = round_trips(echo_addr, a.round_trips, a.message, 100).await?;
        drop(echo_child);
        let cpu0 = match &sink_child {
            Some(c) => cpu_seconds(c.0.id())?,
            None => 0.0,
        };
        let took = bulk_transfer(sink_addr, a.bytes, pace).await?;
        // socat's per-connection child is reaped (and its CPU time added to the parent) shortly
        // after the connection closes.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let cpu = match &sink_child {
            Some(c) => cpu_seconds(c.0.id())? - cpu0,
            None => 0.0,
        };
        drop(sink_child);
        let row = Row {
            name,
            median_us: median(&rtts).as_secs_f64() * 1e6,
            p99_us: percentile(&rtts, 99).as_secs_f64() * 1e6,
            mbit_s: a.bytes as f64 * 8.0 / took.as_secs_f64() / 1e6,
            cpu_s_per_mb: cpu / mb,
        };
        println!(
            "{:<7} rtt median {:>8.1} us  p99 {:>8.1} us  bulk {:>7.0} Mbit/s  relay cpu {:.2} ms/MB",
            row.name,
            row.median_us,
            row.p99_us,
            row.mbit_s,
            row.cpu_s_per_mb * 1e3
        );
        rows.push(row);
    }
    let (direct, doppel, socat) = (&rows[0], &rows[1], &rows[2]);
    let added_doppel = doppel.median_us - direct.median_us;
    let added_socat = socat.median_us - direct.median_us;
    println!("added latency (median RTT - direct): doppel {added_doppel:.1} us, socat {added_socat:.1} us, ratio {:.2}", added_doppel / added_socat);
    println!(
        "cpu per MB: doppel {:.2} ms, socat {:.2} ms, ratio {:.2}",
        doppel.cpu_s_per_mb * 1e3,
        socat.cpu_s_per_mb * 1e3,
        doppel.cpu_s_per_mb / socat.cpu_s_per_mb
    );
    Ok(())
}

//! `doppel vm run --vnc ADDR [--ws ADDR]`: the machine's framebuffer served over RFB while the VM
//! runs, and viewers' keys and pointer fed to the guest's virtio input devices.
//!
//! Threads: the machine thread owns the [`Machine`]; between run slices (and after idle periods,
//! through [`Environment::yield_after_idle`]) it captures damage with a [`DamageTracker`] from
//! the display's own view of the framebuffer's dirty pages ([`Machine::take_framebuffer_dirty`]),
//! at most [`MAX_FPS`] times a second and only when a page was written, and publishes the frame
//! into a `watch` channel: it never waits for a viewer. A tokio runtime on its own thread serves
//! viewers (TCP with None, VNC authentication or VeNCrypt TLS; WebSocket for noVNC) and forwards
//! their input, serialised in one queue, to the live environment's input sender.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use doppel_host::live::InputSender;
use doppel_machine::machine::Machine;
use doppel_machine::{EnvError, Environment, IdleState, InputEvent, InstructionCount, Output, Ticks};
use doppel_rfb::damage::{DamageTracker, Frame, FrameSource};
use doppel_rfb::engine::Security;
use doppel_rfb::meter::{Meters, TrafficEstimator};
use doppel_rfb::server::{Display, ServerConfig};
use doppel_rfb::tls::Identity;
use tokio::sync::watch;

/// Most frames published per second.
pub const MAX_FPS: u32 = 60;

#[derive(Args, Debug, Default)]
pub struct VncArgs {
    /// Serve the framebuffer over RFB (VNC) on this address, e.g. 127.0.0.1:5900.
    #[arg(long, value_name = "ADDR")]
    vnc: Option<SocketAddr>,
    /// Also accept WebSocket viewers (noVNC) on this address, e.g. 127.0.0.1:5700.
    /// Uses VNC authentication when --password-file is given, never TLS.
    #[arg(long, value_name = "ADDR")]
    ws: Option<SocketAddr>,
    /// Require this password (first line of the file): VNC authentication, or with TLS the
    /// X509Vnc / X509Plain VeNCrypt subtypes. VNC authentication uses only its first 8 bytes.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Require VeNCrypt TLS on --vnc (X509None, or X509Vnc/X509Plain with --password-file). The
    /// certificate is --tls-cert/--tls-key or one generated on first start in --vnc-config-dir.
    #[arg(long)]
    tls: bool,
    /// PEM certificate (chain) for TLS; implies --tls.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Where a generated certificate is kept [default: $XDG_CONFIG_HOME/doppel/vnc or
    /// ~/.config/doppel/vnc]. Viewers pin it: `vncviewer -X509CA=DIR/cert.pem`.
    #[arg(long, value_name = "DIR")]
    vnc_config_dir: Option<PathBuf>,
}

impl VncArgs {
    pub fn enabled(&self) -> bool {
        self.vnc.is_some() || self.ws.is_some()
    }
}

/// The machine's framebuffer as the damage tracker sees it.
struct MachineSource<'a>(&'a mut Machine);

impl FrameSource for MachineSource<'_> {
    fn geometry(&self) -> (u32, u32, u32) {
        self.0.framebuffer().map_or((0, 0, 0), |f| (f.width, f.height, f.stride))
    }

    fn pixels(&self) -> &[u8] {
        self.0.framebuffer().map_or(&[], |f| f.pixels)
    }

    fn take_dirty_pages(&mut self) -> Vec<u64> {
        self.0.take_framebuffer_dirty()
    }
}

/// The machine thread's half: captures and publishes frames.
pub struct Publisher {
    tracker: DamageTracker,
    frames: watch::Sender<Option<Arc<Frame>>>,
    last: Option<Instant>,
    interval: Duration,
    /// Frames published.
    pub published: u64,
}

impl Publisher {
    /// When the next capture is due.
    pub fn due(&self) -> Instant {
        self.last.map_or_else(Instant::now, |t| t + self.interval)
    }

    /// Captures and publishes if a frame interval has passed and something changed.
    pub fn tick(&mut self, machine: &mut Machine, now: Instant) {
        if self.last.is_some_and(|t| now < t + self.interval) {
            return;
        }
        self.last = Some(now);
        if let Some(frame) = self.tracker.capture(&mut MachineSource(machine)) {
            self.published += 1;
            self.frames.send_replace(Some(frame));
        }
    }
}

/// An environment that asks the machine to yield after idling once a frame is due, so an idle
/// guest's last drawing reaches viewers promptly. Everything else is the inner environment's.
pub struct DisplayEnv<E> {
    pub inner: E,
    pub due: Option<Instant>,
}

impl<E: Environment> Environment for DisplayEnv<E> {
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
        self.inner.yield_after_idle() || self.due.is_some_and(|d| Instant::now() >= d)
    }
    fn entropy(&mut self, icount: InstructionCount, buf: &mut [u8]) {
        self.inner.entropy(icount, buf);
    }
    fn output(&mut self, icount: InstructionCount, output: Output<'_>) {
        self.inner.output(icount, output);
    }
}

/// The running display server (its runtime thread lives as long as the process).
pub struct VncServer {
    pub publisher: Publisher,
    pub meters: Arc<Meters>,
}

fn config_dir(args: &VncArgs) -> Result<PathBuf> {
    if let Some(d) = &args.vnc_config_dir {
        return Ok(d.clone());
    }
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => PathBuf::from(std::env::var_os("HOME").context("neither XDG_CONFIG_HOME nor HOME is set; give --vnc-config-dir")?)
            .join(".config"),
    };
    Ok(base.join("doppel").join("vnc"))
}

fn read_password(path: &Path) -> Result<Vec<u8>> {
    let text = std::fs::read(path).with_context(|| format!("cannot read the password file {}", path.display()))?;
    let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        bail!("the password file {} is empty", path.display());
    }
    Ok(line.to_vec())
}

/// Host names and addresses a generated certificate names.
fn cert_names(addr: Option<SocketAddr>) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    if let Ok(h) = std::fs::read_to_string("/etc/hostname") {
        let h = h.trim();
        if !h.is_empty() {
            names.push(h.to_string());
        }
    }
    if let Some(a) = addr.filter(|a| !a.ip().is_unspecified() && !a.ip().is_loopback()) {
        names.push(a.ip().to_string());
    }
    names
}

fn bind(addr: SocketAddr, what: &str) -> Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen for {what} on {addr}"))?;
    l.set_nonblocking(true).with_context(|| format!("cannot listen for {what} on {addr}"))?;
    Ok(l)
}

/// Binds the listeners, prepares TLS, starts the server thread. Prints where it listens.
pub fn start(args: &VncArgs, name: &str, input: InputSender) -> Result<VncServer> {
    let password = args.password_file.as_deref().map(read_password).transpose()?;
    let tls_wanted = args.tls || args.tls_cert.is_some();
    if tls_wanted && args.vnc.is_none() {
        bail!("--tls needs --vnc (the WebSocket listener does not do VeNCrypt)");
    }
    let acceptor = if tls_wanted {
        let id = match (&args.tls_cert, &args.tls_key) {
            (Some(c), Some(k)) => Identity::load(c, k)?,
            _ => {
                let dir = config_dir(args)?;
                let (id, fresh) = Identity::load_or_generate(&dir, &cert_names(args.vnc))
                    .with_context(|| format!("cannot set up the TLS certificate in {}", dir.display()))?;
                if fresh {
                    eprintln!("doppel: generated a self-signed VNC certificate: {}", id.cert_path.display());
                }
                id
            }
        };
        eprintln!("doppel: VNC TLS certificate {} (vncviewer -X509CA={})", id.cert_path.display(), id.cert_path.display());
        Some(id.acceptor()?)
    } else {
        None
    };
    let plain_security = match &password {
        Some(p) => Security::VncAuth { password: p.clone() },
        None => Security::None,
    };
    let vnc_security = if tls_wanted { Security::Tls { password: password.clone() } } else { plain_security.clone() };
    let vnc = args.vnc.map(|a| bind(a, "VNC viewers")).transpose()?;
    let ws = args.ws.map(|a| bind(a, "WebSocket viewers")).transpose()?;
    for (l, what) in [(&vnc, "VNC"), (&ws, "WebSocket (noVNC)")] {
        if let Some(l) = l {
            eprintln!("doppel: {what} viewers: {}", l.local_addr().context("listener address")?);
        }
    }

    let (ftx, frx) = watch::channel(None);
    let (itx, mut irx) = tokio::sync::mpsc::unbounded_channel::<InputEvent>();
    let meters = Arc::new(Meters::new());
    let display = Display { frames: frx, input: itx, meters: meters.clone(), estimator: Arc::new(Mutex::new(TrafficEstimator::new())) };
    let cursor = Some(doppel_rfb::pattern::arrow_cursor());
    let vnc_config = ServerConfig { security: vnc_security, name: name.to_string(), cursor: cursor.clone() };
    let ws_config = ServerConfig { security: plain_security, name: name.to_string(), cursor };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("vnc")
        .enable_all()
        .build()
        .context("cannot start the VNC server's runtime")?;
    std::thread::Builder::new()
        .name("vnc-server".into())
        .spawn(move || {
            runtime.block_on(async move {
                tokio::spawn(async move {
                    // One queue for every viewer: the machine sees their input in arrival order.
                    while let Some(ev) = irx.recv().await {
                        if !input.send(ev) {
                            break;
                        }
                    }
                });
                let mut tasks = Vec::new();
                if let Some(l) = vnc {
                    let d = display.clone();
                    tasks.push(tokio::spawn(async move {
                        let l = tokio::net::TcpListener::from_std(l)?;
                        doppel_rfb::server::serve_with(l, vnc_config, acceptor, d).await
                    }));
                }
                if let Some(l) = ws {
                    let d = display.clone();
                    tasks.push(tokio::spawn(async move {
                        let l = tokio::net::TcpListener::from_std(l)?;
                        doppel_rfb::ws::serve_ws(l, ws_config, d).await
                    }));
                }
                for t in tasks {
                    match t.await {
                        Ok(Err(e)) => tracing::error!(error = %e, "VNC listener failed"),
                        Err(e) => tracing::error!(error = %e, "VNC listener task failed"),
                        Ok(Ok(())) => {}
                    }
                }
            });
        })
        .context("cannot start the VNC server thread")?;
    Ok(VncServer {
        publisher: Publisher {
            tracker: DamageTracker::new(),
            frames: ftx,
            last: None,
            interval: Duration::from_secs(1) / MAX_FPS,
            published: 0,
        },
        meters,
    })
}

/// One line of display figures for `--stats`.
pub fn stats_line(server: &VncServer, elapsed: Duration) -> String {
    let snap = server.meters.snapshot();
    let bytes: u64 = snap.bytes.iter().sum();
    let updates: u64 = snap.updates;
    format!(
        "doppel: display: {} frames published, {updates} updates sent, {bytes} bytes ({:.1} kB/s)",
        server.publisher.published,
        bytes as f64 / elapsed.as_secs_f64().max(1e-9) / 1e3
    )
}

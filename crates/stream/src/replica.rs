//! The replica: restore the host's VM from a streamed snapshot with demand-paged RAM and replay
//! its live log, staying in step.
//!
//! # Threads
//!
//! * **Main thread**: the handshake, then the machine and its [`LiveReplayer`]. It runs to the
//!   horizon, waits for more log, checks each framebuffer hash the host sends at the exact
//!   instruction count, and reports [`Status`] once a second.
//! * **Fault thread**: reads userfaultfd faults of guest RAM ([`crate::uffd`]). A page the table
//!   says is zero is mapped as the zero page; a cached one is copied in from the
//!   [`PageCache`]; any other is requested from the host (once).
//! * **Network thread**: reads the host's messages. Pages are checked against their content
//!   address, stored in the cache and installed at once (which wakes a waiting fault); disk
//!   blocks go to the [`RemoteDisk`]; log, horizons and framebuffer hashes go to the main thread.
//! * **Prefetch thread** (optional): walks the non-zero pages in order and installs them from the
//!   cache or asks for them in small batches, so later faults find them present.

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use doppel_machine::bus::RAM_BASE;
use doppel_machine::devices::{DiskBase, DiskError};
use doppel_machine::{persist, BootMode, DevicesConfig, GuestRam, Machine, MachineConfig, MachineState};
use doppel_replay::{LiveReplayer, LiveStop, ReplayError};

use crate::cache::{CacheError, PageCache};
use crate::proto::{self, Decoder, MachineInfo, Message, PageHash, ProtoError, PAGE};
use crate::uffd::{Mapping, Uffd};

/// How a replica runs.
#[derive(Debug, Clone, Default)]
pub struct ReplicaOptions {
    /// Directory of the content-addressed page cache (none: no cache).
    pub cache: Option<PathBuf>,
    /// Fetch all non-zero pages in the background after the restore.
    pub prefetch: bool,
}

/// Why a replica stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error("cannot connect to {addr}")]
    Connect { addr: String, source: std::io::Error },
    #[error("connection to the host failed")]
    Io(#[from] std::io::Error),
    #[error("the host's stream is invalid")]
    Proto(#[from] ProtoError),
    #[error("the host refused the session: {0}")]
    Refused(String),
    #[error("the host sent {got} during the handshake, expected {expected}")]
    Unexpected { got: &'static str, expected: &'static str },
    #[error("the host speaks protocol version {found}, this build speaks {supported}")]
    Version { found: u16, supported: u16 },
    #[error("the host's snapshot does not decode")]
    State(#[from] persist::SnapshotError),
    #[error("cannot rebuild the host's machine")]
    Machine(#[from] doppel_machine::MachineError),
    #[error("cannot set up demand-paged RAM (userfaultfd)")]
    Uffd(#[source] std::io::Error),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("the replay diverged from the host")]
    Replay(#[from] ReplayError),
    #[error("the replay log is invalid")]
    Log(#[from] doppel_replay::wire::WireError),
    #[error("framebuffer differs from the host's at instruction {icount} (host {host}, replica {replica})")]
    Framebuffer { icount: u64, host: String, replica: String },
    #[error("the host closed the stream: {0}")]
    Closed(String),
    #[error("cannot start a replica thread")]
    Thread(#[source] std::io::Error),
}

/// Traffic and paging meters (atomics, shared by the replica's threads).
#[derive(Debug, Default)]
pub struct Meters {
    pub log_bytes: AtomicU64,
    pub page_bytes: AtomicU64,
    pub block_bytes: AtomicU64,
    pub other_bytes: AtomicU64,
    pub pages_fetched: AtomicU64,
    pub pages_from_cache: AtomicU64,
    pub zero_pages: AtomicU64,
    pub faults: AtomicU64,
    pub prefetched: AtomicU64,
    pub blocks_fetched: AtomicU64,
}

impl Meters {
    pub fn total_bytes(&self) -> u64 {
        self.log_bytes.load(Ordering::Relaxed)
            + self.page_bytes.load(Ordering::Relaxed)
            + self.block_bytes.load(Ordering::Relaxed)
            + self.other_bytes.load(Ordering::Relaxed)
    }
}

/// Where the replica stands (reported once a second and at the end).
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub elapsed: Duration,
    pub snapshot_icount: u64,
    pub icount: u64,
    /// The host's latest horizon.
    pub host_icount: u64,
    /// Instructions behind the host's latest horizon.
    pub lag_instructions: u64,
    /// Host-clock milliseconds between the host's latest horizon and the one the replica last
    /// reached (0 when caught up). Network delay is not included.
    pub lag_ms: u64,
    pub checkpoints: u64,
    pub fb_checks: u64,
    /// Bytes per second over the last report interval.
    pub log_bps: f64,
    pub page_bps: f64,
    pub block_bps: f64,
    pub total_bytes: u64,
    pub pages_fetched: u64,
    pub pages_from_cache: u64,
    pub faults: u64,
    /// When the replica first caught up with the host and showed its screen: time since
    /// connecting, bytes received, pages fetched over the network by then.
    pub first_screen: Option<(Duration, u64, u64)>,
}

impl Status {
    /// One status line.
    pub fn line(&self) -> String {
        format!(
            "icount {} host {} lag {} instr {} ms | log {:.1} KB/s pages {:.1} KB/s blocks {:.1} KB/s | fetched {} pages, {} from cache, {:.1} MB total | checkpoints {} fb ok {}",
            self.icount,
            self.host_icount,
            self.lag_instructions,
            self.lag_ms,
            self.log_bps / 1e3,
            self.page_bps / 1e3,
            self.block_bps / 1e3,
            self.pages_fetched,
            self.pages_from_cache,
            self.total_bytes as f64 / 1e6,
            self.checkpoints,
            self.fb_checks,
        )
    }
}

/// What the status callback wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Continue,
    Stop,
}

/// Why [`run`] returned without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The callback asked to stop.
    Stopped,
    /// The guest powered off (as on the host).
    PowerOff(u32),
    /// The log ended.
    End,
}

const MISSING: u8 = 0;
const REQUESTED: u8 = 1;
const PRESENT: u8 = 2;

/// State shared by the fault, network and prefetch threads.
struct Pager {
    uffd: Uffd,
    table: Vec<Option<PageHash>>,
    state: Vec<AtomicU8>,
    cache: Option<PageCache>,
    out: Mutex<TcpStream>,
    meters: Arc<Meters>,
    stop: AtomicBool,
}

impl Pager {
    fn send(&self, m: &Message) -> std::io::Result<()> {
        let bytes = m.to_bytes();
        let mut out = self.out.lock().map_err(|_| std::io::Error::other("writer poisoned"))?;
        out.write_all(&bytes)
    }

    /// Install page `p` from the cache or as zeros if possible; else ask the host (once).
    fn fill(&self, p: usize) -> std::io::Result<()> {
        if self.state[p].load(Ordering::Acquire) == PRESENT {
            return Ok(());
        }
        match self.table[p] {
            None => {
                self.uffd.install(p, None)?;
                self.state[p].store(PRESENT, Ordering::Release);
                self.meters.zero_pages.fetch_add(1, Ordering::Relaxed);
            }
            Some(h) => {
                if let Some(data) = self.cache.as_ref().and_then(|c| c.get(&h)) {
                    self.uffd.install(p, Some(&data))?;
                    self.state[p].store(PRESENT, Ordering::Release);
                    self.meters.pages_from_cache.fetch_add(1, Ordering::Relaxed);
                } else if self.state[p].compare_exchange(MISSING, REQUESTED, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                    self.send(&Message::GetPages { pages: vec![u32::try_from(p).unwrap_or(u32::MAX)] })?;
                }
            }
        }
        Ok(())
    }

    /// A page arrived from the host.
    fn arrived(&self, index: u32, data: &[u8; PAGE]) -> Result<(), ReplicaError> {
        let p = index as usize;
        let Some(expected) = self.table.get(p) else {
            return Err(ProtoError::Malformed { offset: 0, what: "Page (index beyond RAM)" }.into());
        };
        if *expected != Some(proto::page_hash(data)) {
            return Err(ProtoError::Malformed { offset: 0, what: "Page (content does not match the page table)" }.into());
        }
        if let Some(c) = &self.cache {
            c.put(data)?;
        }
        self.uffd.install(p, Some(data))?;
        self.state[p].store(PRESENT, Ordering::Release);
        self.meters.pages_fetched.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Disk blocks fetched from the host on demand (the base image; the overlay is in the state).
struct Blocks {
    map: Mutex<BTreeMap<u64, Box<[u8; PAGE]>>>,
    arrived: Condvar,
}

/// The host's disk base, read over the stream.
pub struct RemoteDisk {
    len: u64,
    blocks: Arc<Blocks>,
    pager: Arc<Pager>,
    meters: Arc<Meters>,
}

impl DiskBase for RemoteDisk {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let len = buf.len();
        let io = |source| DiskError::Io { offset, len, source };
        let page = PAGE as u64;
        let mut done = 0;
        while done < buf.len() {
            let at = offset + done as u64;
            let block = at / page;
            let within = usize::try_from(at % page).unwrap_or(0);
            let n = (PAGE - within).min(buf.len() - done);
            let mut map = self.blocks.map.lock().map_err(|_| io(std::io::Error::other("poisoned")))?;
            if !map.contains_key(&block) {
                self.pager.send(&Message::GetBlocks { blocks: vec![block] }).map_err(io)?;
                self.meters.blocks_fetched.fetch_add(1, Ordering::Relaxed);
                let deadline = Instant::now() + Duration::from_secs(30);
                while !map.contains_key(&block) {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(io(std::io::Error::new(std::io::ErrorKind::TimedOut, "the host sent no block")));
                    }
                    map = self.blocks.arrived.wait_timeout(map, left).map_err(|_| io(std::io::Error::other("poisoned")))?.0;
                }
            }
            if let Some(b) = map.get(&block) {
                buf[done..done + n].copy_from_slice(&b[within..within + n]);
            }
            done += n;
        }
        Ok(())
    }
}

/// What the network thread hands the main thread.
enum Event {
    Log(Vec<u8>),
    Horizon { icount: u64, host_ms: u64 },
    Fb { icount: u64, hash: [u8; 32] },
    Closed(String),
}

fn read_message(sock: &mut TcpStream, dec: &mut Decoder, buf: &mut [u8], meters: &Meters) -> Result<Message, ReplicaError> {
    loop {
        if let Some(m) = dec.next_message()? {
            return Ok(m);
        }
        let n = sock.read(buf)?;
        if n == 0 {
            dec.finish()?;
            return Err(ReplicaError::Closed("connection closed".into()));
        }
        meters.other_bytes.fetch_add(n as u64, Ordering::Relaxed);
        dec.push(&buf[..n]);
    }
}

fn expect_err(m: Message, expected: &'static str) -> ReplicaError {
    match m {
        Message::Error { reason } => ReplicaError::Refused(reason),
        other => ReplicaError::Unexpected { got: other.name(), expected },
    }
}

/// Connect to a host at `addr`, restore and replay live until `on_status` says stop, the guest
/// powers off or an error. `on_status` is called about once a second.
pub fn run(addr: &str, options: &ReplicaOptions, on_status: &mut dyn FnMut(&Status) -> Control) -> Result<(Ended, Status), ReplicaError> {
    let started = Instant::now();
    let mut sock = TcpStream::connect(addr).map_err(|source| ReplicaError::Connect { addr: addr.to_string(), source })?;
    let _ = sock.set_nodelay(true);
    sock.set_read_timeout(Some(Duration::from_secs(60)))?;
    sock.write_all(&Message::Hello { version: proto::VERSION }.to_bytes())?;
    let meters = Arc::new(Meters::default());
    let mut dec = Decoder::new();
    let mut buf = vec![0u8; 256 << 10];
    let info = match read_message(&mut sock, &mut dec, &mut buf, &meters)? {
        Message::Welcome { version, info } if version == proto::VERSION => info,
        Message::Welcome { version, .. } => return Err(ReplicaError::Version { found: version, supported: proto::VERSION }),
        other => return Err(expect_err(other, "Welcome")),
    };
    let (snapshot_icount, state) = match read_message(&mut sock, &mut dec, &mut buf, &meters)? {
        Message::State { icount, state } => (icount, state),
        other => return Err(expect_err(other, "State")),
    };
    let state: MachineState = persist::decode(&state)?;
    let ram_size = usize::try_from(info.ram_size).map_err(|_| ProtoError::Malformed { offset: 0, what: "Welcome (RAM size)" })?;
    let pages = ram_size / PAGE;
    let mut table = vec![None; pages];
    loop {
        match read_message(&mut sock, &mut dec, &mut buf, &meters)? {
            Message::PageTable { first, count, present, hashes } => {
                proto::apply_page_table(&mut table, first, count, &present, &hashes)?
            }
            Message::TableEnd { .. } => break,
            other => return Err(expect_err(other, "PageTable")),
        }
    }
    sock.set_read_timeout(None)?;

    // Demand-paged RAM: the fault thread must run before anything touches it.
    let mapping = Mapping::new(ram_size).map_err(ReplicaError::Uffd)?;
    let uffd = Uffd::register(&mapping).map_err(ReplicaError::Uffd)?;
    let cache = options.cache.as_deref().map(PageCache::open).transpose()?;
    let pager = Arc::new(Pager {
        uffd,
        table,
        state: (0..pages).map(|_| AtomicU8::new(MISSING)).collect(),
        cache,
        out: Mutex::new(sock.try_clone()?),
        meters: meters.clone(),
        stop: AtomicBool::new(false),
    });
    let blocks = Arc::new(Blocks { map: Mutex::new(BTreeMap::new()), arrived: Condvar::new() });
    let mut threads = Vec::new();
    let fp = pager.clone();
    threads.push(spawn("replica-faults", move || fault_loop(&fp))?);
    let (tx, rx) = mpsc::channel();
    let (np, nb, nm) = (pager.clone(), blocks.clone(), meters.clone());
    let net_sock = sock.try_clone()?;
    threads.push(spawn("replica-net", move || net_loop(net_sock, dec, &np, &nb, &nm, &tx))?);
    if options.prefetch {
        let pp = pager.clone();
        threads.push(spawn("replica-prefetch", move || prefetch_loop(&pp))?);
    }

    let result = (|| {
        let config = machine_config(&info, &pager, &blocks, &meters);
        let ram = GuestRam::with_backing(RAM_BASE, Box::new(mapping))
            .map_err(|e| ReplicaError::Uffd(std::io::Error::other(e.to_string())))?;
        let mut machine = Machine::from_state_with_ram(config, &state, ram)?;
        let r = follow(&mut machine, &info, snapshot_icount, &rx, &pager, &meters, started, on_status);
        // Leave the pages as they are now in the cache: a reconnect (from a later snapshot)
        // then fetches only what changed since.
        if r.is_ok() {
            save_to_cache(&machine, &pager);
        }
        r
    })();
    pager.stop.store(true, Ordering::Relaxed);
    let _ = sock.shutdown(Shutdown::Both);
    for t in threads {
        let _ = t.join();
    }
    result
}

/// Store every page the replica holds (present, non-zero) in the cache.
fn save_to_cache(machine: &Machine, pager: &Pager) {
    let Some(cache) = &pager.cache else { return };
    let ram = machine.ram().as_slice();
    for (p, state) in pager.state.iter().enumerate() {
        // Only present pages: reading a missing one would fault.
        if state.load(Ordering::Acquire) != PRESENT {
            continue;
        }
        let page = &ram[p * PAGE..(p + 1) * PAGE];
        if page.iter().all(|&b| b == 0) {
            continue;
        }
        let mut data = [0u8; PAGE];
        data.copy_from_slice(page);
        if let Err(e) = cache.put(&data) {
            tracing::warn!("cannot store page {p} in the cache: {e}");
            return;
        }
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<std::thread::JoinHandle<()>, ReplicaError> {
    std::thread::Builder::new().name(name.into()).spawn(f).map_err(ReplicaError::Thread)
}

fn machine_config(info: &MachineInfo, pager: &Arc<Pager>, blocks: &Arc<Blocks>, meters: &Arc<Meters>) -> MachineConfig {
    let disk = (info.disk_len > 0).then(|| {
        Box::new(RemoteDisk { len: info.disk_len, blocks: blocks.clone(), pager: pager.clone(), meters: meters.clone() })
            as Box<dyn DiskBase>
    });
    MachineConfig {
        ram_size: usize::try_from(info.ram_size).unwrap_or(0),
        kernel: Vec::new(),
        initrd: None,
        cmdline: String::new(),
        framebuffer: info.framebuffer,
        instructions_per_tick: info.instructions_per_tick,
        devices: DevicesConfig {
            disk,
            net: info.net,
            mac: info.mac,
            input: info.input,
            rng: info.rng,
            framebuffer: None,
        },
        boot: if info.bare_metal { BootMode::BareMetal } else { BootMode::Linux },
    }
}

fn fault_loop(pager: &Pager) {
    while !pager.stop.load(Ordering::Relaxed) {
        match pager.uffd.next_fault(100) {
            Ok(Some(p)) => {
                pager.meters.faults.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = pager.fill(p) {
                    tracing::warn!("cannot serve the fault on page {p}: {e}");
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("userfaultfd read failed: {e}");
                return;
            }
        }
    }
}

fn prefetch_loop(pager: &Pager) {
    const BATCH: usize = 64;
    let mut batch = Vec::new();
    for p in 0..pager.table.len() {
        if pager.stop.load(Ordering::Relaxed) {
            return;
        }
        let Some(h) = pager.table[p] else { continue };
        if pager.state[p].load(Ordering::Acquire) != MISSING {
            continue;
        }
        if pager.cache.as_ref().is_some_and(|c| c.contains(&h)) {
            let _ = pager.fill(p);
            continue;
        }
        if pager.state[p].compare_exchange(MISSING, REQUESTED, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            batch.push(u32::try_from(p).unwrap_or(u32::MAX));
            pager.meters.prefetched.fetch_add(1, Ordering::Relaxed);
        }
        if batch.len() == BATCH && !prefetch_batch(pager, std::mem::take(&mut batch)) {
            return;
        }
    }
    if !batch.is_empty() {
        prefetch_batch(pager, batch);
    }
}

/// Ask for one batch and wait until it is installed (one batch in flight at a time, so demand
/// faults are not stuck behind a long queue). False when the replica is stopping.
fn prefetch_batch(pager: &Pager, batch: Vec<u32>) -> bool {
    if pager.send(&Message::GetPages { pages: batch.clone() }).is_err() {
        return false;
    }
    while batch.iter().any(|&q| pager.state[q as usize].load(Ordering::Acquire) != PRESENT) {
        if pager.stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    true
}

fn net_loop(mut sock: TcpStream, mut dec: Decoder, pager: &Pager, blocks: &Blocks, meters: &Meters, tx: &Sender<Event>) {
    let mut buf = vec![0u8; 256 << 10];
    let reason = loop {
        let msg = match dec.next_message() {
            Ok(Some(m)) => m,
            Ok(None) => match sock.read(&mut buf) {
                Ok(0) => break "the host closed the connection".to_string(),
                Ok(n) => {
                    dec.push(&buf[..n]);
                    continue;
                }
                Err(e) => break format!("connection failed: {e}"),
            },
            Err(e) => break format!("invalid stream: {e}"),
        };
        let size = msg.to_bytes().len() as u64;
        let ev = match msg {
            Message::Page { index, data } => {
                meters.page_bytes.fetch_add(size, Ordering::Relaxed);
                if let Err(e) = pager.arrived(index, &data) {
                    break e.to_string();
                }
                continue;
            }
            Message::Block { index, data } => {
                meters.block_bytes.fetch_add(size, Ordering::Relaxed);
                if let Ok(mut m) = blocks.map.lock() {
                    m.insert(index, data);
                }
                blocks.arrived.notify_all();
                continue;
            }
            Message::Log { bytes } => {
                meters.log_bytes.fetch_add(size, Ordering::Relaxed);
                Event::Log(bytes)
            }
            Message::Horizon { icount, host_ms } => {
                meters.log_bytes.fetch_add(size, Ordering::Relaxed);
                Event::Horizon { icount, host_ms }
            }
            Message::FbHash { icount, hash } => {
                meters.other_bytes.fetch_add(size, Ordering::Relaxed);
                Event::Fb { icount, hash }
            }
            Message::Error { reason } => break format!("the host says: {reason}"),
            other => break format!("unexpected {} from the host", other.name()),
        };
        if tx.send(ev).is_err() {
            return;
        }
    };
    if !pager.stop.load(Ordering::Relaxed) {
        let _ = tx.send(Event::Closed(reason));
    }
}

/// What the main thread tracks of the host's stream besides the log.
struct Track {
    fb_due: VecDeque<(u64, [u8; 32])>,
    horizons: VecDeque<(u64, u64)>,
    latest: (u64, u64),
}

impl Track {
    fn apply(&mut self, ev: Event, live: &mut LiveReplayer) -> Result<(), ReplicaError> {
        match ev {
            Event::Log(bytes) => live.push(&bytes)?,
            Event::Horizon { icount, host_ms } => {
                live.advance_horizon(icount);
                self.horizons.push_back((icount, host_ms));
                self.latest = (icount, host_ms);
            }
            Event::Fb { icount, hash } => self.fb_due.push_back((icount, hash)),
            Event::Closed(reason) => return Err(ReplicaError::Closed(reason)),
        }
        Ok(())
    }
}

fn hex8(h: &[u8; 32]) -> String {
    h[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[allow(clippy::too_many_arguments)]
fn follow(
    machine: &mut Machine,
    info: &MachineInfo,
    snapshot_icount: u64,
    rx: &Receiver<Event>,
    pager: &Pager,
    meters: &Meters,
    started: Instant,
    on_status: &mut dyn FnMut(&Status) -> Control,
) -> Result<(Ended, Status), ReplicaError> {
    let mut live = LiveReplayer::new();
    let mut checked_start = false;
    let mut t = Track { fb_due: VecDeque::new(), horizons: VecDeque::new(), latest: (snapshot_icount, 0) };
    let mut status = Status { snapshot_icount, ..Status::default() };
    let mut reached_ms = 0;
    let mut last_report = Instant::now();
    let mut last_progress = Instant::now();
    let mut last_bytes = (0u64, 0u64, 0u64);
    loop {
        while let Ok(ev) = rx.try_recv() {
            t.apply(ev, &mut live)?;
        }
        if !checked_start && live.header().is_some() {
            live.check_start(machine, &info.fingerprint)?;
            checked_start = true;
        }
        while t.fb_due.front().is_some_and(|&(at, _)| at < machine.icount()) {
            t.fb_due.pop_front();
        }
        let until = t.fb_due.front().map_or(u64::MAX, |&(at, _)| at);
        let stop = if checked_start { live.run(machine, until)? } else { LiveStop::Horizon };
        match stop {
            LiveStop::Limit => {
                if let Some((at, hash)) = t.fb_due.pop_front() {
                    if let Some(fb) = machine.framebuffer() {
                        let got = *blake3::hash(fb.pixels).as_bytes();
                        if got != hash {
                            return Err(ReplicaError::Framebuffer { icount: at, host: hex8(&hash), replica: hex8(&got) });
                        }
                        status.fb_checks += 1;
                    }
                }
            }
            LiveStop::Horizon => {
                // Caught up: note it, then wait for more.
                while t.horizons.front().is_some_and(|&(h, _)| h <= machine.icount()) {
                    if let Some((_, ms)) = t.horizons.pop_front() {
                        reached_ms = ms;
                    }
                }
                if status.first_screen.is_none() && checked_start && machine.icount() >= t.latest.0 {
                    // Showing the screen reads the framebuffer (faulting its pages in).
                    let _ = machine.framebuffer().map(|fb| blake3::hash(fb.pixels));
                    status.first_screen =
                        Some((started.elapsed(), meters.total_bytes(), meters.pages_fetched.load(Ordering::Relaxed)));
                }
                match rx.recv_timeout(Duration::from_millis(100)) {
                    Ok(ev) => t.apply(ev, &mut live)?,
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return Err(ReplicaError::Closed("network thread ended".into())),
                }
            }
            LiveStop::End => return Ok((Ended::End, status)),
            LiveStop::PowerOff(code) => return Ok((Ended::PowerOff(code), status)),
            LiveStop::Reset => return Ok((Ended::End, status)),
        }
        while t.horizons.front().is_some_and(|&(h, _)| h <= machine.icount()) {
            if let Some((_, ms)) = t.horizons.pop_front() {
                reached_ms = ms;
            }
        }
        if last_progress.elapsed() >= Duration::from_millis(100) {
            last_progress = Instant::now();
            let _ = pager.send(&Message::Progress { icount: machine.icount() });
        }
        let dt = last_report.elapsed();
        if dt >= Duration::from_secs(1) {
            last_report = Instant::now();
            let bytes = (
                meters.log_bytes.load(Ordering::Relaxed),
                meters.page_bytes.load(Ordering::Relaxed),
                meters.block_bytes.load(Ordering::Relaxed),
            );
            let s = dt.as_secs_f64();
            status.log_bps = (bytes.0 - last_bytes.0) as f64 / s;
            status.page_bps = (bytes.1 - last_bytes.1) as f64 / s;
            status.block_bps = (bytes.2 - last_bytes.2) as f64 / s;
            last_bytes = bytes;
            fill_status(&mut status, machine, &live, t.latest, reached_ms, meters, started);
            if on_status(&status) == Control::Stop {
                return Ok((Ended::Stopped, status));
            }
        }
    }
}

fn fill_status(status: &mut Status, machine: &Machine, live: &LiveReplayer, latest: (u64, u64), reached_ms: u64, meters: &Meters, started: Instant) {
    status.elapsed = started.elapsed();
    status.icount = machine.icount();
    status.host_icount = latest.0;
    status.lag_instructions = latest.0.saturating_sub(machine.icount());
    status.lag_ms = if status.lag_instructions == 0 { 0 } else { latest.1.saturating_sub(reached_ms) };
    status.checkpoints = live.checkpoints_verified().0;
    status.total_bytes = meters.total_bytes();
    status.pages_fetched = meters.pages_fetched.load(Ordering::Relaxed);
    status.pages_from_cache = meters.pages_from_cache.load(Ordering::Relaxed);
    status.faults = meters.faults.load(Ordering::Relaxed);
}

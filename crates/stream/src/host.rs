//! The host side: record the running VM and serve it to any number of replicas.
//!
//! # Threads and queues
//!
//! * The **VM thread** (the caller's) owns the machine. It runs it through a [`Tap`], which
//!   forwards every environment call to the live environment and keeps each answer as a replay
//!   [`Record`]. After every slice it calls [`Streamer::after_slice`], which hands the slice's
//!   records and the new horizon to every session with a non-blocking `try_send` into the
//!   session's bounded queue. A full queue drops that client (with a logged reason): the VM
//!   thread never waits for a client.
//! * Per client, a **reader thread** (requests) and a **writer thread** (everything the client
//!   receives). Pages and blocks are served from the session's snapshot by these threads, never
//!   by the VM thread.
//!
//! # Snapshots while the host keeps running
//!
//! The VM thread keeps a *mirror* of RAM: one reference-counted, hashed copy per non-zero page.
//! A snapshot for a new client (taken between two slices, at icount `S`) first brings the mirror
//! up to date by copying only the pages dirtied since the previous sync (the machine's dirty
//! bitmap), then clones the mirror's page *references* (not the pages). Later syncs replace a
//! dirtied page's entry with a fresh copy and leave the old one to the snapshots that hold it,
//! so every session serves RAM exactly as of its own `S`, however long the host runs on. The
//! stall is the copy of pages dirtied since the last sync; [`Streamer::after_slice`] also syncs
//! every [`HostOptions::sync_every_ms`] so that stays small. It is measured ([`HostStats`]).

use std::collections::VecDeque;
use std::io::{BufWriter, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use doppel_machine::{
    persist, EnvError, Environment, IdleState, InputEvent, InstructionCount, Machine, Output, Ticks, PAGE_SIZE,
};
use doppel_replay::wire::{Encoder, Header, Record};
use doppel_replay::checkpoint_hash;

use crate::proto::{self, Decoder, MachineInfo, Message, PageHash, PAGE};

/// Wraps the live environment and keeps every answer as a replay record (the recorder of a
/// streamed VM: the records go to the sessions, each encoding its own log).
///
/// A guest that sleeps executes no instructions, so `Machine::run` would not return while it
/// idles and the idle warps would never be published. After every idle call the Tap therefore
/// makes the next `poll` fail with [`Yield`] (before anything happens at that instruction), which
/// hands control back to [`run_vm`]; it publishes and calls `run` again.
pub struct Tap<E> {
    inner: E,
    records: Vec<Record>,
    idled: bool,
}

/// The error a [`Tap`] returns from `poll` after an idle call, to end `Machine::run` early.
#[derive(Debug, thiserror::Error)]
#[error("yield to the streamer after an idle call")]
pub struct Yield;

impl<E: Environment> Tap<E> {
    pub fn new(inner: E) -> Self {
        Tap { inner, records: Vec::new(), idled: false }
    }
    pub fn inner(&self) -> &E {
        &self.inner
    }
    pub fn inner_mut(&mut self) -> &mut E {
        &mut self.inner
    }
    /// The records of the calls made since the last call.
    pub fn take_records(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.records)
    }
}

impl<E: Environment> Environment for Tap<E> {
    fn poll(&mut self, icount: InstructionCount) -> Result<Option<InputEvent>, EnvError> {
        if std::mem::take(&mut self.idled) {
            return Err(EnvError(Box::new(Yield)));
        }
        let event = self.inner.poll(icount)?;
        if let Some(event) = &event {
            self.records.push(Record::Event { icount, event: event.clone() });
        }
        Ok(event)
    }
    fn next_event_at(&self) -> Option<InstructionCount> {
        self.inner.next_event_at()
    }
    fn idle(&mut self, state: IdleState) -> Result<Ticks, EnvError> {
        let ticks = self.inner.idle(state)?;
        self.records.push(Record::Warp { icount: state.icount, ticks });
        self.idled = true;
        Ok(ticks)
    }
    fn entropy(&mut self, icount: InstructionCount, buf: &mut [u8]) {
        self.inner.entropy(icount, buf);
        self.records.push(Record::Entropy { icount, bytes: buf.to_vec() });
    }
    fn output(&mut self, icount: InstructionCount, output: Output<'_>) {
        self.inner.output(icount, output);
    }
}

/// How the host streams.
#[derive(Debug, Clone, Copy)]
pub struct HostOptions {
    /// Instructions between checkpoints (and framebuffer hashes) in the stream.
    pub checkpoint_every: u64,
    /// Every n-th checkpoint also carries the full state hash (RAM included; costs a RAM scan).
    /// 0: never.
    pub full_every: u64,
    /// Publish a horizon at least this often (and whenever there are records to send).
    pub horizon_every_ms: u64,
    /// Sync the RAM mirror at least this often while clients are connected (keeps snapshot stalls short).
    pub sync_every_ms: u64,
    /// Messages a session may have queued before it is dropped.
    pub queue: usize,
    /// A client whose socket accepts nothing for this long is dropped.
    pub write_timeout: Duration,
    /// A client that sends no Hello within this time is dropped.
    pub hello_timeout: Duration,
    /// Socket send buffer per client in bytes (0: the system's default). With the queue it bounds
    /// what a client that does not read can hold up before it is dropped.
    pub send_buffer: usize,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            checkpoint_every: 50_000_000,
            horizon_every_ms: 5,
            full_every: 0,
            sync_every_ms: 1000,
            queue: 4096,
            write_timeout: Duration::from_secs(10),
            hello_timeout: Duration::from_secs(10),
            send_buffer: 0,
        }
    }
}

/// A page of the mirror: its bytes and content address.
#[derive(Debug)]
pub struct PageEntry {
    pub hash: PageHash,
    pub data: Box<[u8; PAGE]>,
}

/// RAM as of one snapshot point, shared by the sessions that use it.
pub type SnapshotPages = Arc<Vec<Option<Arc<PageEntry>>>>;

/// What one slice published to every session.
#[derive(Debug)]
struct Batch {
    records: Vec<Record>,
    horizon: InstructionCount,
    host_ms: u64,
    fb: Option<(InstructionCount, [u8; 32])>,
}

/// What a session's writer sends next.
enum Out {
    Batch(Arc<Batch>),
    Pages(Vec<u32>),
    Blocks(Vec<u64>),
}

/// Meters of one session (atomics: written by its threads, read for `--stats`).
#[derive(Debug, Default)]
pub struct SessionMeters {
    pub id: u64,
    pub log_bytes: AtomicU64,
    pub page_bytes: AtomicU64,
    pub block_bytes: AtomicU64,
    pub other_bytes: AtomicU64,
    pub pages_served: AtomicU64,
    /// The replica's last reported icount.
    pub replica_icount: AtomicU64,
    pub start_icount: AtomicU64,
    pub closed: AtomicBool,
}

/// Host-wide figures.
#[derive(Debug, Default)]
pub struct HostStats {
    pub snapshots: AtomicU64,
    /// Longest stall of the VM thread for one snapshot or mirror sync, in microseconds.
    pub max_stall_us: AtomicU64,
    pub total_stall_us: AtomicU64,
    pub pages_copied: AtomicU64,
    pub dropped: AtomicU64,
    pub host_icount: AtomicU64,
    pub host_ms: AtomicU64,
    /// Live and past sessions (closed ones say so).
    pub sessions: Mutex<Vec<Arc<SessionMeters>>>,
    /// Why clients were dropped, most recent last (bounded).
    pub drop_reasons: Mutex<VecDeque<String>>,
    /// Wakes the VM thread from an idle wait ([`Streamer::set_waker`]).
    waker: Waker,
}

/// A way to end the VM thread's idle wait, so a snapshot request is served at once rather than
/// when the sleeping guest's next timer fires.
#[derive(Default)]
struct Waker(Mutex<Option<Box<dyn Fn() + Send + Sync>>>);

impl std::fmt::Debug for Waker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.0.lock().map(|w| w.is_some()).unwrap_or(false);
        f.debug_tuple("Waker").field(&if set { "set" } else { "none" }).finish()
    }
}

impl HostStats {
    fn wake(&self) {
        if let Ok(w) = self.waker.0.lock() {
            if let Some(wake) = w.as_ref() {
                wake();
            }
        }
    }

    fn note_drop(&self, reason: String) {
        tracing::warn!("{reason}");
        self.dropped.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut r) = self.drop_reasons.lock() {
            if r.len() >= 32 {
                r.pop_front();
            }
            r.push_back(reason);
        }
    }
}

/// A session's start, made by the VM thread for a new client.
struct Start {
    icount: InstructionCount,
    state: Vec<u8>,
    pages: SnapshotPages,
    queue: Receiver<Out>,
    sender: SyncSender<Out>,
}

struct SnapshotRequest {
    reply: SyncSender<Start>,
    meters: Arc<SessionMeters>,
    socket: TcpStream,
}

/// A session as the VM thread sees it.
struct Session {
    tx: SyncSender<Out>,
    socket: TcpStream,
    meters: Arc<SessionMeters>,
}

/// Serves disk blocks of the base image (read-only; the overlay travels in the device state).
pub trait BlockSource: Send + Sync {
    /// Read block `index` (4 KiB); bytes past the end of the disk read as zero.
    fn read_block(&self, index: u64, buf: &mut [u8; PAGE]) -> std::io::Result<()>;
}

/// The VM thread's half. See the module docs.
pub struct Streamer {
    info: MachineInfo,
    options: HostOptions,
    mirror: Vec<Option<Arc<PageEntry>>>,
    requests: Receiver<SnapshotRequest>,
    sessions: Vec<Session>,
    stats: Arc<HostStats>,
    next_checkpoint: InstructionCount,
    checkpoints: u64,
    last_sync_ms: u64,
    last_publish_ms: u64,
    pending: Vec<Record>,
}

/// Why the host cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot listen on {addr}")]
    Listen { addr: String, source: std::io::Error },
    #[error("cannot start a server thread")]
    Thread(#[source] std::io::Error),
}

impl Streamer {
    /// Start serving `machine` (described by `info`) on `listener`. Builds the RAM mirror (a full
    /// scan, once) and spawns the accept thread.
    pub fn start(
        machine: &mut Machine,
        info: MachineInfo,
        options: HostOptions,
        listener: TcpListener,
        blocks: Option<Arc<dyn BlockSource>>,
    ) -> Result<Streamer, HostError> {
        let pages = machine.ram().pages();
        let mut mirror = vec![None; pages];
        let ram = machine.ram().as_slice();
        for (p, slot) in mirror.iter_mut().enumerate() {
            *slot = entry(&ram[p * PAGE_SIZE..(p + 1) * PAGE_SIZE]);
        }
        machine.take_dirty();
        let (tx, requests) = mpsc::channel();
        let stats = Arc::new(HostStats::default());
        let accept_stats = stats.clone();
        let accept_info = info.clone();
        std::thread::Builder::new()
            .name("stream-accept".into())
            .spawn(move || accept_loop(listener, tx, accept_stats, accept_info, options, blocks))
            .map_err(HostError::Thread)?;
        let next_checkpoint = next_multiple(machine.icount(), options.checkpoint_every);
        Ok(Streamer {
            info,
            options,
            mirror,
            requests,
            sessions: Vec::new(),
            stats,
            next_checkpoint,
            checkpoints: 0,
            last_sync_ms: 0,
            last_publish_ms: 0,
            pending: Vec::new(),
        })
    }

    /// Shared figures (for `--stats` and tests).
    pub fn stats(&self) -> Arc<HostStats> {
        self.stats.clone()
    }

    /// How to wake the VM thread when its environment idles (for the live environment:
    /// `InputSender::wake`). A new client's snapshot request calls it, so the snapshot is taken
    /// at once instead of at the sleeping guest's next timer (seconds with NO_HZ).
    pub fn set_waker(&self, wake: impl Fn() + Send + Sync + 'static) {
        if let Ok(mut w) = self.stats.waker.0.lock() {
            *w = Some(Box::new(wake));
        }
    }

    /// Machine description sent to clients.
    pub fn info(&self) -> &MachineInfo {
        &self.info
    }

    /// Sessions currently served.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// The next instruction count at which the VM loop must stop for a checkpoint (the caller
    /// ends its slices there).
    pub fn next_stop(&self) -> InstructionCount {
        self.next_checkpoint
    }

    /// Call between slices with the records the [`Tap`] kept and the host's clock (ms since the
    /// host started). Publishes the records and the horizon, writes checkpoints, and serves
    /// snapshot requests. Never blocks on a client.
    pub fn after_slice(&mut self, machine: &mut Machine, records: Vec<Record>, host_ms: u64) {
        self.pending.extend(records);
        let icount = machine.icount();
        self.stats.host_icount.store(icount, Ordering::Relaxed);
        self.stats.host_ms.store(host_ms, Ordering::Relaxed);
        let mut fb = None;
        if icount >= self.next_checkpoint {
            self.checkpoints += 1;
            let full = (self.options.full_every != 0 && self.checkpoints.is_multiple_of(self.options.full_every))
                .then(|| machine.state_hash());
            self.pending.push(Record::Checkpoint { icount, hash: checkpoint_hash(machine), full });
            fb = machine.framebuffer().map(|f| (icount, *blake3::hash(f.pixels).as_bytes()));
            self.next_checkpoint = next_multiple(icount + 1, self.options.checkpoint_every);
        }
        // Input and entropy go out at once; idle warps and bare horizons at most every
        // `horizon_every_ms`.
        let due = fb.is_some()
            || self.pending.iter().any(|r| !matches!(r, Record::Warp { .. }))
            || host_ms.saturating_sub(self.last_publish_ms) >= self.options.horizon_every_ms;
        if !self.sessions.is_empty() && due {
            self.last_publish_ms = host_ms;
            let batch = Arc::new(Batch { records: std::mem::take(&mut self.pending), horizon: icount, host_ms, fb });
            let stats = &self.stats;
            self.sessions.retain(|s| match s.tx.try_send(Out::Batch(batch.clone())) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    stats.note_drop(format!(
                        "client {}: dropped, its queue is full (it does not read fast enough)",
                        s.meters.id
                    ));
                    let _ = s.socket.shutdown(Shutdown::Both);
                    s.meters.closed.store(true, Ordering::Relaxed);
                    false
                }
                Err(TrySendError::Disconnected(_)) => {
                    s.meters.closed.store(true, Ordering::Relaxed);
                    false
                }
            });
            if host_ms.saturating_sub(self.last_sync_ms) >= self.options.sync_every_ms {
                self.sync_mirror(machine, host_ms);
            }
        } else if self.sessions.is_empty() {
            self.pending.clear();
        }
        while let Ok(req) = self.requests.try_recv() {
            self.serve_snapshot(machine, req, host_ms);
        }
    }

    /// The guest stopped (powered off, reset): publish what is left and end every session's log
    /// here, so replicas stop at the same instruction.
    pub fn finish(&mut self, machine: &mut Machine, records: Vec<Record>, host_ms: u64) {
        self.pending.extend(records);
        let icount = machine.icount();
        self.pending.push(Record::Checkpoint { icount, hash: checkpoint_hash(machine), full: None });
        self.pending.push(Record::End { icount });
        let batch = Arc::new(Batch { records: std::mem::take(&mut self.pending), horizon: icount, host_ms, fb: None });
        for s in &self.sessions {
            let _ = s.tx.try_send(Out::Batch(batch.clone()));
        }
        self.sessions.clear();
    }

    /// Copy the pages dirtied since the last sync into fresh mirror entries.
    fn sync_mirror(&mut self, machine: &mut Machine, host_ms: u64) {
        let t0 = std::time::Instant::now();
        let dirty = machine.take_dirty();
        let ram = machine.ram().as_slice();
        let mut copied = 0;
        for (w, word) in dirty.iter().enumerate() {
            let mut bits = *word;
            while bits != 0 {
                let p = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if let Some(slot) = self.mirror.get_mut(p) {
                    *slot = entry(&ram[p * PAGE_SIZE..(p + 1) * PAGE_SIZE]);
                    copied += 1;
                }
            }
        }
        self.last_sync_ms = host_ms;
        let us = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.stats.pages_copied.fetch_add(copied, Ordering::Relaxed);
        self.stats.total_stall_us.fetch_add(us, Ordering::Relaxed);
        self.stats.max_stall_us.fetch_max(us, Ordering::Relaxed);
    }

    fn serve_snapshot(&mut self, machine: &mut Machine, req: SnapshotRequest, host_ms: u64) {
        self.sync_mirror(machine, host_ms);
        let icount = machine.icount();
        let state = persist::encode(&machine.save_state());
        let pages: SnapshotPages = Arc::new(self.mirror.clone());
        let (tx, rx) = mpsc::sync_channel(self.options.queue);
        // The session's log starts with a checkpoint here, so the replica verifies its restore.
        let first = Arc::new(Batch {
            records: vec![Record::Checkpoint { icount, hash: checkpoint_hash(machine), full: None }],
            horizon: icount,
            host_ms,
            fb: None,
        });
        if tx.try_send(Out::Batch(first)).is_err() {
            return;
        }
        req.meters.start_icount.store(icount, Ordering::Relaxed);
        self.stats.snapshots.fetch_add(1, Ordering::Relaxed);
        let start = Start { icount, state, pages, queue: rx, sender: tx.clone() };
        if req.reply.try_send(start).is_ok() {
            self.sessions.push(Session { tx, socket: req.socket, meters: req.meters });
        }
    }
}

fn next_multiple(n: u64, period: u64) -> u64 {
    if period == 0 {
        return u64::MAX;
    }
    n.div_ceil(period).saturating_mul(period)
}

/// A mirror entry for one page (None for all zeros).
fn entry(page: &[u8]) -> Option<Arc<PageEntry>> {
    if page.iter().all(|&b| b == 0) {
        return None;
    }
    let mut data = Box::new([0u8; PAGE]);
    data.copy_from_slice(page);
    Some(Arc::new(PageEntry { hash: proto::page_hash(page), data }))
}

fn accept_loop(
    listener: TcpListener,
    requests: mpsc::Sender<SnapshotRequest>,
    stats: Arc<HostStats>,
    info: MachineInfo,
    options: HostOptions,
    blocks: Option<Arc<dyn BlockSource>>,
) {
    let mut next_id = 1;
    for conn in listener.incoming() {
        let socket = match conn {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                continue;
            }
        };
        let id = next_id;
        next_id += 1;
        let meters = Arc::new(SessionMeters { id, ..SessionMeters::default() });
        if let Ok(mut s) = stats.sessions.lock() {
            s.retain(|m| !m.closed.load(Ordering::Relaxed) || m.id + 64 > id);
            s.push(meters.clone());
        }
        let (requests, stats, info, blocks) = (requests.clone(), stats.clone(), info.clone(), blocks.clone());
        let peer = socket.peer_addr().ok();
        let spawned = std::thread::Builder::new().name(format!("stream-client-{id}")).spawn(move || {
            if let Err(reason) = session(socket, &requests, &stats, &info, options, meters.clone(), blocks) {
                stats.note_drop(format!("client {id} ({}): {reason}", peer.map_or("?".into(), |p: SocketAddr| p.to_string())));
            }
            meters.closed.store(true, Ordering::Relaxed);
        });
        if let Err(e) = spawned {
            tracing::warn!("cannot start a client thread: {e}");
        }
    }
}

/// One client: handshake, snapshot, then read requests while a writer thread sends.
fn session(
    socket: TcpStream,
    requests: &mpsc::Sender<SnapshotRequest>,
    stats: &HostStats,
    info: &MachineInfo,
    options: HostOptions,
    meters: Arc<SessionMeters>,
    blocks: Option<Arc<dyn BlockSource>>,
) -> Result<(), String> {
    let _ = socket.set_nodelay(true);
    if options.send_buffer > 0 {
        crate::uffd::set_send_buffer(&socket, options.send_buffer);
    }
    socket.set_read_timeout(Some(options.hello_timeout)).map_err(|e| e.to_string())?;
    socket.set_write_timeout(Some(options.write_timeout)).map_err(|e| e.to_string())?;
    let mut reader = socket.try_clone().map_err(|e| e.to_string())?;
    let mut decoder = Decoder::new();
    let mut buf = vec![0u8; 64 << 10];
    // Hello.
    let hello = loop {
        match decoder.next_message() {
            Ok(Some(m)) => break m,
            Ok(None) => {}
            Err(e) => return Err(refuse(&socket, format!("bad handshake: {e}"))),
        }
        match reader.read(&mut buf) {
            Ok(0) => return Err("closed before Hello".into()),
            Ok(n) => decoder.push(&buf[..n]),
            Err(e) => return Err(format!("no Hello: {e}")),
        }
    };
    match hello {
        Message::Hello { version } if version == proto::VERSION => {}
        Message::Hello { version } => {
            return Err(refuse(
                &socket,
                format!("client speaks protocol version {version}, this host speaks {}", proto::VERSION),
            ))
        }
        other => return Err(refuse(&socket, format!("expected Hello, got {}", other.name()))),
    }
    // Ask the VM thread for a snapshot (it answers between two slices).
    let (reply, answer) = mpsc::sync_channel(1);
    let shut = socket.try_clone().map_err(|e| e.to_string())?;
    requests
        .send(SnapshotRequest { reply, meters: meters.clone(), socket: shut })
        .map_err(|_| "the host is shutting down".to_string())?;
    stats.wake();
    let start = answer.recv_timeout(Duration::from_secs(30)).map_err(|_| "no snapshot from the VM thread".to_string())?;
    tracing::info!("client {}: snapshot at instruction {}", meters.id, start.icount);
    let pages = start.pages.clone();
    let sender = start.sender.clone();
    let writer_socket = socket.try_clone().map_err(|e| e.to_string())?;
    let wm = meters.clone();
    let winfo = info.clone();
    let wblocks = blocks.clone();
    let writer = std::thread::Builder::new()
        .name(format!("stream-writer-{}", meters.id))
        .spawn(move || writer_loop(writer_socket, &winfo, start, &wm, wblocks.as_deref()))
        .map_err(|e| e.to_string())?;
    drop(sender.clone());
    // Requests: no read timeout from here (a quiet replica is fine); garbage ends the session.
    let _ = reader.set_read_timeout(None);
    let result = loop {
        let msg = match decoder.next_message() {
            Ok(Some(m)) => m,
            Ok(None) => match reader.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    decoder.push(&buf[..n]);
                    continue;
                }
                Err(_) if meters.closed.load(Ordering::Relaxed) => break Ok(()),
                Err(e) => break Err(format!("read failed: {e}")),
            },
            Err(e) => break Err(format!("protocol error: {e}")),
        };
        match msg {
            Message::GetPages { pages: list } => {
                if let Some(bad) = list.iter().find(|&&p| p as usize >= pages.len()) {
                    break Err(format!("asked for page {bad}, RAM has {} pages", pages.len()));
                }
                match sender.try_send(Out::Pages(list)) {
                    Ok(()) => {}
                    Err(_) => break Err("dropped: too many requests queued".into()),
                }
            }
            Message::GetBlocks { blocks: list } => {
                let nblocks = info.disk_len.div_ceil(PAGE as u64);
                if let Some(bad) = list.iter().find(|&&b| b >= nblocks) {
                    break Err(format!("asked for block {bad}, the disk has {nblocks}"));
                }
                if sender.try_send(Out::Blocks(list)).is_err() {
                    break Err("dropped: too many requests queued".into());
                }
            }
            Message::Progress { icount } => meters.replica_icount.store(icount, Ordering::Relaxed),
            other => break Err(format!("unexpected {} from a client", other.name())),
        }
    };
    drop(sender);
    let _ = socket.shutdown(Shutdown::Both);
    meters.closed.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap_or_else(|_| Err("the writer thread panicked".into()));
    let _ = stats;
    // A writer that failed first (a client that stopped reading) is the reason.
    result.and(written)
}

/// Tell a client why it is refused (best effort) and close.
fn refuse(socket: &TcpStream, reason: String) -> String {
    let mut s = socket;
    let _ = s.write_all(&Message::Error { reason: reason.clone() }.to_bytes());
    let _ = s.shutdown(Shutdown::Both);
    reason
}

fn writer_loop(socket: TcpStream, info: &MachineInfo, start: Start, meters: &SessionMeters, blocks: Option<&dyn BlockSource>) -> Result<(), String> {
    let mut w = BufWriter::with_capacity(64 << 10, &socket);
    let r = write_session(&mut w, info, start, meters, blocks);
    let was_closed = meters.closed.swap(true, Ordering::Relaxed);
    drop(w);
    let _ = socket.shutdown(Shutdown::Both);
    match r {
        Err(e) if !was_closed => Err(format!("dropped: cannot write to it ({e}): it does not read")),
        _ => Ok(()),
    }
}

fn send(w: &mut impl Write, m: &Message, counter: &AtomicU64, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.clear();
    m.emit(buf);
    counter.fetch_add(buf.len() as u64, Ordering::Relaxed);
    w.write_all(buf)
}

fn write_session(
    w: &mut BufWriter<&TcpStream>,
    info: &MachineInfo,
    start: Start,
    meters: &SessionMeters,
    blocks: Option<&dyn BlockSource>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let other = &meters.other_bytes;
    send(w, &Message::Welcome { version: proto::VERSION, info: info.clone() }, other, &mut buf)?;
    send(w, &Message::State { icount: start.icount, state: start.state }, other, &mut buf)?;
    let hashes: Vec<Option<PageHash>> = start.pages.iter().map(|p| p.as_ref().map(|e| e.hash)).collect();
    let nonzero = u32::try_from(hashes.iter().flatten().count()).unwrap_or(u32::MAX);
    for m in proto::page_table(&hashes) {
        send(w, &m, other, &mut buf)?;
    }
    send(w, &Message::TableEnd { nonzero }, other, &mut buf)?;
    // The session's log: a header at the snapshot point. Its start hash is not sent (it would
    // cost a scan of RAM); the checkpoint that follows verifies the restored state instead.
    let header = Header { fingerprint: info.fingerprint, start_icount: start.icount, start_hash: [0; 32] };
    let mut log = Vec::new();
    let mut encoder = Encoder::new(&header, &mut log);
    w.flush()?;
    let zero = Box::new([0u8; PAGE]);
    loop {
        // Flush when the queue is empty, so a quiet stream still goes out at once.
        let out = match start.queue.try_recv() {
            Ok(o) => o,
            Err(mpsc::TryRecvError::Empty) => {
                w.flush()?;
                match start.queue.recv() {
                    Ok(o) => o,
                    Err(_) => return Ok(()),
                }
            }
            Err(mpsc::TryRecvError::Disconnected) => return Ok(()),
        };
        if meters.closed.load(Ordering::Relaxed) {
            return Ok(());
        }
        match out {
            Out::Batch(b) => {
                for r in &b.records {
                    encoder.emit(r, &mut log).map_err(std::io::Error::other)?;
                }
                if !log.is_empty() {
                    for chunk in log.chunks(proto::MAX_BODY - 16) {
                        send(w, &Message::Log { bytes: chunk.to_vec() }, &meters.log_bytes, &mut buf)?;
                    }
                    log.clear();
                }
                send(w, &Message::Horizon { icount: b.horizon, host_ms: b.host_ms }, &meters.log_bytes, &mut buf)?;
                if let Some((icount, hash)) = b.fb {
                    send(w, &Message::FbHash { icount, hash }, other, &mut buf)?;
                }
            }
            Out::Pages(list) => {
                for p in list {
                    let data = match start.pages.get(p as usize) {
                        Some(Some(e)) => e.data.clone(),
                        _ => zero.clone(),
                    };
                    send(w, &Message::Page { index: p, data }, &meters.page_bytes, &mut buf)?;
                    meters.pages_served.fetch_add(1, Ordering::Relaxed);
                }
            }
            Out::Blocks(list) => {
                for b in list {
                    let mut data = Box::new([0u8; PAGE]);
                    if let Some(src) = blocks {
                        src.read_block(b, &mut data)?;
                    }
                    send(w, &Message::Block { index: b, data }, &meters.block_bytes, &mut buf)?;
                }
            }
        }
    }
}

/// Listen on `addr` ("127.0.0.1:0" for any free port).
pub fn listen(addr: &str) -> Result<TcpListener, HostError> {
    TcpListener::bind(addr).map_err(|source| HostError::Listen { addr: addr.to_string(), source })
}

/// Instructions per slice of the host's VM loop (about 2 ms at 100 MIPS): the horizon and
/// snapshot requests are served between slices.
pub const SLICE: u64 = 200_000;

/// Run the host's VM: slices of [`SLICE`] instructions through `tap`, publishing after each,
/// until `limit`, `stop`, or the guest stops. `started` is the host clock's origin. Returns the
/// machine's exit (`Exit::Limit` for `limit` or `stop`).
pub fn run_vm<E: Environment>(
    machine: &mut Machine,
    tap: &mut Tap<E>,
    streamer: &mut Streamer,
    limit: InstructionCount,
    stop: &AtomicBool,
    started: std::time::Instant,
) -> doppel_machine::Exit {
    let ms = || u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    loop {
        let until = machine.icount().saturating_add(SLICE).min(streamer.next_stop()).min(limit);
        let exit = machine.run(tap, until);
        let records = tap.take_records();
        match exit {
            doppel_machine::Exit::Environment(e) if e.0.downcast_ref::<Yield>().is_some() => {
                streamer.after_slice(machine, records, ms());
                if stop.load(Ordering::Relaxed) {
                    return doppel_machine::Exit::Limit;
                }
            }
            doppel_machine::Exit::Limit => {
                streamer.after_slice(machine, records, ms());
                if machine.icount() >= limit || stop.load(Ordering::Relaxed) {
                    return doppel_machine::Exit::Limit;
                }
            }
            other => {
                streamer.finish(machine, records, ms());
                return other;
            }
        }
    }
}

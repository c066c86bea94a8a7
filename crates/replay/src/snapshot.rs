//! Whole-machine snapshots in a file, and the asynchronous snapshot of a running machine.
//!
//! # File layout
//!
//! ```text
//! header (16 bytes): magic "DOPPELSF" | version u16 LE | reserved u16 (0) | CRC-32 of the 12 bytes before, u32 LE
//! sections, in this order, each: kind u8 | payload length u64 LE | CRC-32 of the payload u32 LE | payload
//!   1 meta     postcard(SnapshotMeta): the machine's shape, instruction count, full state hash
//!   2 state    postcard(MachineState): hart, CSRs, devices; the disk overlay left out (section 4)
//!   3 ram      sparse: (page number u32 LE, 4096 bytes)*, ascending; all-zero pages omitted
//!   4 overlay  sparse: (overlay page number u64 LE, 4096 bytes)*, ascending: what the guest wrote to disk
//!   5 end      empty
//! ```
//!
//! Every length is checked against what the meta section allows before anything is allocated
//! (the state at most 64 MiB, RAM at most the meta's RAM size, the overlay at most the disk's
//! pages), every section's CRC is checked, and after the restore the machine's
//! [`Machine::state_hash`] must equal the one the meta recorded. A reader refuses every other
//! version ([`SnapshotError::Version`]); [`VERSION`] is bumped whenever any of this or any
//! `State` type of the machine changes shape.
//!
//! # Asynchronous snapshot
//!
//! [`AsyncSnapshot`] is the paper's snapshot of a running VM (RecRep §3.1): mark every page clean,
//! copy all of RAM while the machine keeps running, then copy again the pages dirtied meanwhile,
//! round after round, until at most [`AsyncOptions::threshold`] pages are dirty (default 2048) or
//! [`AsyncOptions::max_rounds`] rounds have run (default 30); only then stop the machine for the
//! final copy of the remaining dirty pages and of the hart and device state. The machine is
//! single-threaded and owns its RAM, so "while it runs" means interleaved: the caller alternates
//! [`AsyncSnapshot::step`] (copy up to N pages) with run slices on the same thread. The copy is
//! correct because every page written after the round's mark is dirty again and copied in a later
//! round or in the final stop. Dirty tracking is [`Machine::take_dirty`], which other users of
//! the dirty bitmap (display damage, migration) must not consume at the same time.

use std::io::{self, Read, Write};

use doppel_machine::devices::virtio::{DeviceKind, VirtioBackendState};
use doppel_machine::devices::{DevicesConfig, DiskBase, EnvDisk};
use doppel_machine::{persist, BootMode, Machine, MachineConfig, MachineError, MachineState, PAGE_SIZE};

use crate::short_hex;

/// Magic bytes opening a snapshot file.
pub const MAGIC: [u8; 8] = *b"DOPPELSF";
/// The snapshot file version this build writes and reads.
pub const VERSION: u16 = 1;
/// Largest state section (hart and devices without the overlay).
pub const MAX_STATE: u64 = 64 << 20;
/// Largest meta section.
pub const MAX_META: u64 = 64 << 10;
/// Largest guest RAM a snapshot file may describe.
pub const MAX_RAM: u64 = 64 << 30;

const PAGE: u64 = PAGE_SIZE as u64;

/// How the block device's base image is provided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DiskMode {
    /// No block device.
    None,
    /// *Snapshotted disk*: the machine reads a base image of `len` bytes (both sides hold it;
    /// remotely its blocks are fetched on demand), guest writes go to the copy-on-write overlay
    /// saved in the snapshot.
    Base { len: u64 },
    /// *Output-replayed disk*: reads of the base go through the environment and into the log; a
    /// replayer needs no image, only its size.
    Logged { len: u64 },
}

impl DiskMode {
    /// Size of the disk in bytes (0 without one).
    pub fn len(self) -> u64 {
        match self {
            DiskMode::None => 0,
            DiskMode::Base { len } | DiskMode::Logged { len } => len,
        }
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

/// Everything about a machine that is neither state nor boot image: what a restore needs to
/// rebuild its configuration, and the fingerprint a replay log must carry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MachineInfo {
    /// [`crate::fingerprint`] of the configuration the machine was built from.
    pub fingerprint: [u8; 32],
    pub ram_size: u64,
    pub framebuffer: Option<(u32, u32)>,
    pub instructions_per_tick: u64,
    pub bare_metal: bool,
    pub disk: DiskMode,
    pub net: bool,
    pub mac: [u8; 6],
    pub input: bool,
    pub rng: bool,
}

impl MachineInfo {
    /// The shape of `config` (call it before the config is consumed by [`Machine::new`]).
    pub fn of(config: &MachineConfig) -> MachineInfo {
        let disk = match &config.devices.disk {
            None => DiskMode::None,
            Some(d) if d.served_by_environment() => DiskMode::Logged { len: d.len() },
            Some(d) => DiskMode::Base { len: d.len() },
        };
        MachineInfo {
            fingerprint: crate::fingerprint(config),
            ram_size: config.ram_size as u64,
            framebuffer: config.framebuffer,
            instructions_per_tick: config.instructions_per_tick,
            bare_metal: config.boot == BootMode::BareMetal,
            disk,
            net: config.devices.net,
            mac: config.devices.mac,
            input: config.devices.input,
            rng: config.devices.rng,
        }
    }

    /// A configuration to restore into. `base` is the disk's base image for [`DiskMode::Base`]
    /// (its size must match); for [`DiskMode::Logged`] an [`EnvDisk`] is made.
    pub fn config(&self, base: Option<Box<dyn DiskBase>>) -> Result<MachineConfig, SnapshotError> {
        let disk: Option<Box<dyn DiskBase>> = match (self.disk, base) {
            (DiskMode::None, None) => None,
            (DiskMode::None, Some(_)) => return Err(SnapshotError::Disk("the snapshot has no disk, but a disk image was given".into())),
            (DiskMode::Logged { len }, _) => Some(Box::new(EnvDisk { len })),
            (DiskMode::Base { len }, None) => {
                return Err(SnapshotError::Disk(format!("the snapshot needs its {len}-byte base disk image")))
            }
            (DiskMode::Base { len }, Some(b)) if b.len() != len => {
                return Err(SnapshotError::Disk(format!(
                    "the snapshot was taken with a {len}-byte base disk image, the one given has {} bytes",
                    b.len()
                )))
            }
            (DiskMode::Base { .. }, Some(b)) => Some(b),
        };
        let ram_size = usize::try_from(self.ram_size).map_err(|_| SnapshotError::Invalid("RAM size does not fit this host".into()))?;
        Ok(MachineConfig {
            ram_size,
            kernel: Vec::new(),
            initrd: None,
            cmdline: String::new(),
            framebuffer: self.framebuffer,
            instructions_per_tick: self.instructions_per_tick,
            devices: DevicesConfig {
                disk,
                net: self.net,
                mac: self.mac,
                input: self.input,
                rng: self.rng,
                framebuffer: None,
            },
            boot: if self.bare_metal { BootMode::BareMetal } else { BootMode::Linux },
        })
    }
}

/// The meta section.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotMeta {
    pub machine: MachineInfo,
    /// Instruction count at the snapshot.
    pub icount: u64,
    /// [`Machine::state_hash`] at the snapshot (RAM included), checked after a restore.
    pub state_hash: [u8; 32],
}

/// Why a snapshot file could not be written, read or restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read or write the snapshot")]
    Io(#[from] io::Error),
    #[error("not a doppel snapshot file (bad magic)")]
    BadMagic,
    #[error("snapshot file version {found}, this build reads version {supported}")]
    Version { found: u16, supported: u16 },
    #[error("snapshot header checksum mismatch")]
    HeaderChecksum,
    #[error("snapshot truncated in the {section} section")]
    Truncated { section: &'static str },
    #[error("snapshot section {found} where the {expected} section belongs")]
    Section { expected: &'static str, found: u8 },
    #[error("snapshot {section} section declares {len} bytes, more than the {limit} allowed")]
    TooLarge { section: &'static str, len: u64, limit: u64 },
    #[error("snapshot {section} section checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum { section: &'static str, stored: u32, computed: u32 },
    #[error("snapshot {section} section is malformed: {reason}")]
    Malformed { section: &'static str, reason: String },
    #[error("snapshot is invalid: {0}")]
    Invalid(String),
    #[error("{0}")]
    Disk(String),
    #[error("the snapshot's state was refused")]
    Restore(#[from] MachineError),
    #[error("the restored machine's state hash {found} differs from the snapshot's {expected}")]
    StateHash { expected: String, found: String },
}

/// A machine's complete state: meta, hart and devices, RAM. The disk overlay is inside
/// `state` (the block device's state); the file stores it as its own sparse section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    pub state: MachineState,
    pub ram: Vec<u8>,
}

/// blake3 exactly as [`Machine::state_hash`] computes it, from saved parts.
fn state_hash_of(state: &MachineState, ram: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&persist::encode(&state.cpu));
    h.update(ram);
    h.update(&persist::encode(&state.devices));
    *h.finalize().as_bytes()
}

/// The block device's overlay inside a machine state, if it has one.
fn overlay_mut(state: &mut MachineState) -> Option<&mut Vec<(u64, Vec<u8>)>> {
    state.devices.virtio.iter_mut().find_map(|(kind, st)| match (kind, &mut st.backend) {
        (DeviceKind::Block, VirtioBackendState::Block(b)) => Some(&mut b.overlay),
        _ => None,
    })
}

impl Snapshot {
    /// Snapshot `machine` now (the machine does not run meanwhile). `info` from
    /// [`MachineInfo::of`] its configuration.
    pub fn take(machine: &Machine, info: &MachineInfo) -> Snapshot {
        let state = machine.save_state();
        let ram = machine.ram().as_slice().to_vec();
        Snapshot::from_parts(info, state, ram)
    }

    fn from_parts(info: &MachineInfo, state: MachineState, ram: Vec<u8>) -> Snapshot {
        let state_hash = state_hash_of(&state, &ram);
        Snapshot { meta: SnapshotMeta { machine: info.clone(), icount: state.cpu.icount, state_hash }, state, ram }
    }

    /// Equal to [`Machine::state_hash`] of the machine snapshotted (and of the restored one).
    pub fn state_hash(&self) -> [u8; 32] {
        self.meta.state_hash
    }

    /// Rebuild the machine. `base`: the disk's base image in [`DiskMode::Base`]. The restored
    /// machine's state hash is checked against the snapshot's.
    pub fn restore(&self, base: Option<Box<dyn DiskBase>>) -> Result<Machine, SnapshotError> {
        let config = self.meta.machine.config(base)?;
        let machine = Machine::from_state(config, &self.state, &self.ram)?;
        let found = machine.state_hash();
        if found != self.meta.state_hash {
            return Err(SnapshotError::StateHash { expected: short_hex(&self.meta.state_hash), found: short_hex(&found) });
        }
        Ok(machine)
    }

    /// Write the snapshot file. Returns the bytes written.
    pub fn write_to<W: Write>(&self, out: W) -> Result<u64, SnapshotError> {
        let mut out = CountingWriter { inner: out, count: 0 };
        let mut header = Vec::with_capacity(16);
        header.extend_from_slice(&MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&0u16.to_le_bytes());
        header.extend_from_slice(&crc32fast::hash(&header).to_le_bytes());
        out.write_all(&header)?;
        write_section(&mut out, 1, &persist::encode(&self.meta))?;
        let mut state = self.state.clone();
        let overlay = overlay_mut(&mut state).map(std::mem::take).unwrap_or_default();
        write_section(&mut out, 2, &persist::encode(&state))?;
        let mut ram = Vec::new();
        for (n, page) in (0u32..).zip(self.ram.chunks(PAGE_SIZE)) {
            if page.iter().any(|&b| b != 0) {
                ram.extend_from_slice(&n.to_le_bytes());
                ram.extend_from_slice(page);
            }
        }
        write_section(&mut out, 3, &ram)?;
        drop(ram);
        let mut disk = Vec::with_capacity(overlay.len() * (8 + PAGE_SIZE));
        for (n, page) in &overlay {
            disk.extend_from_slice(&n.to_le_bytes());
            disk.extend_from_slice(page);
        }
        write_section(&mut out, 4, &disk)?;
        write_section(&mut out, 5, &[])?;
        out.flush()?;
        Ok(out.count)
    }

    /// Read and check a snapshot file (see the module docs for every check), for a machine of
    /// up to [`MAX_RAM`] bytes of RAM.
    pub fn read_from<R: Read>(input: R) -> Result<Snapshot, SnapshotError> {
        Snapshot::read_from_limited(input, MAX_RAM)
    }

    /// [`Snapshot::read_from`], refusing a machine with more than `max_ram` bytes of RAM before
    /// allocating it (a reader that knows what it can afford; the fuzz target).
    pub fn read_from_limited<R: Read>(mut input: R, max_ram: u64) -> Result<Snapshot, SnapshotError> {
        let mut header = [0u8; 16];
        read_exact(&mut input, &mut header, "header")?;
        if header[..8] != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let found = u16::from_le_bytes([header[8], header[9]]);
        if found != VERSION {
            return Err(SnapshotError::Version { found, supported: VERSION });
        }
        if crc32fast::hash(&header[..12]).to_le_bytes() != header[12..16] {
            return Err(SnapshotError::HeaderChecksum);
        }
        let meta_bytes = read_section(&mut input, 1, "meta", MAX_META)?;
        let meta: SnapshotMeta = persist::decode(&meta_bytes)
            .map_err(|e| SnapshotError::Malformed { section: "meta", reason: e.to_string() })?;
        let ram_size = usize::try_from(meta.machine.ram_size)
            .ok()
            .filter(|s| *s > 0 && s.is_multiple_of(PAGE_SIZE) && *s as u64 <= max_ram.min(MAX_RAM))
            .ok_or_else(|| {
                SnapshotError::Invalid(format!(
                    "RAM size {} is not a multiple of 4096 up to {} bytes",
                    meta.machine.ram_size,
                    max_ram.min(MAX_RAM)
                ))
            })?;
        let state_bytes = read_section(&mut input, 2, "state", MAX_STATE)?;
        let mut state: MachineState = persist::decode(&state_bytes)
            .map_err(|e| SnapshotError::Malformed { section: "state", reason: e.to_string() })?;
        drop(state_bytes);
        if state.cpu.icount != meta.icount {
            return Err(SnapshotError::Invalid(format!(
                "the meta says instruction {}, the hart state {}",
                meta.icount, state.cpu.icount
            )));
        }
        let pages = ram_size / PAGE_SIZE;
        let ram_bytes = read_section(&mut input, 3, "ram", pages as u64 * (4 + PAGE))?;
        let mut ram = vec![0u8; ram_size];
        let mut last: Option<u64> = None;
        for entry in sparse_entries(&ram_bytes, 4, "ram")? {
            let (n, page) = entry;
            if n >= pages as u64 || last.is_some_and(|l| l >= n) {
                return Err(SnapshotError::Malformed { section: "ram", reason: format!("page {n} is out of range or order") });
            }
            last = Some(n);
            let at = usize::try_from(n).unwrap_or(usize::MAX) * PAGE_SIZE;
            ram[at..at + PAGE_SIZE].copy_from_slice(page);
        }
        drop(ram_bytes);
        let disk_pages = meta.machine.disk.len().div_ceil(PAGE);
        let overlay_bytes = read_section(&mut input, 4, "overlay", disk_pages.saturating_mul(8 + PAGE))?;
        let mut overlay = Vec::new();
        let mut last: Option<u64> = None;
        for (n, page) in sparse_entries(&overlay_bytes, 8, "overlay")? {
            if n >= disk_pages || last.is_some_and(|l| l >= n) {
                return Err(SnapshotError::Malformed { section: "overlay", reason: format!("page {n} is out of range or order") });
            }
            last = Some(n);
            overlay.push((n, page.to_vec()));
        }
        drop(overlay_bytes);
        match overlay_mut(&mut state) {
            Some(slot) => *slot = overlay,
            None if overlay.is_empty() => {}
            None => return Err(SnapshotError::Invalid("a disk overlay but no block device".into())),
        }
        read_section(&mut input, 5, "end", 0)?;
        let snap = Snapshot { meta, state, ram };
        let found = state_hash_of(&snap.state, &snap.ram);
        if found != snap.meta.state_hash {
            return Err(SnapshotError::StateHash { expected: short_hex(&snap.meta.state_hash), found: short_hex(&found) });
        }
        Ok(snap)
    }
}

struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn write_section<W: Write>(out: &mut W, kind: u8, payload: &[u8]) -> io::Result<()> {
    out.write_all(&[kind])?;
    out.write_all(&(payload.len() as u64).to_le_bytes())?;
    out.write_all(&crc32fast::hash(payload).to_le_bytes())?;
    out.write_all(payload)
}

fn read_exact<R: Read>(input: &mut R, buf: &mut [u8], section: &'static str) -> Result<(), SnapshotError> {
    input.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => SnapshotError::Truncated { section },
        _ => SnapshotError::Io(e),
    })
}

fn read_section<R: Read>(input: &mut R, kind: u8, section: &'static str, limit: u64) -> Result<Vec<u8>, SnapshotError> {
    let mut head = [0u8; 13];
    read_exact(input, &mut head, section)?;
    if head[0] != kind {
        return Err(SnapshotError::Section { expected: section, found: head[0] });
    }
    let len = u64::from_le_bytes(head[1..9].try_into().unwrap_or_default());
    if len > limit {
        return Err(SnapshotError::TooLarge { section, len, limit });
    }
    let stored = u32::from_le_bytes(head[9..13].try_into().unwrap_or_default());
    let mut payload = vec![0u8; usize::try_from(len).map_err(|_| SnapshotError::TooLarge { section, len, limit })?];
    read_exact(input, &mut payload, section)?;
    let computed = crc32fast::hash(&payload);
    if computed != stored {
        return Err(SnapshotError::Checksum { section, stored, computed });
    }
    Ok(payload)
}

/// Split a sparse section into (index, page) entries with `index_len`-byte little-endian indices.
fn sparse_entries<'a>(bytes: &'a [u8], index_len: usize, section: &'static str) -> Result<Vec<(u64, &'a [u8])>, SnapshotError> {
    let entry = index_len + PAGE_SIZE;
    if !bytes.len().is_multiple_of(entry) {
        return Err(SnapshotError::Malformed { section, reason: format!("{} bytes is not a whole number of pages", bytes.len()) });
    }
    Ok(bytes
        .chunks(entry)
        .map(|c| {
            let mut n = [0u8; 8];
            n[..index_len].copy_from_slice(&c[..index_len]);
            (u64::from_le_bytes(n), &c[index_len..])
        })
        .collect())
}

/// Parameters of [`AsyncSnapshot`] (the paper's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsyncOptions {
    /// Stop the machine for the final copy once at most this many pages are dirty.
    pub threshold: usize,
    /// Give up converging after this many rounds and stop for the final copy anyway.
    pub max_rounds: u32,
}

impl Default for AsyncOptions {
    fn default() -> Self {
        AsyncOptions { threshold: 2048, max_rounds: 30 }
    }
}

/// What one round copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// Pages copied in the round.
    pub pages: usize,
    /// Instructions the machine ran during the round.
    pub instructions: u64,
}

/// What [`AsyncSnapshot::step`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// More to copy; run the machine a while and step again.
    Copying,
    /// Converged (or out of rounds): stop the machine and call [`AsyncSnapshot::finish`].
    Ready,
}

/// The asynchronous snapshot (see the module docs).
#[derive(Debug)]
pub struct AsyncSnapshot {
    info: MachineInfo,
    options: AsyncOptions,
    image: Vec<u8>,
    /// Pages still to copy in this round.
    todo: Vec<usize>,
    copied: usize,
    round_start_icount: u64,
    rounds: Vec<Round>,
}

/// Page numbers set in a dirty bitmap.
fn set_pages(bitmap: &[u64]) -> Vec<usize> {
    let mut pages = Vec::new();
    for (w, &word) in bitmap.iter().enumerate() {
        let mut bits = word;
        while bits != 0 {
            let b = bits.trailing_zeros() as usize;
            pages.push(w * 64 + b);
            bits &= bits - 1;
        }
    }
    pages
}

impl AsyncSnapshot {
    /// Start: mark every page clean; round 1 copies all of RAM.
    pub fn begin(machine: &mut Machine, info: &MachineInfo, options: AsyncOptions) -> AsyncSnapshot {
        machine.take_dirty();
        let pages = machine.ram().pages();
        AsyncSnapshot {
            info: info.clone(),
            options,
            image: vec![0u8; machine.ram().size()],
            // Copied from the top down, so `pop` walks RAM upwards.
            todo: (0..pages).rev().collect(),
            copied: 0,
            round_start_icount: machine.icount(),
            rounds: Vec::new(),
        }
    }

    /// Rounds finished so far.
    pub fn rounds(&self) -> &[Round] {
        &self.rounds
    }

    /// Copy up to `pages` pages of this round (the machine is between slices). At the end of a
    /// round, decide: another round over the pages dirtied meanwhile, or [`Step::Ready`].
    pub fn step(&mut self, machine: &mut Machine, pages: usize) -> Step {
        let ram = machine.ram().as_slice();
        for _ in 0..pages {
            let Some(p) = self.todo.pop() else { break };
            let at = p * PAGE_SIZE;
            self.image[at..at + PAGE_SIZE].copy_from_slice(&ram[at..at + PAGE_SIZE]);
            self.copied += 1;
        }
        if !self.todo.is_empty() {
            return Step::Copying;
        }
        self.rounds.push(Round { pages: self.copied, instructions: machine.icount() - self.round_start_icount });
        self.copied = 0;
        self.round_start_icount = machine.icount();
        let dirty = machine.ram().dirty_count();
        if dirty <= self.options.threshold || self.rounds.len() >= self.options.max_rounds as usize {
            return Step::Ready;
        }
        let mut next = set_pages(&machine.take_dirty());
        next.reverse();
        self.todo = next;
        Step::Copying
    }

    /// The final copy, with the machine stopped: the pages still dirty, and the hart and device
    /// state. Returns the snapshot, equal to [`Snapshot::take`] at this instruction count, and the
    /// number of pages the final copy took.
    pub fn finish(self, machine: &mut Machine) -> (Snapshot, usize) {
        let (frozen, pages) = self.freeze(machine);
        (frozen.seal(), pages)
    }

    /// The part of [`AsyncSnapshot::finish`] that needs the machine stopped: the final copy of the
    /// dirty pages and of the hart and device state. The machine may run on at once;
    /// [`Frozen::seal`] (hashing the copy for the snapshot's state hash, the slow part) can run
    /// later or on another thread.
    pub fn freeze(mut self, machine: &mut Machine) -> (Frozen, usize) {
        // Pages left in an unfinished round must be copied too.
        let mut pages = std::mem::take(&mut self.todo);
        pages.extend(set_pages(&machine.take_dirty()));
        let ram = machine.ram().as_slice();
        for &p in &pages {
            let at = p * PAGE_SIZE;
            self.image[at..at + PAGE_SIZE].copy_from_slice(&ram[at..at + PAGE_SIZE]);
        }
        let state = machine.save_state();
        (Frozen { info: self.info, state, image: self.image }, pages.len())
    }
}

/// A finished copy of a machine's state, not yet hashed ([`AsyncSnapshot::freeze`]).
#[derive(Debug)]
pub struct Frozen {
    info: MachineInfo,
    state: MachineState,
    image: Vec<u8>,
}

impl Frozen {
    /// Hash the copy and make the snapshot (equal to [`Snapshot::take`] at the frozen instruction).
    pub fn seal(self) -> Snapshot {
        Snapshot::from_parts(&self.info, self.state, self.image)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_pages_lists_every_bit() {
        assert_eq!(set_pages(&[0b1010, 0, 1 << 63]), vec![1, 3, 191]);
        assert!(set_pages(&[0, 0]).is_empty());
    }

    fn bare(ram: usize) -> (Machine, MachineInfo) {
        // A bare-metal machine spinning in a loop that stores to a counter: `j` back to itself
        // after an `sd`. Encodings: addi t0,t0,1 ; sd t0,256(zero)?? RAM starts at 0x8000_0000, so
        // store relative to a register loaded with the RAM base.
        let code: [u32; 4] = [
            0x0000_0317, // auipc t1, 0        (t1 = RAM base)
            0x0012_8293, // addi t0, t0, 1
            0x1053_3023, // sd t0, 0x100(t1)
            0xff9f_f06f, // j -8 (back to addi)
        ];
        let kernel: Vec<u8> = code.iter().flat_map(|w| w.to_le_bytes()).collect();
        let config = MachineConfig { ram_size: ram, kernel, boot: BootMode::BareMetal, framebuffer: None, ..MachineConfig::default() };
        let info = MachineInfo::of(&config);
        (Machine::new(config).unwrap(), info)
    }

    #[test]
    fn a_snapshot_file_round_trips_and_every_corruption_is_named() {
        let (mut m, info) = bare(1 << 20);
        m.run(&mut doppel_machine::NullEnvironment::default(), 10_000);
        let snap = Snapshot::take(&m, &info);
        let mut file = Vec::new();
        snap.write_to(&mut file).unwrap();
        // Sparse: two non-zero pages (code and counter share page 0), far below 1 MiB.
        assert!(file.len() < 3 * PAGE_SIZE, "{} bytes", file.len());
        let back = Snapshot::read_from(file.as_slice()).unwrap();
        assert_eq!(back, snap);
        let restored = back.restore(None).unwrap();
        assert_eq!(restored.state_hash(), m.state_hash());
        // Every cut is truncation, never a panic.
        for cut in [0, 5, 16, 30, file.len() / 2, file.len() - 1] {
            let e = Snapshot::read_from(&file[..cut]).unwrap_err();
            assert!(matches!(e, SnapshotError::Truncated { .. }), "cut {cut}: {e}");
        }
        // Flipped bits: header, meta, ram page, end.
        for at in [3, 9, 13, 40, file.len() - 20, file.len() - 5] {
            let mut bad = file.clone();
            bad[at] ^= 0x10;
            assert!(Snapshot::read_from(bad.as_slice()).is_err(), "flip at byte {at} unnoticed");
        }
        let mut other = file.clone();
        other[8] = 7;
        assert!(matches!(Snapshot::read_from(other.as_slice()), Err(SnapshotError::Version { found: 7, .. })));
        // A section declaring more RAM than the meta allows is refused before allocating.
        let mut huge = file.clone();
        let meta_len = usize::try_from(u64::from_le_bytes(huge[17..25].try_into().unwrap())).unwrap();
        let state_at = 16 + 13 + meta_len;
        let state_len = usize::try_from(u64::from_le_bytes(huge[state_at + 1..state_at + 9].try_into().unwrap())).unwrap();
        let ram_at = state_at + 13 + state_len;
        huge[ram_at + 1..ram_at + 9].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(Snapshot::read_from(huge.as_slice()), Err(SnapshotError::TooLarge { section: "ram", .. })));
    }

    #[test]
    fn a_reader_with_a_ram_limit_refuses_a_bigger_machine_before_allocating() {
        let (mut m, info) = bare(1 << 20);
        m.run(&mut doppel_machine::NullEnvironment::default(), 1000);
        let mut file = Vec::new();
        Snapshot::take(&m, &info).write_to(&mut file).unwrap();
        assert!(Snapshot::read_from_limited(file.as_slice(), 1 << 20).is_ok());
        let e = Snapshot::read_from_limited(file.as_slice(), 512 << 10).unwrap_err();
        assert!(matches!(&e, SnapshotError::Invalid(m) if m.contains("1048576")), "{e}");
    }

    /// The fuzz target's seed corpus holds a valid snapshot file of this version (regenerate it
    /// with `DOPPEL_REGEN_SEEDS=1 cargo test -p doppel-replay --lib seed` after a format change).
    #[test]
    fn the_fuzz_seed_snapshot_is_a_valid_file_of_this_version() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/snapshot_parse");
        if std::env::var_os("DOPPEL_REGEN_SEEDS").is_some() {
            let (mut m, info) = bare(64 << 10);
            m.run(&mut doppel_machine::NullEnvironment::default(), 1000);
            let mut file = Vec::new();
            Snapshot::take(&m, &info).write_to(&mut file).unwrap();
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("bare"), &file).unwrap();
            std::fs::write(dir.join("truncated"), &file[..file.len() / 2]).unwrap();
            std::fs::write(dir.join("header-only"), &file[..16]).unwrap();
        }
        let file = std::fs::read(dir.join("bare")).unwrap();
        let snap = Snapshot::read_from(file.as_slice()).unwrap();
        assert_eq!(snap.restore(None).unwrap().state_hash(), snap.state_hash());
        assert!(Snapshot::read_from(std::fs::read(dir.join("truncated")).unwrap().as_slice()).is_err());
    }

    #[test]
    fn an_async_snapshot_of_a_running_machine_equals_a_stopped_one_at_the_same_instruction() {
        let (mut m, info) = bare(1 << 20);
        let mut env = doppel_machine::NullEnvironment::default();
        m.run(&mut env, 1000);
        let mut snap = AsyncSnapshot::begin(&mut m, &info, AsyncOptions { threshold: 0, max_rounds: 5 });
        // Copy 16 pages per 500-instruction slice; the loop keeps dirtying its counter page.
        while snap.step(&mut m, 16) == Step::Copying {
            m.run(&mut env, m.icount() + 500);
        }
        let rounds = snap.rounds().to_vec();
        assert_eq!(rounds.len(), 5, "threshold 0 never converges with a running store loop");
        assert_eq!(rounds[0].pages, 256);
        assert!(rounds[1..].iter().all(|r| r.pages == 1), "{rounds:?}");
        let (async_snap, final_pages) = snap.finish(&mut m);
        assert_eq!(final_pages, 1);
        assert_eq!(async_snap, Snapshot::take(&m, &info));
        assert_eq!(async_snap.state_hash(), m.state_hash());
    }
}

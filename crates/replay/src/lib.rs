//! Record/replay of the deterministic machine.
//!
//! Every run of [`doppel_machine::Machine`] is a pure function of its configuration, its images
//! and the answers its [`Environment`](doppel_machine::Environment) gives. [`Recorder`] wraps any
//! environment and writes every answer to a replay log ([`wire`]); [`Replayer`] reads the log and
//! gives the same answers at the same instruction counts, so the replayed machine retires the same
//! instructions and reaches the same states. Periodic checkpoints (a hash of hart and device state,
//! optionally of RAM too) catch a divergence at the first checkpoint after it.
//!
//! Both sides drive the machine through their own `run` method, which slices the run at
//! checkpoints: [`Recorder::run`] writes one every [`RecordOptions::checkpoint_period`]
//! instructions, [`Replayer::run`] stops at each recorded one and verifies it.

pub mod live;
pub mod record;
pub mod replay;
pub mod snapshot;
pub mod wire;

pub use live::{LiveReplayer, LiveStop};
pub use record::{KindStats, LogStats, RecordError, RecordOptions, Recorder};
pub use replay::{ReplayError, ReplayStop, Replayer};
pub use snapshot::{AsyncOptions, AsyncSnapshot, DiskMode, MachineInfo, Snapshot, SnapshotError};

use doppel_machine::{persist, Machine, MachineConfig};

/// Identifies a machine configuration: blake3 over the kernel, initrd, command line, RAM size,
/// framebuffer geometry, instructions per tick, boot mode, and the devices (network, input,
/// entropy, MAC, and the disk: its size and whether the environment serves it). A log records the fingerprint of
/// the machine it was made on; replaying it on another is refused up front.
pub fn fingerprint(config: &MachineConfig) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"doppel-replay fingerprint v2");
    let mut field = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(&config.kernel);
    field(config.initrd.as_deref().unwrap_or(&[]));
    field(&[u8::from(config.initrd.is_some())]);
    field(config.cmdline.as_bytes());
    field(&(config.ram_size as u64).to_le_bytes());
    let (w, fh) = config.framebuffer.unwrap_or((0, 0));
    field(&[u8::from(config.framebuffer.is_some())]);
    field(&w.to_le_bytes());
    field(&fh.to_le_bytes());
    field(&config.instructions_per_tick.to_le_bytes());
    field(format!("{:?}", config.boot).as_bytes());
    let d = &config.devices;
    field(&[u8::from(d.net), u8::from(d.input), u8::from(d.rng)]);
    field(&d.mac);
    let disk = d.disk.as_ref().map_or((0u8, 0), |b| (1 + u8::from(b.served_by_environment()), b.len()));
    field(&[disk.0]);
    field(&disk.1.to_le_bytes());
    *h.finalize().as_bytes()
}

/// The cheap checkpoint hash: blake3 over the encoded hart and device state (registers, CSRs,
/// privilege, instruction count, timers, device registers and queues), not RAM. Microseconds,
/// where [`Machine::state_hash`] reads all of RAM.
pub fn checkpoint_hash(machine: &Machine) -> [u8; 32] {
    *blake3::hash(&persist::encode(&machine.save_state())).as_bytes()
}

/// Lower-case hex of a hash prefix, for messages.
pub(crate) fn short_hex(hash: &[u8; 32]) -> String {
    hash[..8].iter().map(|b| format!("{b:02x}")).collect()
}

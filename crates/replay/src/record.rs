//! The recording environment.

use std::io::Write;

use doppel_machine::{
    EnvError, Environment, Exit, IdleState, InputEvent, InstructionCount, Machine, Output, Ticks,
};

use crate::wire::{Encoder, Header, Record, WireError};
use crate::checkpoint_hash;

/// How a recording is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordOptions {
    /// Instructions between checkpoints (at multiples of this count). 0 turns them off.
    pub checkpoint_period: u64,
    /// Every `full_every`-th checkpoint also carries the full state hash (RAM included). 0: never.
    pub full_every: u64,
}

impl Default for RecordOptions {
    fn default() -> Self {
        RecordOptions { checkpoint_period: 100_000_000, full_every: 10 }
    }
}

/// Why a recording failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot write the replay log")]
    Io(#[from] std::io::Error),
    #[error("cannot encode a record")]
    Wire(#[from] WireError),
    #[error("the recorded run stopped at instruction {icount}: {source}")]
    Environment { icount: InstructionCount, source: EnvError },
}

/// Wraps an environment `E`, forwards every call to it, and writes every answer to `sink` as a
/// replay log. Write errors are kept and reported by the next [`Recorder::run`],
/// [`Recorder::checkpoint`] or [`Recorder::finish`] (the environment calls cannot fail on them).
pub struct Recorder<E, W: Write> {
    inner: E,
    sink: W,
    encoder: Encoder,
    buf: Vec<u8>,
    options: RecordOptions,
    checkpoints: u64,
    last_checkpoint: Option<InstructionCount>,
    written: u64,
    error: Option<RecordError>,
    stats: LogStats,
}

/// Count and encoded bytes of one kind of record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindStats {
    pub records: u64,
    pub bytes: u64,
}

/// What a log is made of: records and bytes by kind (the header not included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    pub events: KindStats,
    pub warps: KindStats,
    pub entropy: KindStats,
    pub disk_reads: KindStats,
    pub checkpoints: KindStats,
}

impl LogStats {
    /// Count `record`, which took `bytes` bytes on the wire.
    pub fn add(&mut self, record: &Record, bytes: u64) {
        let k = match record {
            Record::Event { .. } => &mut self.events,
            Record::Warp { .. } => &mut self.warps,
            Record::Entropy { .. } => &mut self.entropy,
            Record::DiskRead { .. } => &mut self.disk_reads,
            Record::Checkpoint { .. } | Record::End { .. } => &mut self.checkpoints,
        };
        k.records += 1;
        k.bytes += bytes;
    }

    /// Bytes of all records.
    pub fn total_bytes(&self) -> u64 {
        [self.events, self.warps, self.entropy, self.disk_reads, self.checkpoints].iter().map(|k| k.bytes).sum()
    }
}

impl<E: Environment, W: Write> Recorder<E, W> {
    /// Start a log for `machine` (`config_fingerprint` from [`crate::fingerprint`] of its config) (built from `config`, possibly restored from a snapshot) in its
    /// current state; the header carries the config fingerprint and the full state hash.
    pub fn new(
        inner: E,
        sink: W,
        machine: &Machine,
        config_fingerprint: [u8; 32],
        options: RecordOptions,
    ) -> Result<Self, RecordError> {
        let header = Header {
            fingerprint: config_fingerprint,
            start_icount: machine.icount(),
            start_hash: machine.state_hash(),
        };
        Self::with_header(inner, sink, &header, options)
    }

    /// Start a log with a given header: for a machine whose state hash is already known (from
    /// the snapshot it was just taken in, [`crate::Snapshot::state_hash`]), which saves hashing
    /// all of RAM again. The header must describe the machine as it is now.
    pub fn with_header(inner: E, sink: W, header: &Header, options: RecordOptions) -> Result<Self, RecordError> {
        let mut buf = Vec::new();
        let encoder = Encoder::new(header, &mut buf);
        let mut r = Recorder { inner, sink, encoder, buf, options, checkpoints: 0, last_checkpoint: None, written: 0, error: None, stats: LogStats::default() };
        r.flush()?;
        Ok(r)
    }

    /// The wrapped environment.
    pub fn inner(&self) -> &E {
        &self.inner
    }

    pub fn inner_mut(&mut self) -> &mut E {
        &mut self.inner
    }

    /// Bytes of log written so far (including what is still buffered).
    pub fn log_len(&self) -> u64 {
        self.written + self.buf.len() as u64
    }

    fn emit(&mut self, record: &Record) {
        if self.error.is_none() {
            let before = self.buf.len();
            match self.encoder.emit(record, &mut self.buf) {
                Ok(()) => self.stats.add(record, (self.buf.len() - before) as u64),
                Err(e) => self.error = Some(e.into()),
            }
        }
    }

    /// Records and bytes written so far, by kind.
    pub fn stats(&self) -> &LogStats {
        &self.stats
    }

    fn take_error(&mut self) -> Result<(), RecordError> {
        self.error.take().map_or(Ok(()), Err)
    }

    /// Write the buffered records to the sink and flush it (for a live stream, call it often).
    pub fn flush(&mut self) -> Result<(), RecordError> {
        self.take_error()?;
        self.sink.write_all(&self.buf)?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        self.sink.flush()?;
        Ok(())
    }

    /// Write a checkpoint of `machine` at its current instruction count.
    pub fn checkpoint(&mut self, machine: &Machine) -> Result<(), RecordError> {
        self.checkpoints += 1;
        self.last_checkpoint = Some(machine.icount());
        let full = (self.options.full_every != 0 && self.checkpoints.is_multiple_of(self.options.full_every))
            .then(|| machine.state_hash());
        self.emit(&Record::Checkpoint { icount: machine.icount(), hash: checkpoint_hash(machine), full });
        self.take_error()
    }

    /// Run `machine` until `until` (or a power-off, reset or environment error), writing a
    /// checkpoint at every multiple of the checkpoint period on the way. The log is flushed
    /// before returning.
    pub fn run(&mut self, machine: &mut Machine, until: InstructionCount) -> Result<Exit, RecordError> {
        loop {
            let icount = machine.icount();
            if icount >= until {
                self.flush()?;
                return Ok(Exit::Limit);
            }
            let period = self.options.checkpoint_period;
            let stop = match icount.checked_div(period) {
                Some(q) => until.min((q + 1).saturating_mul(period)),
                None => until,
            };
            let exit = machine.run(self, stop);
            self.take_error()?;
            match exit {
                Exit::Limit => {
                    if period != 0 && machine.icount().is_multiple_of(period) {
                        self.checkpoint(machine)?;
                    }
                }
                other => {
                    self.flush()?;
                    return Ok(other);
                }
            }
        }
    }

    /// End the log at `machine`'s instruction count (with a last checkpoint), flush it and return
    /// the wrapped environment and the sink.
    pub fn finish(mut self, machine: &Machine) -> Result<(E, W), RecordError> {
        let icount = machine.icount();
        if self.last_checkpoint != Some(icount) {
            self.checkpoint(machine)?;
        }
        self.emit(&Record::End { icount });
        self.flush()?;
        Ok((self.inner, self.sink))
    }
}

impl<E: Environment, W: Write> Environment for Recorder<E, W> {
    fn poll(&mut self, icount: InstructionCount) -> Result<Option<InputEvent>, EnvError> {
        let event = self.inner.poll(icount)?;
        if let Some(event) = &event {
            self.emit(&Record::Event { icount, event: event.clone() });
        }
        Ok(event)
    }

    fn next_event_at(&self) -> Option<InstructionCount> {
        self.inner.next_event_at()
    }

    fn idle(&mut self, state: IdleState) -> Result<Ticks, EnvError> {
        let ticks = self.inner.idle(state)?;
        self.emit(&Record::Warp { icount: state.icount, ticks });
        Ok(ticks)
    }

    fn yield_after_idle(&mut self) -> bool {
        self.inner.yield_after_idle()
    }

    fn entropy(&mut self, icount: InstructionCount, buf: &mut [u8]) {
        self.inner.entropy(icount, buf);
        self.emit(&Record::Entropy { icount, bytes: buf.to_vec() });
    }

    fn output(&mut self, icount: InstructionCount, output: Output<'_>) {
        self.inner.output(icount, output);
    }

    fn disk_read(&mut self, icount: InstructionCount, offset: u64, buf: &mut [u8]) -> Result<(), EnvError> {
        self.inner.disk_read(icount, offset, buf)?;
        self.emit(&Record::DiskRead { icount, offset, bytes: buf.to_vec() });
        Ok(())
    }
}

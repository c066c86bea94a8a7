//! The replaying environment.
//!
//! [`Replayer`] reads a log from a [`Read`] source and answers every environment call as the log
//! says. It always holds the next record decoded, and [`Environment::next_event_at`] returns that
//! record's instruction count, so the machine ends its slice exactly there and the record is
//! applied (event), consumed (warp, entropy) or checked (checkpoint) at the right instruction.
//!
//! A live source may have no data yet: its `read` returns [`std::io::ErrorKind::WouldBlock`].
//! Then [`Replayer::run`] returns [`ReplayStop::Starved`] without advancing the machine past
//! anything the log has not settled; call it again when more data may have arrived. (Only an
//! entropy request in the middle of an instruction cannot stop: it waits, polling the source.)

use std::io::{ErrorKind, Read};

use doppel_machine::{
    EnvError, Environment, Exit, IdleState, InputEvent, InstructionCount, Machine, Output, Ticks,
};

use crate::wire::{Decoder, Header, Record, WireError};
use crate::{checkpoint_hash, short_hex};

/// Why [`Replayer::run`] returned without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayStop {
    /// Reached the requested instruction count.
    Limit,
    /// Reached the End record of the log; the machine is where the recording ended.
    End,
    /// The live source has no more data yet; call `run` again later.
    Starved,
    /// The guest powered off with this code (as it did when recorded).
    PowerOff(u32),
    /// The guest asked for a reset.
    Reset,
}

/// Why a replay cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot read the replay log")]
    Io(#[from] std::io::Error),
    #[error("the replay log is invalid")]
    Wire(#[from] WireError),
    #[error("the replay log's header has not arrived")]
    NoHeader,
    #[error("the replay log was recorded on another machine configuration (log fingerprint {log}, this machine {machine})")]
    Config { log: String, machine: String },
    #[error("the replay log starts at instruction {log}, the machine is at instruction {machine}")]
    StartIcount { log: InstructionCount, machine: InstructionCount },
    #[error("the replay log starts from another state at instruction {icount} (log state hash {log}, this machine {machine})")]
    StartState { icount: InstructionCount, log: String, machine: String },
    #[error("divergence at instruction {icount}: the log has {expected}, but {found}")]
    Divergence { icount: InstructionCount, expected: String, found: String },
    #[error("divergence detected at the checkpoint at instruction {icount}: {what} hash is {found}, the log recorded {expected}")]
    Checkpoint { icount: InstructionCount, what: &'static str, expected: String, found: String },
    #[error("the machine stopped at instruction {icount}")]
    Environment { icount: InstructionCount, source: EnvError },
}

/// Why the replayer refused a `poll`/`idle` call (the machine then returns to [`Replayer::run`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Checkpoint,
    End,
    Starved,
}

/// Answers the machine's environment calls from a replay log. See the module docs.
pub struct Replayer<S> {
    source: S,
    decoder: Decoder,
    header: Header,
    next: Option<Record>,
    eof: bool,
    read_buf: Vec<u8>,
    failure: Option<ReplayError>,
    stop: Option<Stop>,
    /// Everything the guest wrote to its console during the replay.
    pub console: Vec<u8>,
    /// Frames the guest transmitted during the replay.
    pub net_tx: Vec<Vec<u8>>,
    checkpoints: u64,
}

impl<S: Read> Replayer<S> {
    /// Read the log's header from `source`. [`ReplayError::NoHeader`] if a live source has not
    /// delivered it yet.
    pub fn new(mut source: S) -> Result<Self, ReplayError> {
        let mut decoder = Decoder::new();
        let mut read_buf = vec![0u8; 64 << 10];
        let header = loop {
            if let Some(h) = decoder.header()? {
                break h;
            }
            match source.read(&mut read_buf) {
                Ok(0) => {
                    decoder.finish()?;
                    return Err(ReplayError::NoHeader);
                }
                Ok(n) => decoder.push(&read_buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Err(ReplayError::NoHeader),
                Err(e) => return Err(e.into()),
            }
        };
        Ok(Replayer {
            source,
            decoder,
            header,
            next: None,
            eof: false,
            read_buf,
            failure: None,
            stop: None,
            console: Vec::new(),
            net_tx: Vec::new(),
            checkpoints: 0,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Checkpoints verified so far.
    pub fn checkpoints_verified(&self) -> u64 {
        self.checkpoints
    }

    /// Check that `machine` (built from a config with fingerprint `config_fingerprint`) is where
    /// the log starts: same configuration, same instruction count, same state hash.
    pub fn check_start(&self, machine: &Machine, config_fingerprint: &[u8; 32]) -> Result<(), ReplayError> {
        let h = &self.header;
        if &h.fingerprint != config_fingerprint {
            return Err(ReplayError::Config { log: short_hex(&h.fingerprint), machine: short_hex(config_fingerprint) });
        }
        if h.start_icount != machine.icount() {
            return Err(ReplayError::StartIcount { log: h.start_icount, machine: machine.icount() });
        }
        let hash = machine.state_hash();
        if hash != h.start_hash {
            return Err(ReplayError::StartState {
                icount: h.start_icount,
                log: short_hex(&h.start_hash),
                machine: short_hex(&hash),
            });
        }
        Ok(())
    }

    /// Make sure the next record is decoded. `Ok(false)`: the source has no data yet.
    fn fill(&mut self) -> Result<bool, ReplayError> {
        if self.next.is_some() {
            return Ok(true);
        }
        loop {
            if let Some(r) = self.decoder.next_record()? {
                self.next = Some(r);
                return Ok(true);
            }
            if self.eof {
                self.decoder.finish()?;
                // The End record is never consumed, so a finished log always has a next record.
                return Err(WireError::Truncated { offset: 0, what: "after the End record" }.into());
            }
            match self.source.read(&mut self.read_buf) {
                Ok(0) => self.eof = true,
                Ok(n) => self.decoder.push(&self.read_buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn fail(&mut self, e: ReplayError) -> EnvError {
        let msg = e.to_string();
        self.failure.get_or_insert(e);
        EnvError::msg(msg)
    }

    fn halt(&mut self, stop: Stop) -> EnvError {
        self.stop = Some(stop);
        EnvError::msg(format!("replay stopped: {stop:?}"))
    }

    /// Fill, or turn the reason it cannot into the error the machine returns with.
    fn need_next(&mut self) -> Result<&Record, EnvError> {
        if self.failure.is_some() {
            return Err(EnvError::msg("replay already failed"));
        }
        match self.fill() {
            Ok(true) => {}
            Ok(false) => return Err(self.halt(Stop::Starved)),
            Err(e) => return Err(self.fail(e)),
        }
        self.next.as_ref().ok_or_else(|| EnvError::msg("no record"))
    }

    /// Start a replay in the middle of the log: skip every record up to the checkpoint recorded
    /// at `icount`, which stays next and is verified against the machine restored from the
    /// snapshot taken there (instead of [`Replayer::check_start`]'s start hash).
    pub fn skip_to_checkpoint(&mut self, icount: InstructionCount) -> Result<(), ReplayError> {
        loop {
            if !self.fill()? {
                return Err(ReplayError::Divergence {
                    icount,
                    expected: "no more data yet".to_string(),
                    found: "a checkpoint to start from was asked for".to_string(),
                });
            }
            match &self.next {
                Some(Record::Checkpoint { icount: at, .. }) if *at == icount => return Ok(()),
                Some(r) if r.icount() > icount || matches!(r, Record::End { .. }) => {
                    return Err(ReplayError::Divergence {
                        icount,
                        expected: r.describe(),
                        found: "a checkpoint to start from was asked for here".to_string(),
                    })
                }
                _ => self.next = None,
            }
        }
    }

    /// Verify the checkpoint the log has at `machine`'s instruction count.
    pub fn verify(&mut self, machine: &Machine) -> Result<(), ReplayError> {
        let icount = machine.icount();
        if !self.fill()? {
            return Ok(());
        }
        let Some(Record::Checkpoint { icount: at, hash, full }) = self.next.clone() else {
            return Ok(());
        };
        if at != icount {
            return Ok(());
        }
        let got = checkpoint_hash(machine);
        if got != hash {
            return Err(ReplayError::Checkpoint {
                icount,
                what: "hart and device state",
                expected: short_hex(&hash),
                found: short_hex(&got),
            });
        }
        if let Some(full) = full {
            let got = machine.state_hash();
            if got != full {
                return Err(ReplayError::Checkpoint {
                    icount,
                    what: "full state (RAM included)",
                    expected: short_hex(&full),
                    found: short_hex(&got),
                });
            }
        }
        self.next = None;
        self.checkpoints += 1;
        Ok(())
    }

    /// Replay until `until`, the End of the log, a power-off or reset, or (live) until the source
    /// runs dry, verifying every checkpoint on the way.
    pub fn run(&mut self, machine: &mut Machine, until: InstructionCount) -> Result<ReplayStop, ReplayError> {
        loop {
            if let Some(e) = self.failure.take() {
                return Err(e);
            }
            if machine.icount() >= until {
                return Ok(ReplayStop::Limit);
            }
            match machine.run(self, until) {
                Exit::Limit => return Ok(ReplayStop::Limit),
                Exit::PowerOff(code) => return Ok(ReplayStop::PowerOff(code)),
                Exit::Reset => return Ok(ReplayStop::Reset),
                Exit::Environment(source) => {
                    if let Some(e) = self.failure.take() {
                        return Err(e);
                    }
                    match self.stop.take() {
                        Some(Stop::Checkpoint) => self.verify(machine)?,
                        Some(Stop::End) => return Ok(ReplayStop::End),
                        Some(Stop::Starved) => return Ok(ReplayStop::Starved),
                        None => return Err(ReplayError::Environment { icount: machine.icount(), source }),
                    }
                }
            }
        }
    }

    /// After the guest powered off or reset: verify the final checkpoint and that the log ends
    /// here too.
    pub fn finish(&mut self, machine: &Machine) -> Result<(), ReplayError> {
        self.verify(machine)?;
        if !self.fill()? {
            return Err(ReplayError::NoHeader);
        }
        match &self.next {
            Some(Record::End { icount }) if *icount == machine.icount() => Ok(()),
            Some(r) => Err(ReplayError::Divergence {
                icount: machine.icount(),
                expected: r.describe(),
                found: "the guest stopped".to_string(),
            }),
            None => Err(ReplayError::NoHeader),
        }
    }
}

impl<S: Read> Replayer<S> {
    /// Make sure the next record is decoded, in the middle of an instruction (entropy, disk
    /// reads), where the machine cannot stop: a live source is waited for. False when the replay
    /// has failed (the failure is kept for `run`).
    fn fill_mid_instruction(&mut self) -> bool {
        if self.failure.is_some() {
            return false;
        }
        loop {
            match self.fill() {
                Ok(true) => return true,
                Ok(false) => std::thread::sleep(std::time::Duration::from_millis(1)),
                Err(e) => {
                    self.fail(e);
                    return false;
                }
            }
        }
    }
}

impl<S: Read> Environment for Replayer<S> {
    fn poll(&mut self, icount: InstructionCount) -> Result<Option<InputEvent>, EnvError> {
        let next = self.need_next()?;
        let at = next.icount();
        if at < icount {
            let e = ReplayError::Divergence {
                icount: at,
                expected: next.describe(),
                found: format!("the machine went on to instruction {icount} without it"),
            };
            return Err(self.fail(e));
        }
        if at > icount {
            return Ok(None);
        }
        match next {
            Record::Event { .. } => match self.next.take() {
                Some(Record::Event { event, .. }) => Ok(Some(event)),
                _ => Ok(None),
            },
            Record::Checkpoint { .. } => Err(self.halt(Stop::Checkpoint)),
            Record::End { .. } => Err(self.halt(Stop::End)),
            Record::Warp { .. } | Record::Entropy { .. } | Record::DiskRead { .. } => Ok(None),
        }
    }

    fn next_event_at(&self) -> Option<InstructionCount> {
        self.next.as_ref().map(|r| match r {
            // Consumed during the instruction at `icount` (mid-slice, where the machine does not ask
            // again): end the slice right after that instruction, so the record after it is
            // decoded and its instruction count is respected.
            Record::Entropy { icount, .. } | Record::DiskRead { icount, .. } => icount.saturating_add(1),
            r => r.icount(),
        })
    }

    fn idle(&mut self, state: IdleState) -> Result<Ticks, EnvError> {
        let next = self.need_next()?;
        if let Record::Warp { icount, ticks } = *next {
            if icount == state.icount {
                self.next = None;
                return Ok(ticks);
            }
        }
        let e = ReplayError::Divergence {
            icount: state.icount,
            expected: next.describe(),
            found: "the guest went idle".to_string(),
        };
        Err(self.fail(e))
    }

    fn entropy(&mut self, icount: InstructionCount, buf: &mut [u8]) {
        buf.fill(0);
        if !self.fill_mid_instruction() {
            return;
        }
        match &self.next {
            Some(Record::Entropy { icount: at, bytes }) if *at == icount && bytes.len() == buf.len() => {
                buf.copy_from_slice(bytes);
                self.next = None;
            }
            Some(r) => {
                let e = ReplayError::Divergence {
                    icount,
                    expected: r.describe(),
                    found: format!("the guest asked for {} entropy bytes", buf.len()),
                };
                self.fail(e);
            }
            None => {}
        }
    }

    fn disk_read(&mut self, icount: InstructionCount, offset: u64, buf: &mut [u8]) -> Result<(), EnvError> {
        buf.fill(0);
        if !self.fill_mid_instruction() {
            return Err(EnvError::msg("replay already failed"));
        }
        match &self.next {
            Some(Record::DiskRead { icount: at, offset: o, bytes })
                if *at == icount && *o == offset && bytes.len() == buf.len() =>
            {
                buf.copy_from_slice(bytes);
                self.next = None;
                Ok(())
            }
            Some(r) => {
                let e = ReplayError::Divergence {
                    icount,
                    expected: r.describe(),
                    found: format!("the guest read {} disk bytes at offset {offset}", buf.len()),
                };
                Err(self.fail(e))
            }
            None => Err(EnvError::msg("no record")),
        }
    }

    fn output(&mut self, _icount: InstructionCount, output: Output<'_>) {
        match output {
            Output::Console(bytes) => self.console.extend_from_slice(bytes),
            Output::NetTx(frame) => self.net_tx.push(frame.to_vec()),
        }
    }
}

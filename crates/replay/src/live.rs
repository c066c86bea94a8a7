//! Replaying a log that is still being written: the *horizon*.
//!
//! A live replayer must never run its machine past the point up to which the recorder has
//! recorded, or it would meet an environment call (an entropy request in the middle of an
//! instruction, an idle warp) whose answer does not exist yet. The recorder therefore publishes
//! its progress as a **horizon** `H`: *the recorder's machine stopped at instruction `H` and every
//! record of every environment call it made before stopping is in the log*. Records at `H` made
//! after it resumes may still follow. So below `H` the log is complete (no record means no event),
//! and at `H` the replayer answers only from records it holds: with none left, `poll` and `idle`
//! at `H` stop the machine (it makes no change before either), and [`Environment::next_event_at`]
//! returns `H`, so a slice never runs through the horizon. Every instruction at `H` is preceded
//! by a `poll` at `H`, so an entropy request can never outrun the log. Idle warps recorded at `H`
//! (a guest that sleeps executes no instructions) are replayed as they arrive.
//!
//! Where horizons come from:
//! * every record at `n` implies horizon `n` (records are in order), in particular checkpoints,
//!   which a recorder writes between runs, so any log with checkpoints is a live log;
//! * the End record lifts the horizon for good;
//! * [`LiveReplayer::advance_horizon`] takes one from the transport (the streaming protocol sends
//!   one after every slice the host runs, so replicas follow closely without checkpoint cost).
//!
//! [`LiveReplayer`] is sans-IO: bytes of the log come in through [`LiveReplayer::push`], and
//! [`LiveReplayer::run`] returns [`LiveStop::Horizon`] when it has caught up. It never blocks,
//! sleeps or reads a clock; the caller waits for more bytes however it likes.

use std::collections::VecDeque;

use doppel_machine::{
    EnvError, Environment, Exit, IdleState, InputEvent, InstructionCount, Machine, Output, Ticks,
};

use crate::wire::{Decoder, Header, Record, WireError};
use crate::{checkpoint_hash, short_hex, ReplayError};

/// Why [`LiveReplayer::run`] returned without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveStop {
    /// Reached the requested instruction count.
    Limit,
    /// Caught up with the recorder: the machine stands at the horizon. Push more log (or a later
    /// horizon) and call `run` again.
    Horizon,
    /// Reached the End record; the machine is where the recording ended.
    End,
    /// The guest powered off with this code (as it did when recorded).
    PowerOff(u32),
    /// The guest asked for a reset.
    Reset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Checkpoint,
    End,
    Horizon,
}

/// Replays a live log that arrives in pieces. See the module docs.
pub struct LiveReplayer {
    decoder: Decoder,
    header: Option<Header>,
    queue: VecDeque<Record>,
    horizon: InstructionCount,
    ended: bool,
    failure: Option<ReplayError>,
    wire_error: Option<WireError>,
    stop: Option<Stop>,
    checkpoints: u64,
    last_checkpoint: Option<InstructionCount>,
    /// Everything the guest wrote to its console during the replay.
    pub console: Vec<u8>,
    /// Frames the guest transmitted during the replay.
    pub net_tx: Vec<Vec<u8>>,
}

impl Default for LiveReplayer {
    fn default() -> Self {
        Self::new()
    }
}

impl LiveReplayer {
    /// A replayer with no log yet.
    pub fn new() -> Self {
        LiveReplayer {
            decoder: Decoder::new(),
            header: None,
            queue: VecDeque::new(),
            horizon: 0,
            ended: false,
            failure: None,
            wire_error: None,
            stop: None,
            checkpoints: 0,
            last_checkpoint: None,
            console: Vec::new(),
            net_tx: Vec::new(),
        }
    }

    /// Feed the next bytes of the log (any split). A format error is returned here, and again
    /// by every later call and by [`LiveReplayer::run`].
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        if let Some(e) = &self.wire_error {
            return Err(e.clone());
        }
        self.decoder.push(bytes);
        self.drain().inspect_err(|e| self.wire_error = Some(e.clone()))
    }

    fn drain(&mut self) -> Result<(), WireError> {
        if self.header.is_none() {
            match self.decoder.header()? {
                Some(h) => {
                    self.horizon = self.horizon.max(h.start_icount);
                    self.header = Some(h);
                }
                None => return Ok(()),
            }
        }
        while let Some(r) = self.decoder.next_record()? {
            // Records come in order, so one at `n` says the log is complete below `n`.
            self.horizon = self.horizon.max(r.icount());
            if let Record::End { .. } = r {
                self.ended = true;
            }
            self.queue.push_back(r);
        }
        Ok(())
    }

    /// The recorder has reached `icount` (see the module docs). Horizons never move back.
    pub fn advance_horizon(&mut self, icount: InstructionCount) {
        self.horizon = self.horizon.max(icount);
    }

    /// The current horizon (`u64::MAX` once the End record has arrived).
    pub fn horizon(&self) -> InstructionCount {
        if self.ended {
            InstructionCount::MAX
        } else {
            self.horizon
        }
    }

    /// The log's header, once its bytes have arrived.
    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    /// Checkpoints verified so far, and the instruction count of the last.
    pub fn checkpoints_verified(&self) -> (u64, Option<InstructionCount>) {
        (self.checkpoints, self.last_checkpoint)
    }

    /// Records received but not yet replayed.
    pub fn backlog(&self) -> usize {
        self.queue.len()
    }

    /// Check that the log belongs to `machine`'s configuration and starts at its instruction
    /// count. The state itself is checked by the checkpoints: a log for a snapshot starts with a
    /// checkpoint at the snapshot's instruction count.
    pub fn check_start(&self, machine: &Machine, config_fingerprint: &[u8; 32]) -> Result<(), ReplayError> {
        let h = self.header.as_ref().ok_or(ReplayError::NoHeader)?;
        if &h.fingerprint != config_fingerprint {
            return Err(ReplayError::Config { log: short_hex(&h.fingerprint), machine: short_hex(config_fingerprint) });
        }
        if h.start_icount != machine.icount() {
            return Err(ReplayError::StartIcount { log: h.start_icount, machine: machine.icount() });
        }
        Ok(())
    }

    fn fail(&mut self, e: ReplayError) -> EnvError {
        let msg = e.to_string();
        self.failure.get_or_insert(e);
        EnvError::msg(msg)
    }

    fn halt(&mut self, stop: Stop) -> EnvError {
        self.stop = Some(stop);
        EnvError::msg(format!("live replay stopped: {stop:?}"))
    }

    /// Verify the checkpoint at the front of the queue if it is at `machine`'s instruction count.
    fn verify(&mut self, machine: &Machine) -> Result<(), ReplayError> {
        let icount = machine.icount();
        let Some(Record::Checkpoint { icount: at, hash, full }) = self.queue.front().cloned() else {
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
        self.queue.pop_front();
        self.checkpoints += 1;
        self.last_checkpoint = Some(icount);
        Ok(())
    }

    /// Replay until `until`, the horizon, the End of the log, a power-off or a reset, verifying
    /// every checkpoint on the way. Never blocks.
    pub fn run(&mut self, machine: &mut Machine, until: InstructionCount) -> Result<LiveStop, ReplayError> {
        loop {
            if let Some(e) = self.failure.take() {
                return Err(e);
            }
            if let Some(e) = &self.wire_error {
                return Err(e.clone().into());
            }
            if machine.icount() >= until {
                return Ok(LiveStop::Limit);
            }
            match machine.run(self, until) {
                Exit::Limit => {}
                Exit::PowerOff(code) => return Ok(LiveStop::PowerOff(code)),
                Exit::Reset => return Ok(LiveStop::Reset),
                Exit::Environment(source) => {
                    if let Some(e) = self.failure.take() {
                        return Err(e);
                    }
                    match self.stop.take() {
                        Some(Stop::Checkpoint) => self.verify(machine)?,
                        Some(Stop::End) => return Ok(LiveStop::End),
                        Some(Stop::Horizon) => return Ok(LiveStop::Horizon),
                        None => return Err(ReplayError::Environment { icount: machine.icount(), source }),
                    }
                }
            }
        }
    }
}

impl Environment for LiveReplayer {
    fn poll(&mut self, icount: InstructionCount) -> Result<Option<InputEvent>, EnvError> {
        if self.failure.is_some() {
            return Err(EnvError::msg("live replay already failed"));
        }
        let Some(next) = self.queue.front() else {
            // Below the horizon the log is complete: no record means no event.
            return if icount < self.horizon() { Ok(None) } else { Err(self.halt(Stop::Horizon)) };
        };
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
            Record::Event { .. } => match self.queue.pop_front() {
                Some(Record::Event { event, .. }) => Ok(Some(event)),
                _ => Ok(None),
            },
            Record::Checkpoint { .. } => Err(self.halt(Stop::Checkpoint)),
            Record::End { .. } => Err(self.halt(Stop::End)),
            Record::Warp { .. } | Record::Entropy { .. } | Record::DiskRead { .. } => Ok(None),
        }
    }

    fn next_event_at(&self) -> Option<InstructionCount> {
        match self.queue.front() {
            Some(r) => Some(r.icount()),
            None if self.ended => None,
            None => Some(self.horizon),
        }
    }

    fn idle(&mut self, state: IdleState) -> Result<Ticks, EnvError> {
        if self.failure.is_some() {
            return Err(EnvError::msg("live replay already failed"));
        }
        match self.queue.front() {
            Some(&Record::Warp { icount, ticks }) if icount == state.icount => {
                self.queue.pop_front();
                Ok(ticks)
            }
            // At the horizon the recorder may not have idled yet: wait for more log. The machine
            // adds no warp when `idle` fails, so the retry is exact.
            None if state.icount >= self.horizon() => Err(self.halt(Stop::Horizon)),
            next => {
                let e = ReplayError::Divergence {
                    icount: state.icount,
                    expected: next.map_or_else(|| "no record before the horizon".to_string(), Record::describe),
                    found: "the guest went idle".to_string(),
                };
                Err(self.fail(e))
            }
        }
    }

    fn entropy(&mut self, icount: InstructionCount, buf: &mut [u8]) {
        buf.fill(0);
        if self.failure.is_some() {
            return;
        }
        match self.queue.front() {
            Some(Record::Entropy { icount: at, bytes }) if *at == icount && bytes.len() == buf.len() => {
                buf.copy_from_slice(bytes);
                self.queue.pop_front();
            }
            next => {
                // The machine never runs past the horizon, so the answer must be here.
                let e = ReplayError::Divergence {
                    icount,
                    expected: next.map_or_else(|| "no record before the horizon".to_string(), Record::describe),
                    found: format!("the guest asked for {} entropy bytes", buf.len()),
                };
                self.fail(e);
            }
        }
    }

    fn disk_read(&mut self, icount: InstructionCount, offset: u64, buf: &mut [u8]) -> Result<(), EnvError> {
        buf.fill(0);
        if self.failure.is_some() {
            return Err(EnvError::msg("live replay already failed"));
        }
        match self.queue.front() {
            Some(Record::DiskRead { icount: at, offset: o, bytes }) if *at == icount && *o == offset && bytes.len() == buf.len() => {
                buf.copy_from_slice(bytes);
                self.queue.pop_front();
                Ok(())
            }
            next => {
                // The machine never runs past the horizon, so the answer must be here.
                let e = ReplayError::Divergence {
                    icount,
                    expected: next.map_or_else(|| "no record before the horizon".to_string(), Record::describe),
                    found: format!("the guest read {} disk bytes at offset {offset}", buf.len()),
                };
                Err(self.fail(e))
            }
        }
    }

    fn output(&mut self, _icount: InstructionCount, output: Output<'_>) {
        match output {
            Output::Console(bytes) => self.console.extend_from_slice(bytes),
            Output::NetTx(frame) => self.net_tx.push(frame.to_vec()),
        }
    }
}

//! The determinism boundary.
//!
//! Everything that can make two runs of the machine differ enters through [`Environment`], and
//! nothing else may: the machine crate reads no clock, no file, no socket, no host RNG and starts
//! no thread (enforced by `clippy.toml` beside this crate's manifest).
//!
//! Three implementations plug in here (in other crates): the *live* environment (real keyboard,
//! network, entropy and wall-clock idling), the *recorder* (wraps any environment and logs every
//! value that passes), and the *replayer* (feeds a log back, at exactly the same instruction
//! counts). The machine calls the environment only at deterministic points of its instruction
//! stream, so a replayer that answers every call the way the recorder saw it reproduces the run
//! bit for bit.
//!
//! # When the machine calls what
//!
//! * [`Environment::poll`] at the start of every run slice, i.e. at an instruction count chosen by
//!   the caller of [`crate::Machine::run`] or by [`Environment::next_event_at`]. Each event it
//!   returns is applied to the devices immediately, at that instruction count.
//! * [`Environment::next_event_at`] before each slice: an environment that knows an event is due at
//!   instruction count `n` (the replayer) returns `Some(n)` and the machine stops exactly there.
//! * [`Environment::idle`] when the hart waits in `wfi` with nothing pending: the environment says how
//!   many timer ticks of guest time pass (the *warp*). A live environment sleeps in real time until
//!   the guest's next deadline or until input arrives; a replayer returns the logged warp at once,
//!   which is why idle guests replay faster than real time.
//! * [`Environment::entropy`] when the guest consumes random bytes (virtio-rng).
//! * [`Environment::output`] for what the machine emits: console bytes, transmitted packets. Outputs
//!   are observed, never fed back; a recorder need not log them (a replayer may compare them).

use std::fmt;

/// A moment in the guest's instruction stream: the number of instructions retired since reset.
pub type InstructionCount = u64;

/// Guest time in ticks of the machine's timebase (see [`crate::TIMEBASE_HZ`]).
pub type Ticks = u64;

/// A value the outside world gives the machine. Applied at the instruction count of the
/// [`Environment::poll`] call that returned it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum InputEvent {
    /// Bytes typed on the serial console (16550 UART receive).
    UartRx(Vec<u8>),
    /// A key on the virtio keyboard, as a Linux input event code (`KEY_A` = 30, ...).
    Key { code: u16, down: bool },
    /// Absolute pointer position on the virtio tablet, in framebuffer pixels.
    PointerMove { x: u32, y: u32 },
    /// A pointer button, as a Linux input event code (`BTN_LEFT` = 0x110, ...).
    PointerButton { code: u16, down: bool },
    /// Vertical wheel movement in detents (positive is away from the user).
    Wheel { delta: i32 },
    /// An Ethernet frame received by the virtio network device.
    NetRx(Vec<u8>),
}

/// A value the machine gives the outside world. Never fed back into the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output<'a> {
    /// Bytes the guest wrote to the serial console (UART or the SBI console).
    Console(&'a [u8]),
    /// An Ethernet frame the guest transmitted on the virtio network device.
    NetTx(&'a [u8]),
}

/// Why an environment cannot go on (a replay log diverged or ended, a live link closed).
/// It ends [`crate::Machine::run`] with [`crate::Exit::Environment`].
#[derive(Debug)]
pub struct EnvError(pub Box<dyn std::error::Error + Send + Sync>);

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for EnvError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl EnvError {
    pub fn msg(msg: impl Into<String>) -> Self {
        EnvError(msg.into().into())
    }
}

/// Where the hart stands when it goes idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleState {
    /// Instructions retired so far.
    pub icount: InstructionCount,
    /// Guest time now, in ticks.
    pub now: Ticks,
    /// Guest time at which the next timer interrupt fires, if any timer is armed.
    pub deadline: Option<Ticks>,
}

/// The one door into the machine. See the module docs for when each method is called.
pub trait Environment {
    /// The next input event due at instruction count `icount`, if any. Called repeatedly until it
    /// returns `Ok(None)`.
    fn poll(&mut self, icount: InstructionCount) -> Result<Option<InputEvent>, EnvError>;

    /// The instruction count at which this environment must next be polled, if it knows one.
    /// The machine ends its current slice exactly there.
    fn next_event_at(&self) -> Option<InstructionCount> {
        None
    }

    /// The hart is idle (in `wfi`, nothing pending). Returns how many ticks of guest time pass
    /// before the machine resumes; at most `deadline - now` when a deadline is given. Returning
    /// 0 is allowed (the machine polls and, if still idle, asks again).
    fn idle(&mut self, state: IdleState) -> Result<Ticks, EnvError>;

    /// Asked after each [`Environment::idle`]: whether [`crate::Machine::run`] should return now
    /// (with [`crate::Exit::Limit`], before `until`) so the host can do other work on the
    /// machine's thread, such as publishing the display, while an idle guest runs few
    /// instructions. The machine resumes exactly as if it had not returned, so this never changes
    /// a run. Default: never.
    fn yield_after_idle(&mut self) -> bool {
        false
    }

    /// Fill `buf` with entropy for the guest. A replayer that cannot must fill something and report
    /// the divergence from its next `poll`.
    fn entropy(&mut self, icount: InstructionCount, buf: &mut [u8]);

    /// Something the machine emits. Outputs never influence the machine.
    fn output(&mut self, icount: InstructionCount, output: Output<'_>);

    /// Bytes of the disk's base image at `offset`, for a block device whose base the environment
    /// serves ([`crate::devices::EnvDisk`]: the *output-replayed disk*, where a recorder logs these
    /// bytes and a replayer needs no disk image). Called mid-instruction, during the request that
    /// reads them; the range lies inside the disk. An error completes the request with an I/O
    /// error (a replayer that cannot answer reports the divergence from its next `poll`).
    fn disk_read(&mut self, icount: InstructionCount, offset: u64, buf: &mut [u8]) -> Result<(), EnvError> {
        let _ = (icount, offset);
        buf.fill(0);
        Err(EnvError::msg("this environment serves no disk data"))
    }
}

/// An environment with no outside world: no input, no entropy but a fixed stream, idle time
/// skipped straight to the next deadline. Deterministic by construction; for tests and for
/// running guests that need nothing from outside. Console output is collected.
#[derive(Debug, Default)]
pub struct NullEnvironment {
    /// Everything the guest wrote to its console.
    pub console: Vec<u8>,
    /// Every frame the guest transmitted.
    pub net_tx: Vec<Vec<u8>>,
    entropy_state: u64,
}

impl Environment for NullEnvironment {
    fn poll(&mut self, _icount: InstructionCount) -> Result<Option<InputEvent>, EnvError> {
        Ok(None)
    }

    fn idle(&mut self, state: IdleState) -> Result<Ticks, EnvError> {
        match state.deadline {
            Some(d) => Ok(d.saturating_sub(state.now)),
            None => Err(EnvError::msg(
                "guest is idle with no timer armed and no input can arrive",
            )),
        }
    }

    fn entropy(&mut self, _icount: InstructionCount, buf: &mut [u8]) {
        // splitmix64: a fixed, host-independent stream.
        for chunk in buf.chunks_mut(8) {
            self.entropy_state = self.entropy_state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.entropy_state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }

    fn output(&mut self, _icount: InstructionCount, output: Output<'_>) {
        match output {
            Output::Console(bytes) => self.console.extend_from_slice(bytes),
            Output::NetTx(frame) => self.net_tx.push(frame.to_vec()),
        }
    }
}

//! The live environment: the real world at the machine's door.
//!
//! Input events arrive from any number of producer threads (the terminal, VNC viewers, the network
//! backend) through an [`InputSender`]; the machine drains them when it polls. Idle guest time is
//! spent sleeping in real time, so a guest that waits for a 10 ms timer waits 10 ms of wall time,
//! unless the guest has fallen behind real time (the emulator was busy), in which case idle time is
//! skipped to catch up. Entropy comes from the operating system.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use crate::net::{NetBackend, NetStats};
use doppel_machine::{
    EnvError, Environment, IdleState, InputEvent, InstructionCount, Output, Ticks, TIMEBASE_HZ,
};

/// Where the machine's outputs go.
pub trait OutputSink: Send {
    fn console(&mut self, bytes: &[u8]);
    fn net_tx(&mut self, frame: &[u8]);
}

/// A message from a producer thread to the live environment.
#[derive(Debug)]
enum Message {
    Input(InputEvent),
    /// Stop the machine at the next poll (the user asked to quit, a peer went away).
    Stop(String),
    /// End an idle wait early (no input): the machine returns from `run` sooner, so its thread
    /// can serve something else (a streaming client's snapshot request).
    Wake,
}

/// A handle producer threads use to feed the live environment. Cheap to clone.
#[derive(Debug, Clone)]
pub struct InputSender(Sender<Message>);

impl InputSender {
    /// Queue an input event. Returns false once the environment is gone.
    pub fn send(&self, event: InputEvent) -> bool {
        self.0.send(Message::Input(event)).is_ok()
    }

    /// Ask the machine to stop at its next poll, with a reason for the log.
    pub fn stop(&self, reason: impl Into<String>) {
        let _ = self.0.send(Message::Stop(reason.into()));
    }

    /// If the guest is idling, end the wait now: the idle call returns the guest time that has
    /// passed, as if the timer had fired early (no input is delivered; the guest idles again if
    /// it has nothing to do). For a thread that must act between slices while the guest sleeps.
    pub fn wake(&self) {
        let _ = self.0.send(Message::Wake);
    }
}

/// The live environment. See the module docs.
pub struct LiveEnvironment {
    rx: Receiver<Message>,
    pending: VecDeque<Message>,
    sink: Box<dyn OutputSink>,
    /// Where transmitted frames go; without one they go to the sink.
    net: Option<Box<dyn NetBackend>>,
    /// Real time and guest time at the moment the two were last aligned.
    epoch: Option<(Instant, Ticks)>,
}

impl LiveEnvironment {
    pub fn new(sink: Box<dyn OutputSink>) -> (Self, InputSender) {
        let (tx, rx) = mpsc::channel();
        let env = LiveEnvironment {
            rx,
            pending: VecDeque::new(),
            sink,
            net: None,
            epoch: None,
        };
        (env, InputSender(tx))
    }

    /// Send the guest's transmitted frames to `backend` (from now on). Frames for the guest come
    /// back through this environment's [`InputSender`], which the backend was given.
    pub fn set_network(&mut self, backend: Box<dyn NetBackend>) {
        self.net = Some(backend);
    }

    /// The network backend's counters, if there is one.
    pub fn network_stats(&self) -> Option<NetStats> {
        self.net.as_ref().map(|n| n.stats())
    }

    /// Guest ticks corresponding to real time `at`, on the current alignment.
    fn ticks_at(&self, at: Instant, now: Ticks) -> Ticks {
        match self.epoch {
            Some((t0, g0)) => {
                g0.saturating_add(duration_to_ticks(at.saturating_duration_since(t0)))
            }
            None => now,
        }
    }

    /// Real time at which the guest clock reaches `ticks`, on the current alignment.
    fn instant_of(&self, ticks: Ticks) -> Option<Instant> {
        let (t0, g0) = self.epoch?;
        Some(t0 + ticks_to_duration(ticks.saturating_sub(g0)))
    }

    fn take(&mut self, message: Message) -> Result<Option<InputEvent>, EnvError> {
        match message {
            Message::Input(event) => Ok(Some(event)),
            Message::Stop(reason) => Err(EnvError::msg(reason)),
            Message::Wake => Ok(None),
        }
    }
}

fn duration_to_ticks(d: Duration) -> Ticks {
    let ticks = d.as_nanos() * u128::from(TIMEBASE_HZ) / 1_000_000_000;
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

fn ticks_to_duration(ticks: Ticks) -> Duration {
    let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(TIMEBASE_HZ);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

impl Environment for LiveEnvironment {
    fn poll(&mut self, _icount: InstructionCount) -> Result<Option<InputEvent>, EnvError> {
        if let Some(message) = self.pending.pop_front() {
            return self.take(message);
        }
        match self.rx.try_recv() {
            Ok(message) => self.take(message),
            Err(_) => Ok(None),
        }
    }

    fn idle(&mut self, state: IdleState) -> Result<Ticks, EnvError> {
        if !self.pending.is_empty() {
            return Ok(0);
        }
        let real_now = Instant::now();
        // The guest's clock runs on instructions while it is busy, so it drifts from real time.
        // Re-align when the guest is ahead (it must wait) or far behind (catching up would make
        // its timers fire in a burst); a small lag is caught up by skipping idle time.
        let behind = self.ticks_at(real_now, state.now).saturating_sub(state.now);
        if self.epoch.is_none()
            || behind > TIMEBASE_HZ / 10
            || self.ticks_at(real_now, state.now) < state.now
        {
            self.epoch = Some((real_now, state.now));
        }
        let caught_up = self.ticks_at(real_now, state.now);
        if let Some(deadline) = state.deadline {
            if caught_up >= deadline {
                return Ok(deadline.saturating_sub(state.now));
            }
        }
        let wake = state.deadline.and_then(|d| self.instant_of(d));
        let received = match wake {
            Some(at) => self.rx.recv_timeout(at.saturating_duration_since(real_now)),
            None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(Message::Wake) => {}
            Ok(message) => self.pending.push_back(message),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) if wake.is_some() => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err(EnvError::msg(
                    "guest idles with no timer armed and no input source left",
                ))
            }
        }
        let elapsed = self
            .ticks_at(Instant::now(), state.now)
            .saturating_sub(state.now);
        Ok(match state.deadline {
            Some(deadline) => elapsed.min(deadline.saturating_sub(state.now)),
            None => elapsed,
        })
    }

    fn entropy(&mut self, _icount: InstructionCount, buf: &mut [u8]) {
        if getrandom::fill(buf).is_err() {
            // The OS RNG does not fail on Linux after boot; if it ever does, the guest still gets
            // bytes (the live run is recorded, so replay stays exact) and we say so.
            tracing::error!("operating system RNG failed; guest entropy is zeros");
            buf.fill(0);
        }
    }

    fn output(&mut self, _icount: InstructionCount, output: Output<'_>) {
        match output {
            Output::Console(bytes) => self.sink.console(bytes),
            Output::NetTx(frame) => match &mut self.net {
                Some(net) => net.transmit(frame),
                None => self.sink.net_tx(frame),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Collect(Arc<Mutex<Vec<u8>>>);
    impl OutputSink for Collect {
        fn console(&mut self, bytes: &[u8]) {
            self.0.lock().unwrap().extend_from_slice(bytes);
        }
        fn net_tx(&mut self, _frame: &[u8]) {}
    }

    #[test]
    fn idle_sleeps_in_real_time_until_the_deadline() {
        let (mut env, _tx) = LiveEnvironment::new(Box::new(Collect::default()));
        let ten_ms = TIMEBASE_HZ / 100;
        // First idle aligns the clocks; the deadline is 10 ms of guest time ahead.
        let started = Instant::now();
        let warp = env
            .idle(IdleState {
                icount: 0,
                now: 0,
                deadline: Some(ten_ms),
            })
            .unwrap();
        let waited = started.elapsed();
        assert_eq!(warp, ten_ms);
        assert!(
            waited >= Duration::from_millis(9),
            "returned after {waited:?}"
        );
        assert!(
            waited < Duration::from_millis(500),
            "slept far too long: {waited:?}"
        );
    }

    #[test]
    fn wake_ends_an_idle_wait_early_without_input() {
        let (mut env, tx) = LiveEnvironment::new(Box::new(Collect::default()));
        let ten_s = 10 * TIMEBASE_HZ;
        let waker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            tx.wake();
            tx
        });
        let started = Instant::now();
        let warp = env
            .idle(IdleState {
                icount: 0,
                now: 0,
                deadline: Some(ten_s),
            })
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the wake did not end the wait"
        );
        assert!(warp < ten_s, "{warp}");
        assert_eq!(env.poll(0).unwrap(), None, "a wake is not an input");
        drop(waker.join().unwrap());
    }

    #[test]
    fn input_wakes_an_idle_guest_early_and_is_polled_next() {
        let (mut env, tx) = LiveEnvironment::new(Box::new(Collect::default()));
        let one_s = TIMEBASE_HZ;
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            tx.send(InputEvent::Key {
                code: 30,
                down: true,
            });
            tx
        });
        let warp = env
            .idle(IdleState {
                icount: 0,
                now: 0,
                deadline: Some(one_s),
            })
            .unwrap();
        assert!(warp < one_s / 2, "woke only after {warp} ticks");
        assert_eq!(
            env.poll(0).unwrap(),
            Some(InputEvent::Key {
                code: 30,
                down: true
            })
        );
        assert_eq!(env.poll(0).unwrap(), None);
        drop(sender.join());
    }

    #[test]
    fn stop_request_ends_the_run_with_its_reason() {
        let (mut env, tx) = LiveEnvironment::new(Box::new(Collect::default()));
        tx.stop("user pressed Ctrl-A x");
        let err = env.poll(5).unwrap_err();
        assert!(err.to_string().contains("Ctrl-A x"));
    }

    #[test]
    fn console_output_reaches_the_sink() {
        let sink = Collect::default();
        let (mut env, _tx) = LiveEnvironment::new(Box::new(sink.clone()));
        env.output(1, Output::Console(b"hello"));
        assert_eq!(&*sink.0.lock().unwrap(), b"hello");
    }
}

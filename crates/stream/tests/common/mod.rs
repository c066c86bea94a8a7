//! Shared by the streaming tests: the guest, a paced host environment, and a host on localhost.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use doppel_machine::{
    EnvError, Environment, IdleState, InputEvent, InstructionCount, Machine, MachineConfig, NullEnvironment, Output, Ticks,
};
use doppel_stream::host::{self, HostOptions, HostStats, Streamer, Tap};
use doppel_stream::proto::MachineInfo;

pub use doppel_testkit::guest_file;

#[derive(Clone, Default)]
pub struct Console(pub Arc<Mutex<Vec<u8>>>);

/// The host's environment: idle time passes in real time, but compressed (each idle call sleeps
/// 1 ms and lets at most 10 ms of guest time pass), so the guest boots in seconds and keeps
/// running in real time while replicas follow. Entropy is the null environment's stream.
#[derive(Default)]
pub struct Paced {
    inner: NullEnvironment,
    console: Console,
    keys: Arc<Mutex<std::collections::VecDeque<InputEvent>>>,
}

impl Environment for Paced {
    fn poll(&mut self, _icount: InstructionCount) -> Result<Option<InputEvent>, EnvError> {
        Ok(self.keys.lock().unwrap().pop_front())
    }
    fn idle(&mut self, state: IdleState) -> Result<Ticks, EnvError> {
        std::thread::sleep(Duration::from_millis(1));
        let max = doppel_machine::TIMEBASE_HZ / 100;
        Ok(state.deadline.map_or(max, |d| d.saturating_sub(state.now).min(max)))
    }
    fn entropy(&mut self, icount: InstructionCount, buf: &mut [u8]) {
        self.inner.entropy(icount, buf);
    }
    fn output(&mut self, _icount: InstructionCount, output: Output<'_>) {
        if let Output::Console(bytes) = output {
            self.console.0.lock().unwrap().extend_from_slice(bytes);
        }
    }
}

impl Console {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

pub struct Host {
    pub keys: Arc<Mutex<std::collections::VecDeque<InputEvent>>>,
    pub addr: String,
    pub stats: Arc<HostStats>,
    pub console: Console,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Host {
    /// Type a key (down and up) into the guest.
    pub fn type_key(&self, code: u16) {
        let mut k = self.keys.lock().unwrap();
        k.push_back(InputEvent::Key { code, down: true });
        k.push_back(InputEvent::Key { code, down: false });
    }

    pub fn icount(&self) -> u64 {
        self.stats.host_icount.load(Ordering::Relaxed)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn start_host(options: HostOptions, cmdline: &str) -> Host {
    start_host_with(options, cmdline, |console, keys| (Paced { console, keys, ..Paced::default() }, None))
}

/// A host whose VM runs with the environment `make_env` builds (given the console sink and the
/// key queue), and the waker it returns for the streamer ([`Streamer::set_waker`]), if any.
/// How a test host wakes its VM thread.
pub type Waker = Box<dyn Fn() + Send + Sync>;

pub fn start_host_with<E: Environment + 'static>(
    options: HostOptions,
    cmdline: &str,
    make_env: impl FnOnce(Console, Arc<Mutex<std::collections::VecDeque<InputEvent>>>) -> (E, Option<Waker>) + Send + 'static,
) -> Host {
    let config = MachineConfig {
        kernel: std::fs::read(guest_file("Image")).unwrap(),
        initrd: Some(std::fs::read(guest_file("initramfs.cpio")).unwrap()),
        cmdline: format!("console=ttyS0 panic=-1 {cmdline}"),
        ram_size: 128 << 20,
        ..MachineConfig::default()
    };
    let info = MachineInfo {
        fingerprint: doppel_replay::fingerprint(&config),
        ram_size: config.ram_size as u64,
        framebuffer: config.framebuffer,
        instructions_per_tick: config.instructions_per_tick,
        net: config.devices.net,
        input: config.devices.input,
        rng: config.devices.rng,
        bare_metal: false,
        mac: config.devices.mac,
        disk_len: 0,
    };
    let listener = host::listen("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let console = Console::default();
    let (tx, rx) = std::sync::mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let keys = Arc::new(Mutex::new(std::collections::VecDeque::new()));
    let (c, s, k) = (console.clone(), stop.clone(), keys.clone());
    let thread = std::thread::spawn(move || {
        let mut machine = Machine::new(config).unwrap();
        let (env, waker) = make_env(c, k);
        let mut tap = Tap::new(env);
        let mut streamer = Streamer::start(&mut machine, info, options, listener, None).unwrap();
        if let Some(wake) = waker {
            streamer.set_waker(wake);
        }
        tx.send(streamer.stats()).unwrap();
        let exit = host::run_vm(&mut machine, &mut tap, &mut streamer, u64::MAX, &s, Instant::now());
        assert!(matches!(exit, doppel_machine::Exit::Limit), "host stopped: {exit:?} at {}", machine.location());
    });
    let stats = rx.recv().unwrap();
    Host { keys, addr, stats, console, stop, thread: Some(thread) }
}


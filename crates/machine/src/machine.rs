//! The machine: one hart, RAM, the platform devices, and the run loop that ties them to an
//! [`Environment`].
//!
//! # The run loop
//!
//! [`Machine::run`] advances in *slices*. At the start of each slice it polls the environment
//! (applying each event at the current instruction count), refreshes the interrupt lines, and
//! picks the slice end: the earliest of `until`, [`Environment::next_event_at`] and the exact
//! instruction count at which a timer comparator (`mtimecmp`, `stimecmp`) is reached. Blocks are
//! truncated to the remaining budget, so every slice ends at exactly its instruction count no
//! matter how the blocks formed. MMIO accesses and SBI calls end their block; the loop then
//! re-reads the device interrupt lines and the timer deadline. A hart in WFI with nothing
//! pending asks the environment to idle and adds the returned ticks as warp.

use crate::boot::{self, BootError, FbLayout};
use crate::bus::{Bus, MachineRequest, RAM_BASE};
use crate::cpu::persist::CpuStateError;
use crate::cpu::{BlockExit, Cpu, CpuState};
use crate::bus::MmioCtx;
use crate::cpu::csr::{IRQ_MEI, IRQ_MSI, IRQ_MTI, IRQ_SEI};
use crate::devices::{DeviceError, Devices, DevicesConfig, DevicesState, FramebufferConfig};
use crate::fdt::{self, FdtConfig, FdtError};
use crate::env::{EnvError, Environment, IdleState, InputEvent, InstructionCount, Ticks};
use crate::persist::{self, Persist};
use crate::ram::{GuestRam, PAGE_SIZE};
use crate::sbi::{self, SbiRequest};

/// How the machine starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BootMode {
    /// A Linux `Image` entered in S-mode, with the host SBI (`sbi.rs`) standing in for OpenSBI.
    #[default]
    Linux,
    /// A raw binary or ELF loaded at `RAM_BASE` and entered in M-mode (ISA tests).
    BareMetal,
}

/// Everything a machine is built from.
pub struct MachineConfig {
    /// Bytes of RAM (a multiple of 4 KiB). Default 256 MiB.
    pub ram_size: usize,
    /// A RISC-V Linux `Image`, or for [`BootMode::BareMetal`] a raw binary or ELF.
    pub kernel: Vec<u8>,
    pub initrd: Option<Vec<u8>>,
    pub cmdline: String,
    /// Framebuffer size in pixels (`x8r8g8b8`), carved from the top of RAM. Default 640x480.
    pub framebuffer: Option<(u32, u32)>,
    /// Instructions per timer tick (the timebase is [`crate::TIMEBASE_HZ`]). Default 10.
    pub instructions_per_tick: u64,
    pub devices: DevicesConfig,
    pub boot: BootMode,
}

impl std::fmt::Debug for MachineConfig {
    // Images are shown by size: a debug print must not dump megabytes of kernel.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MachineConfig")
            .field("ram_size", &self.ram_size)
            .field("kernel_len", &self.kernel.len())
            .field("initrd_len", &self.initrd.as_ref().map(Vec::len))
            .field("cmdline", &self.cmdline)
            .field("framebuffer", &self.framebuffer)
            .field("instructions_per_tick", &self.instructions_per_tick)
            .field("devices", &self.devices)
            .field("boot", &self.boot)
            .finish()
    }
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig {
            ram_size: 256 << 20,
            kernel: Vec::new(),
            initrd: None,
            cmdline: String::from("console=ttyS0"),
            framebuffer: Some((640, 480)),
            instructions_per_tick: 10,
            devices: DevicesConfig::default(),
            boot: BootMode::Linux,
        }
    }
}

/// Why a machine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    #[error("RAM size {size} is not a non-zero multiple of 4096 bytes no larger than 64 GiB")]
    RamSize { size: usize },
    #[error("instructions_per_tick must be at least 1")]
    ZeroIpt,
    #[error("cannot load the boot images")]
    Boot(#[from] BootError),
    #[error("cannot build the devices")]
    Devices(#[from] DeviceError),
    #[error("cannot build the device tree")]
    Fdt(#[from] FdtError),
    #[error("saved hart state refused")]
    CpuState(#[from] CpuStateError),
    #[error("saved RAM has {found} bytes, the configuration asks for {expected}")]
    RamImage { found: usize, expected: usize },
    #[error("saved state has framebuffer {saved:?}, the configuration {configured:?}")]
    FramebufferMismatch { saved: Option<(u32, u32)>, configured: Option<(u32, u32)> },
}

/// Everything about a machine except RAM (which is saved beside it, page by page): what
/// [`Machine::save_state`] returns and [`Machine::from_state`] validates.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MachineState {
    pub cpu: CpuState,
    pub devices: DevicesState,
    /// Framebuffer geometry, which must match the configuration on restore.
    pub framebuffer: Option<(u32, u32)>,
}

/// Why [`Machine::run`] returned.
#[derive(Debug)]
pub enum Exit {
    /// Reached `until`, or the environment asked to yield after an idle period
    /// ([`Environment::yield_after_idle`]).
    Limit,
    /// The guest powered off with this code (0 = success).
    PowerOff(u32),
    /// The guest asked for a reset.
    Reset,
    /// The environment cannot go on.
    Environment(EnvError),
}

/// A view of the framebuffer in guest RAM.
#[derive(Debug, Clone, Copy)]
pub struct Framebuffer<'a> {
    pub width: u32,
    pub height: u32,
    /// Bytes per row.
    pub stride: u32,
    /// `stride * height` bytes, 4 per pixel, `x8r8g8b8` little-endian (B, G, R, X in memory).
    pub pixels: &'a [u8],
}

/// The whole machine.
pub struct Machine {
    pub cpu: Cpu,
    pub bus: Bus,
    fb: Option<FbLayout>,
    /// What [`Machine::reset`] boots again.
    boot: BootConfig,
}

/// The parts of a [`MachineConfig`] a reset needs again (the images are passed back in).
#[derive(Debug, Clone)]
struct BootConfig {
    ram_size: usize,
    cmdline: String,
    framebuffer: Option<(u32, u32)>,
    instructions_per_tick: u64,
    mode: BootMode,
}

/// Fresh RAM with the boot images loaded and a hart ready to enter them.
fn load(
    boot: &BootConfig,
    kernel: &[u8],
    initrd: Option<&[u8]>,
    devices: &Devices,
) -> Result<(Cpu, GuestRam, Option<FbLayout>), MachineError> {
    let size = boot.ram_size;
    let mut ram = GuestRam::new(RAM_BASE, size);
    let mut cpu = Cpu::new(RAM_BASE, boot.instructions_per_tick);
    let fb;
    match boot.mode {
        BootMode::BareMetal => {
            fb = None;
            cpu.pc = boot::load_bare_metal(kernel, &mut ram)?;
        }
        BootMode::Linux => {
            fb = boot::fb_layout(size as u64, boot.framebuffer)?;
            let layout = boot::plan_linux(kernel, initrd.map(<[u8]>::len), size as u64, fb)?;
            let dtb = build_dtb(&boot.cmdline, size as u64, &layout, fb, devices)?;
            if dtb.len() as u64 > boot::DTB_SLOT {
                return Err(BootError::DtbTooLarge { size: dtb.len() }.into());
            }
            // The plan checked that each piece lies inside RAM.
            ram.write(layout.kernel_load, kernel);
            ram.write(layout.dtb_addr, &dtb);
            if let (Some((start, _)), Some(initrd)) = (layout.initrd, initrd) {
                ram.write(start, initrd);
            }
            cpu.setup_for_supervisor(layout.kernel_load, 0, layout.dtb_addr);
        }
    }
    // Loading is not guest activity.
    ram.take_dirty();
    Ok((cpu, ram, fb))
}

impl std::fmt::Debug for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine").field("cpu", &self.cpu).field("fb", &self.fb).finish_non_exhaustive()
    }
}

impl Machine {
    /// Build a machine and load its images.
    pub fn new(config: MachineConfig) -> Result<Machine, MachineError> {
        let size = config.ram_size;
        if size == 0 || !size.is_multiple_of(PAGE_SIZE) || size > (64 << 30) {
            return Err(MachineError::RamSize { size });
        }
        if config.instructions_per_tick == 0 {
            return Err(MachineError::ZeroIpt);
        }
        let mut devices_config = config.devices;
        if config.boot == BootMode::Linux {
            devices_config.framebuffer =
                config.framebuffer.map(|(width, height)| FramebufferConfig { width, height });
        }
        let devices = Devices::new(devices_config)?;
        let boot = BootConfig {
            ram_size: size,
            cmdline: config.cmdline,
            framebuffer: config.framebuffer,
            instructions_per_tick: config.instructions_per_tick,
            mode: config.boot,
        };
        let (cpu, ram, fb) = load(&boot, &config.kernel, config.initrd.as_deref(), &devices)?;
        let bus = Bus::new(ram, devices);
        Ok(Machine { cpu, bus, fb, boot })
    }

    /// The machine's state apart from RAM (see [`MachineState`]). Pair it with a copy of
    /// [`Machine::ram`] to snapshot.
    pub fn save_state(&self) -> MachineState {
        MachineState {
            cpu: self.cpu.save(),
            devices: self.bus.devices.save(),
            framebuffer: self.fb.map(|f| (f.width, f.height)),
        }
    }

    /// Rebuild a machine from a saved state and RAM image. `config` supplies what is not state
    /// (RAM size, framebuffer geometry, device backends such as the disk base); its boot images
    /// are ignored. Decoded blocks and the TLB start empty, which changes nothing observable.
    pub fn from_state(config: MachineConfig, state: &MachineState, ram_image: &[u8]) -> Result<Machine, MachineError> {
        let size = config.ram_size;
        if ram_image.len() != size {
            return Err(MachineError::RamImage { found: ram_image.len(), expected: size });
        }
        let mut ram = GuestRam::new(RAM_BASE, size);
        ram.as_mut_slice().copy_from_slice(ram_image);
        Machine::from_state_with_ram(config, state, ram)
    }

    /// Reboot after [`Exit::Reset`]: devices back to their reset state (the disk keeps its
    /// copy-on-write overlay, as a real disk keeps what was written), RAM cleared and the boot
    /// images loaded again, the hart at its entry point with the instruction count at zero. The
    /// configuration (RAM size, command line, framebuffer, speed, boot mode) is the one the
    /// machine was built with; `kernel` and `initrd` are the images to boot.
    pub fn reset(&mut self, kernel: &[u8], initrd: Option<&[u8]>) -> Result<(), MachineError> {
        let boot = self.boot.clone();
        self.bus.devices.reset();
        // The old RAM goes first, so a reset never holds two guests' memory at once.
        self.bus.ram = GuestRam::new(RAM_BASE, PAGE_SIZE);
        let (mut cpu, ram, fb) = load(&boot, kernel, initrd, &self.bus.devices)?;
        cpu.trace = self.cpu.trace.take();
        self.cpu = cpu;
        self.bus.ram = ram;
        self.bus.request = MachineRequest::None;
        self.fb = fb;
        Ok(())
    }

    /// Turn the instruction trace on or off. While on, every executed instruction is recorded
    /// (see [`crate::cpu::TraceEntry`]) until [`Machine::take_trace`] collects them; the machine
    /// runs one instruction per block then, so tracing is for debugging, not for speed.
    pub fn set_trace(&mut self, on: bool) {
        self.cpu.trace = on.then(Vec::new);
    }

    /// The instructions traced since the last call (empty when tracing is off).
    pub fn take_trace(&mut self) -> Vec<crate::cpu::TraceEntry> {
        self.cpu.trace.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// [`Machine::from_state`] with RAM the caller provides (already holding the snapshot's
    /// contents, or filled on demand behind the machine's back, as a userfaultfd handler does).
    pub fn from_state_with_ram(config: MachineConfig, state: &MachineState, ram: GuestRam) -> Result<Machine, MachineError> {
        let size = config.ram_size;
        if ram.size() != size || ram.base() != RAM_BASE {
            return Err(MachineError::RamImage { found: ram.size(), expected: size });
        }
        let configured = match config.boot {
            BootMode::Linux => config.framebuffer,
            BootMode::BareMetal => None,
        };
        if configured != state.framebuffer {
            return Err(MachineError::FramebufferMismatch { saved: state.framebuffer, configured });
        }
        let fb = boot::fb_layout(size as u64, configured)?;
        let mut devices_config = config.devices;
        devices_config.framebuffer = configured.map(|(width, height)| FramebufferConfig { width, height });
        let devices = Devices::restore(devices_config, &state.devices)?;
        let cpu = Cpu::restore((), &state.cpu)?;
        let boot = BootConfig {
            ram_size: size,
            cmdline: config.cmdline,
            framebuffer: config.framebuffer,
            instructions_per_tick: config.instructions_per_tick,
            mode: config.boot,
        };
        Ok(Machine { cpu, bus: Bus::new(ram, devices), fb, boot })
    }

    /// Instructions retired (steps taken) since reset.
    pub fn icount(&self) -> InstructionCount {
        self.cpu.icount
    }

    /// Guest time in ticks.
    pub fn now(&self) -> Ticks {
        self.cpu.now()
    }

    pub fn ram(&self) -> &GuestRam {
        &self.bus.ram
    }

    /// RAM, writable. Writes through [`GuestRam::write`] keep dirty and code tracking right.
    pub fn ram_mut(&mut self) -> &mut GuestRam {
        &mut self.bus.ram
    }

    /// Run until instruction count `until`, a power-off or reset, or an environment error.
    pub fn run(&mut self, env: &mut dyn Environment, until: InstructionCount) -> Exit {
        loop {
            if self.cpu.icount >= until {
                return Exit::Limit;
            }
            let icount = self.cpu.icount;
            loop {
                match env.poll(icount) {
                    Ok(Some(ev)) => self.apply_event(ev, env),
                    Ok(None) => break,
                    Err(e) => return Exit::Environment(e),
                }
            }
            self.refresh_irqs();
            let mut end = until;
            if let Some(n) = env.next_event_at() {
                if n > icount {
                    end = end.min(n);
                }
            }
            if let Some(t) = self.timer_deadline() {
                end = end.min(t);
            }
            while self.cpu.icount < end {
                let budget = end - self.cpu.icount;
                match self.cpu.run_block(&mut self.bus, env, budget) {
                    BlockExit::Ran => {}
                    BlockExit::Resync => {
                        if let Some(exit) = self.take_request() {
                            return exit;
                        }
                        self.refresh_irqs();
                        if let Some(t) = self.timer_deadline() {
                            end = end.min(t);
                        }
                        end = self.clamp_to_env(env, end);
                    }
                    BlockExit::Sbi => {
                        match sbi::handle(&mut self.cpu, &mut self.bus.ram, env) {
                            Some(SbiRequest::PowerOff(code)) => return Exit::PowerOff(code),
                            Some(SbiRequest::Reset) => return Exit::Reset,
                            None => {}
                        }
                        if let Some(t) = self.timer_deadline() {
                            end = end.min(t);
                        }
                        end = self.clamp_to_env(env, end);
                    }
                    BlockExit::Wfi => break,
                }
            }
            if self.cpu.wfi {
                if let Err(e) = self.idle(env) {
                    return Exit::Environment(e);
                }
                if env.yield_after_idle() {
                    return Exit::Limit;
                }
            }
        }
    }

    /// A device access or SBI call may have consumed what the environment had due at this
    /// instruction (a replayer's entropy record); the slice then ends at its next one.
    fn clamp_to_env(&self, env: &dyn Environment, end: InstructionCount) -> InstructionCount {
        match env.next_event_at() {
            Some(n) if n > self.cpu.icount => end.min(n),
            _ => end,
        }
    }

    /// The hart waits in WFI: wake it if something is pending, else let the environment decide
    /// how much guest time passes.
    fn idle(&mut self, env: &mut dyn Environment) -> Result<(), EnvError> {
        self.refresh_irqs();
        if self.cpu.wake_pending() {
            self.cpu.wfi = false;
            return Ok(());
        }
        let now = self.cpu.now();
        let deadline = self.next_timer_tick();
        let ticks = env.idle(IdleState { icount: self.cpu.icount, now, deadline })?;
        let ticks = match deadline {
            Some(d) => ticks.min(d.saturating_sub(now)),
            None => ticks,
        };
        self.cpu.warp += ticks;
        Ok(())
    }

    /// Apply an input event from the environment.
    fn apply_event(&mut self, ev: InputEvent, env: &mut dyn Environment) {
        let mut ctx = MmioCtx { icount: self.cpu.icount, now: self.cpu.now(), env };
        self.bus.devices.inject(ev, &mut self.bus.ram, &mut ctx);
    }

    fn take_request(&mut self) -> Option<Exit> {
        match std::mem::take(&mut self.bus.request) {
            MachineRequest::None => None,
            MachineRequest::PowerOff(code) => Some(Exit::PowerOff(code)),
            MachineRequest::Reset => Some(Exit::Reset),
        }
    }

    /// Interrupt lines driven by devices, at the current time.
    fn device_lines(&self) -> u64 {
        let irq = self.bus.devices.interrupts();
        let mut lines = 0;
        if irq.msip {
            lines |= IRQ_MSI;
        }
        if irq.meip {
            lines |= IRQ_MEI;
        }
        if irq.seip {
            lines |= IRQ_SEI;
        }
        if self.cpu.now() >= self.bus.devices.mtimecmp() {
            lines |= IRQ_MTI;
        }
        lines
    }

    /// `mtimecmp` of the CLINT, when armed.
    fn mtimecmp(&self) -> Option<Ticks> {
        let t = self.bus.devices.mtimecmp();
        (t != u64::MAX).then_some(t)
    }

    fn refresh_irqs(&mut self) {
        let lines = self.device_lines();
        self.cpu.set_ext_irq(lines);
    }

    /// The next tick at which a timer comparator not yet reached fires.
    fn next_timer_tick(&self) -> Option<Ticks> {
        let now = self.cpu.now();
        [self.mtimecmp(), self.cpu.stimecmp_deadline()].into_iter().flatten().filter(|&t| t > now).min()
    }

    /// The instruction count at which the next timer comparator is reached.
    fn timer_deadline(&self) -> Option<InstructionCount> {
        self.next_timer_tick().map(|t| self.cpu.icount_at_tick(t))
    }

    /// blake3 over the hart, RAM and device states.
    pub fn state_hash(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(&persist::encode(&self.cpu.save()));
        h.update(self.bus.ram.as_slice());
        h.update(&persist::encode(&self.bus.devices.save()));
        *h.finalize().as_bytes()
    }

    /// Pages dirtied since the last call (bitmap, see [`GuestRam::take_dirty`]); the TLB's write
    /// entries are dropped so the next store to each page marks it again.
    pub fn take_dirty(&mut self) -> Vec<u64> {
        self.cpu.flush_write_entries();
        self.bus.ram.take_dirty()
    }

    /// The display's own view of framebuffer damage: pages of the framebuffer written since the
    /// last call (bitmap relative to its first page, see [`GuestRam::take_dirty_range`]), without
    /// taking the bits from [`Machine::take_dirty`]'s consumer (snapshots, migration). Empty
    /// without a framebuffer. Changes no guest-visible state.
    pub fn take_framebuffer_dirty(&mut self) -> Vec<u64> {
        let Some(fb) = self.fb else { return Vec::new() };
        let (Some(off), Ok(size)) = (fb.addr.checked_sub(self.bus.ram.base()), usize::try_from(fb.size)) else {
            return Vec::new();
        };
        let Ok(off) = usize::try_from(off) else { return Vec::new() };
        self.cpu.flush_write_entries();
        self.bus.ram.take_dirty_range(off / PAGE_SIZE, size.div_ceil(PAGE_SIZE))
    }

    /// The framebuffer, if configured.
    pub fn framebuffer(&self) -> Option<Framebuffer<'_>> {
        let fb = self.fb?;
        let off = self.bus.ram.offset_of(fb.addr, usize::try_from(fb.size).ok()?)?;
        let len = usize::try_from(u64::from(fb.stride) * u64::from(fb.height)).ok()?;
        Some(Framebuffer {
            width: fb.width,
            height: fb.height,
            stride: fb.stride,
            pixels: &self.bus.ram.as_slice()[off..off + len],
        })
    }

    /// Where the hart is, for error messages: pc, privilege, instruction, last trap.
    pub fn location(&self) -> String {
        let c = &self.cpu;
        let insn = match c.peek_insn(&self.bus.ram) {
            Some(w) if w <= 0xffff => format!("{w:#06x}"),
            Some(w) => format!("{w:#010x}"),
            None => "<unreadable>".to_string(),
        };
        let trap = match c.last_trap {
            Some(t) => format!(
                "{} {} at pc={:#x} tval={:#x} (icount {})",
                if t.interrupt { "interrupt" } else { "exception" },
                t.cause,
                t.epc,
                t.tval,
                t.icount
            ),
            None => "none".to_string(),
        };
        format!(
            "pc={:#x} priv={} insn={} icount={} last trap: {}",
            c.pc,
            c.prv.letter(),
            insn,
            c.icount,
            trap
        )
    }
}

/// The device tree for a Linux boot, from the platform description in `fdt.rs`.
fn build_dtb(
    cmdline: &str,
    ram_size: u64,
    layout: &boot::LinuxLayout,
    fb: Option<FbLayout>,
    devices: &Devices,
) -> Result<Vec<u8>, FdtError> {
    fdt::build(&FdtConfig {
        ram_base: RAM_BASE,
        ram_size,
        cmdline: cmdline.to_string(),
        initrd: layout.initrd,
        framebuffer: fb.map(|f| FramebufferConfig { width: f.width, height: f.height }),
        virtio: devices.virtio_slots(),
        timebase: crate::TIMEBASE_HZ,
        isa: fdt::DEFAULT_ISA.to_string(),
    })
}

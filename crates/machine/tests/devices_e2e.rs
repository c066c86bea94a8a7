//! The platform devices driven by the real CPU: a bare-metal M-mode program
//! (`tests/data/virtio_blk_baremetal.S`, prebuilt to `.bin` so this test needs no cross
//! toolchain) prints through the UART, sets up virtio-blk in slot 0 like a driver, reads sector 0,
//! writes sector 1 and powers off through the syscon.

use doppel_machine::devices::{DevicesConfig, MemDisk};
use doppel_machine::machine::{BootMode, Exit, Machine, MachineConfig};
use doppel_machine::{EnvError, Environment, IdleState, InputEvent, InstructionCount, NullEnvironment, Output, Ticks};

#[test]
fn bare_metal_program_reads_and_writes_the_disk_through_virtio_mmio() {
    let mut base = vec![0u8; 64 * 1024];
    base[0] = b'D';
    let config = MachineConfig {
        ram_size: 1 << 20,
        kernel: include_bytes!("data/virtio_blk_baremetal.bin").to_vec(),
        framebuffer: None,
        boot: BootMode::BareMetal,
        devices: DevicesConfig { disk: Some(Box::new(MemDisk(base.clone()))), ..Default::default() },
        ..Default::default()
    };
    let mut m = Machine::new(config).unwrap();
    let mut env = NullEnvironment::default();
    let exit = m.run(&mut env, 100_000);
    assert!(matches!(exit, Exit::PowerOff(0)), "{exit:?} at {}; console {:?}", m.location(), env.console);
    assert_eq!(env.console, b"UD", "UART output, then the first byte of sector 0");
    let block = m.bus.devices.block().unwrap();
    let page = block.overlay().page(0).expect("sector 1 landed in overlay page 0");
    assert_eq!(page[0], b'D', "the rest of the page comes from the base");
    assert!(page[512..1024].iter().all(|&b| b == b'W'));
    assert!(page[1024..].iter().all(|&b| b == 0));
    assert_eq!(block.overlay().len(), 1);
}

/// Types `typed` on the console at the first poll; otherwise like [`NullEnvironment`].
struct Typist {
    typed: Option<Vec<u8>>,
    inner: NullEnvironment,
}

impl Environment for Typist {
    fn poll(&mut self, _icount: InstructionCount) -> Result<Option<InputEvent>, EnvError> {
        Ok(self.typed.take().map(InputEvent::UartRx))
    }
    fn idle(&mut self, state: IdleState) -> Result<Ticks, EnvError> {
        self.inner.idle(state)
    }
    fn entropy(&mut self, icount: InstructionCount, buf: &mut [u8]) {
        self.inner.entropy(icount, buf);
    }
    fn output(&mut self, icount: InstructionCount, output: Output<'_>) {
        self.inner.output(icount, output);
    }
}

#[test]
fn uart_receive_interrupts_reach_the_hart_through_the_plic() {
    let config = MachineConfig {
        ram_size: 1 << 20,
        kernel: include_bytes!("data/uart_irq_baremetal.bin").to_vec(),
        framebuffer: None,
        boot: BootMode::BareMetal,
        devices: DevicesConfig { net: false, input: false, rng: false, ..Default::default() },
        ..Default::default()
    };
    let mut m = Machine::new(config).unwrap();
    // Typed before the program enabled anything: the level-triggered line is high as soon as IER
    // and the PLIC allow, and stays high (one interrupt per byte) until the FIFO is empty.
    let mut env = Typist { typed: Some(b"abcq".to_vec()), inner: NullEnvironment::default() };
    let exit = m.run(&mut env, 100_000);
    assert!(matches!(exit, Exit::PowerOff(0)), "{exit:?} at {}; console {:?}", m.location(), env.inner.console);
    assert_eq!(env.inner.console, b"bcdr");
}

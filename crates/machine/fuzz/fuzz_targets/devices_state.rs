//! Untrusted snapshot state: arbitrary bytes decoded as `DevicesState` and restored must be
//! refused with an error or give devices that survive a round of register accesses and
//! notifications without panicking.
#![no_main]

use doppel_machine::bus::{Bus, MmioCtx, VIRTIO_BASE, VIRTIO_STRIDE};
use doppel_machine::devices::{Devices, DevicesConfig, DevicesState, MemDisk};
use doppel_machine::persist::{decode, Persist};
use doppel_machine::{GuestRam, NullEnvironment};
use libfuzzer_sys::fuzz_target;

fn config() -> DevicesConfig {
    DevicesConfig { disk: Some(Box::new(MemDisk(vec![0x5a; 8192]))), ..Default::default() }
}

fuzz_target!(|data: &[u8]| {
    let Ok(state) = decode::<DevicesState>(data) else { return };
    let Ok(devices) = Devices::restore(config(), &state) else { return };
    let mut bus = Bus::new(GuestRam::new(0x8000_0000, 64 * 1024), devices);
    let mut env = NullEnvironment::default();
    let mut ctx = MmioCtx { icount: 0, now: 0, env: &mut env };
    for slot in 0..5 {
        let base = VIRTIO_BASE + slot * VIRTIO_STRIDE;
        for q in 0..2 {
            let _ = bus.mmio_write(base + 0x50, 4, q, &mut ctx);
        }
        let _ = bus.mmio_read(base + 0x100, 4, &mut ctx);
    }
    let _ = bus.mmio_read(0x0c20_1004, 4, &mut ctx);
    let _ = bus.mmio_read(0x1000_0000, 1, &mut ctx);
    let _ = bus.devices.interrupts();
    let again = bus.devices.save();
    // A restored state saves back to something restorable.
    assert!(Devices::restore(config(), &again).is_ok());
});

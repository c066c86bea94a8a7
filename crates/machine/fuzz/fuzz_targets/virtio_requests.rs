//! Arbitrary guest RAM under live virtio devices (block, net, rng): after the driver set them up,
//! the guest scribbles over everything, rings included, and notifies every queue. The devices must
//! never panic or hang; at worst they enter DEVICE_NEEDS_RESET. The base image must stay unchanged.
//!
//! Input layout: byte 0 selects the device, the rest is written over the first bytes of RAM.
#![no_main]

use doppel_machine::bus::MmioCtx;
use doppel_machine::devices::virtio::mock::{self, MockQueue};
use doppel_machine::devices::virtio::{VirtioBackend, VirtioMmio, VIRTIO_F_VERSION_1};
use doppel_machine::devices::virtio_blk::{Block, MemDisk};
use doppel_machine::devices::virtio_net::Net;
use doppel_machine::devices::virtio_rng::Rng;
use doppel_machine::{GuestRam, NullEnvironment};
use libfuzzer_sys::fuzz_target;

const RAM_BASE: u64 = 0x8000_0000;
const RAM_SIZE: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else { return };
    let backend = match which % 3 {
        0 => VirtioBackend::Block(Block::new(Box::new(MemDisk(vec![0x5a; 16 * 1024])))),
        1 => VirtioBackend::Net(Net::new([2, 0, 0, 0, 0, 1])),
        _ => VirtioBackend::Rng(Rng),
    };
    let mut ram = GuestRam::new(RAM_BASE, RAM_SIZE);
    let mut env = NullEnvironment::default();
    let mut ctx = MmioCtx { icount: 0, now: 0, env: &mut env };
    let mut dev = VirtioMmio::new(backend);
    let q0 = MockQueue::new(&mut ram, RAM_BASE, 16);
    let q1 = MockQueue::new(&mut ram, RAM_BASE + 0x800, 16);
    let features = dev.device_features();
    mock::activate(&mut dev, &mut ram, &mut ctx, features | VIRTIO_F_VERSION_1, &[&q0, &q1]);
    let _ = ram.write(RAM_BASE, &body[..body.len().min(RAM_SIZE)]);
    for round in 0..4 {
        mock::notify(&mut dev, &mut ram, &mut ctx, round % 2);
    }
    if let VirtioBackend::Block(b) = dev.backend_mut() {
        // Every read of the disk stays within it and succeeds.
        let mut buf = [0u8; 512];
        let _ = b.read_disk(0, &mut buf);
    }
});

use super::device::Rng;
use crate::devices::DeviceError;
use crate::persist::Persist;

impl Persist for Rng {
    type State = ();
    type ConstructorArgs = ();
    type Error = DeviceError;

    fn save(&self) {}

    fn restore(_args: (), _state: &()) -> Result<Self, DeviceError> {
        Ok(Rng)
    }
}

#[cfg(test)]
mod tests {
    use crate::bus::MmioCtx;
    use crate::devices::virtio::mock::{self, MockQueue};
    use crate::devices::virtio::{VirtioBackend, VirtioMmio, VIRTIO_F_VERSION_1};
    use crate::devices::virtio_rng::Rng;
    use crate::env::NullEnvironment;
    use crate::persist::Persist;
    use crate::ram::GuestRam;

    /// The queue position survives: after restore the device continues at the next chain.
    #[test]
    fn round_trip_keeps_the_queue_position() {
        const RAM: u64 = 0x8000_0000;
        let mut ram = GuestRam::new(RAM, 1 << 20);
        let mut env = NullEnvironment::default();
        let mut ctx = MmioCtx { icount: 0, now: 0, env: &mut env };
        let mut q = MockQueue::new(&mut ram, RAM, 8);
        let mut d = VirtioMmio::new(VirtioBackend::Rng(Rng));
        mock::activate(&mut d, &mut ram, &mut ctx, VIRTIO_F_VERSION_1, &[&q]);
        for _ in 0..3 {
            q.add_chain(&mut ram, &[(RAM + 0x8000, 8, true)]);
        }
        mock::notify(&mut d, &mut ram, &mut ctx, 0);
        let state = d.save();
        assert_eq!(state.queues[0].next_avail, 3);
        q.add_chain(&mut ram, &[(RAM + 0x8000, 8, true)]);
        mock::notify(&mut d, &mut ram, &mut ctx, 0);
        let mut r = VirtioMmio::restore(VirtioBackend::Rng(Rng), &state).unwrap();
        assert_eq!(r.save(), state);
        // The fourth chain is served again by the restored device, as the snapshot implies.
        mock::notify(&mut r, &mut ram, &mut ctx, 0);
        assert_eq!(r.save().queues[0].next_avail, 4);
        // RAM was not rolled back, so the restored device rewrites used entry 3 and index 4.
        assert_eq!(q.take_used(&ram).len(), 4);
    }
}

//! `doppel netem`: a userspace WAN link emulator (delay, jitter, rate, queue, loss).

/// Counters for the network device; observations only, not part of the snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetMetrics {
    pub rx_frames: u64,
    pub tx_frames: u64,
    /// Received frames dropped: backlog full, too large, or larger than the posted buffer.
    pub rx_dropped: u64,
    /// Transmit chains too large or too short to hold a header, returned unsent.
    pub tx_dropped: u64,
}

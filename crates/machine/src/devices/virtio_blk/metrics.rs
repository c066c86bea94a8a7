/// Counters for the device; observations only, not part of the snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockMetrics {
    pub reads: u64,
    pub writes: u64,
    pub flushes: u64,
    pub errors: u64,
    /// Chains without room for a status byte, returned unanswered.
    pub dropped: u64,
}

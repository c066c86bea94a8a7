/// Counters for the device; observations only, not part of the snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InputMetrics {
    pub events: u64,
    /// Reports dropped because the pending queue was full.
    pub dropped_reports: u64,
}

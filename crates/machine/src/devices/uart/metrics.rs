/// Counters for the UART; observations only, not part of the snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UartMetrics {
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    /// Received bytes dropped because the receive buffer was full.
    pub rx_dropped: u64,
}

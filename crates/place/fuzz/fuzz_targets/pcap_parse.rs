//! The pcap reader and flow grouping must never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(cap) = doppel_place::pcap::parse(data) {
        let desktop = cap.packets.first().map_or(std::net::IpAddr::from([10, 0, 0, 2]), |p| p.src);
        let cfg = doppel_place::fingerprint::FingerprintConfig::default();
        for (_, recs) in doppel_place::pcap::flows_by_window(&cap, desktop, 0.0, 1.0) {
            let _ = doppel_place::fingerprint::window_metrics(&cfg, &recs);
        }
    }
});

//! Scenario parsing and validation must never panic; a valid scenario must plan without panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(sc) = doppel_place::Scenario::from_json(text) else { return };
    let Ok(m) = doppel_place::Model::new(&sc) else { return };
    if m.desktops.len() <= 64 && m.sites.len() <= 16 {
        for algo in doppel_place::Algo::ALL {
            let _ = doppel_place::heuristic(&m, algo);
        }
    }
});

//! Helpers for building small scenarios by hand.
#![allow(dead_code)]

use std::collections::BTreeMap;

use doppel_place::model::{
    BenefitWeights, DesktopSpec, LocationSpec, Scenario, SiteSpec, Thresholds,
};

pub fn site(name: &str, global: bool, slots: f64) -> SiteSpec {
    SiteSpec {
        name: name.into(),
        global,
        slots,
        mem_gb: 1000.0,
        disk_gb: 1000.0,
    }
}

pub fn loc(name: &str, lat: &[(&str, f64)]) -> LocationSpec {
    LocationSpec {
        name: name.into(),
        latency_ms: lat
            .iter()
            .map(|&(s, l)| (s.to_string(), l))
            .collect::<BTreeMap<_, _>>(),
    }
}

pub fn desk(name: &str, rank: f64, site: &str, user: &str) -> DesktopSpec {
    DesktopSpec {
        name: name.into(),
        rank,
        mem_gb: 1.0,
        disk_gb: 9.0,
        dirty_rate: 0.0,
        site: site.into(),
        user: user.into(),
        moved_at_s: None,
        low_since_s: None,
    }
}

pub fn scenario(
    sites: Vec<SiteSpec>,
    locations: Vec<LocationSpec>,
    desktops: Vec<DesktopSpec>,
) -> Scenario {
    Scenario {
        thresholds: Thresholds {
            high: 0.5,
            low: 0.2,
        },
        k: 10,
        weights: BenefitWeights::default(),
        cost_weight: 0.0,
        migration_budget: None,
        now_s: None,
        hysteresis: None,
        sites,
        locations,
        desktops,
    }
}

/// `(desktop, from, to)` of each move, in order.
pub fn moves(p: &doppel_place::Plan) -> Vec<(String, String, String)> {
    p.moves
        .iter()
        .map(|m| (m.desktop.clone(), m.from.clone(), m.to.clone()))
        .collect()
}

pub fn mv(d: &str, from: &str, to: &str) -> (String, String, String) {
    (d.into(), from.into(), to.into())
}

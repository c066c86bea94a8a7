//! Synthetic scenarios for tests and the Figure-11 benchmark, from a seed (same seed, same
//! scenario, on every platform).
//!
//! Sites lie at random points of a 5000 km square; one in eight (at least one) is a large global
//! site, the rest small regional ones. User locations cluster around random sites. Latency is
//! `2 ms + 1 ms per 100 km` times a per-pair factor in `[1, 1.3)`. Regional sites are short of room
//! for the desktops near them, so many candidates compete — a stress test in the paper's spirit.
//! Desktops start at random sites with room, most at global sites.

use std::collections::BTreeMap;

use crate::model::{BenefitWeights, DesktopSpec, LocationSpec, Scenario, SiteSpec, Thresholds};

/// SplitMix64: tiny, portable, good enough for workloads.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, 1)`.
    pub fn f64(&mut self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let x = (self.next_u64() >> 11) as f64;
        x / (1u64 << 53) as f64
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        let n64 = n as u64;
        // The result is below n, so it fits in usize.
        #[allow(clippy::cast_possible_truncation)]
        let r = (self.next_u64() % n64) as usize;
        r
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenOptions {
    pub vms: usize,
    pub sites: usize,
    pub seed: u64,
    pub k: usize,
    pub cost_weight: f64,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            vms: 100,
            sites: 8,
            seed: 1,
            k: 5,
            cost_weight: 0.0,
        }
    }
}

/// Makes a scenario. `sites` is at least 1.
pub fn generate(o: GenOptions) -> Scenario {
    let mut rng = Rng::new(o.seed ^ 0x5eed_0fd0_99e1);
    let m = o.sites.max(1);
    let n = o.vms;
    let globals = (m / 8).max(1);
    let pos: Vec<(f64, f64)> = (0..m)
        .map(|_| (rng.f64() * 5000.0, rng.f64() * 5000.0))
        .collect();
    let n_loc = (2 * m).max(2);
    let locs: Vec<(f64, f64)> = (0..n_loc)
        .map(|_| {
            let (x, y) = pos[rng.below(m)];
            (x + (rng.f64() - 0.5) * 600.0, y + (rng.f64() - 0.5) * 600.0)
        })
        .collect();
    let names: Vec<String> = (0..m)
        .map(|i| {
            if i < globals {
                format!("g{i}")
            } else {
                format!("r{i}")
            }
        })
        .collect();
    let locations: Vec<LocationSpec> = locs
        .iter()
        .enumerate()
        .map(|(i, &(x, y))| {
            let latency_ms: BTreeMap<String, f64> = pos
                .iter()
                .zip(&names)
                .map(|(&(sx, sy), name)| {
                    let km = ((x - sx).powi(2) + (y - sy).powi(2)).sqrt();
                    let ms = (2.0 + km / 100.0) * (1.0 + 0.3 * rng.f64());
                    (name.clone(), (ms * 100.0).round() / 100.0)
                })
                .collect();
            LocationSpec {
                name: format!("loc{i}"),
                latency_ms,
            }
        })
        .collect();
    #[allow(clippy::cast_precision_loss)]
    let (nf, regional) = (n as f64, (m - globals).max(1) as f64);
    // Global sites together hold every desktop; regional ones a third of them, spread thin.
    let global_slots = (nf / globals as f64).ceil() + 1.0;
    let regional_slots = (nf / 3.0 / regional).ceil().max(1.0);
    let mut sites: Vec<SiteSpec> = (0..m)
        .map(|i| {
            let slots = if i < globals {
                global_slots
            } else {
                regional_slots
            };
            SiteSpec {
                name: names[i].clone(),
                global: i < globals,
                slots,
                mem_gb: (slots * 260.0).round() / 100.0,
                disk_gb: slots * 26.0,
            }
        })
        .collect();
    let mut used = vec![[0.0f64; 3]; m];
    let mut desktops = Vec::with_capacity(n);
    for i in 0..n {
        let mem = [1.0, 2.0, 2.0, 4.0][rng.below(4)];
        let disk = (5.0 + rng.f64() * 35.0).round();
        let size = [1.0, mem, disk];
        let user = rng.below(n_loc);
        // Mostly at a global site; otherwise a random regional one with room.
        let pick = if rng.f64() < 0.7 || m == globals {
            rng.below(globals)
        } else {
            globals + rng.below(m - globals)
        };
        let site = (0..m).map(|j| (pick + j) % m).chain(0..globals).find(|&s| {
            (0..3).all(|d| {
                used[s][d] + size[d] <= [sites[s].slots, sites[s].mem_gb, sites[s].disk_gb][d]
            })
        });
        let site = site.unwrap_or_else(|| {
            // Nowhere to put it (rare): grow the first global site.
            let g = &mut sites[0];
            g.slots = g.slots.max(used[0][0] + 1.0);
            g.mem_gb = g.mem_gb.max(used[0][1] + mem);
            g.disk_gb = g.disk_gb.max(used[0][2] + disk);
            0
        });
        for d in 0..3 {
            used[site][d] += size[d];
        }
        desktops.push(DesktopSpec {
            name: format!("d{i}"),
            rank: (rng.f64() * 1000.0).round() / 1000.0,
            mem_gb: mem,
            disk_gb: disk,
            dirty_rate: (rng.f64() * 50.0).round() / 100.0,
            site: names[site].clone(),
            user: format!("loc{user}"),
            moved_at_s: None,
            low_since_s: None,
        });
    }
    Scenario {
        thresholds: Thresholds {
            high: 0.3,
            low: 0.15,
        },
        k: o.k.max(1),
        weights: BenefitWeights::default(),
        cost_weight: o.cost_weight,
        migration_budget: None,
        now_s: None,
        hysteresis: None,
        sites,
        locations,
        desktops,
    }
}

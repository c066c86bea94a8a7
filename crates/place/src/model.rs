//! The placement model: sites, user locations, the latency matrix and desktops, read from a JSON
//! scenario and validated into an index-based [`Model`] the algorithms work on.
//!
//! Definitions follow VMShadow (Guo et al.), section 5:
//! - a desktop whose rank is above `T_h` is a *relocation candidate*; its possible new homes are
//!   the `k` sites closest to its user by latency, in latency order, that are strictly closer than
//!   its current site (a candidate already at its best site has none and drops out);
//! - a desktop at a regional (non-global) site whose rank is below `T_l` is *reclaimable*: it may be
//!   evicted back to a global site to make room;
//! - benefit `B = w1·(l1−l2) + w2·100·(l1−l2)/l1` (equation 1), cost
//!   `C = (S_disk + S_mem) / (1 − r)` (equation 2).
//!
//! Hysteresis (section 5.1, "Avoiding oscillations") is optional: with `now_s` and
//! `hysteresis` set, a desktop moved less than `move_s` ago is not a relocation candidate and one
//! whose rank has been low for less than `evict_s` is not reclaimable.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// Resource dimensions a site offers and a desktop consumes: slots, memory (GB), disk (GB).
pub const DIMS: usize = 3;
/// Names of the resource dimensions, for messages.
pub const DIM_NAMES: [&str; DIMS] = ["slots", "mem_gb", "disk_gb"];

/// A scenario as written in JSON (names, not indices).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Rank thresholds `T_h` (relocation) and `T_l` (eviction).
    pub thresholds: Thresholds,
    /// How many closest sites (by latency) a relocation candidate considers.
    pub k: usize,
    /// Weights of the benefit metric; the paper's are `w1 = 0.6`, `w2 = 0.4`.
    #[serde(default)]
    pub weights: BenefitWeights,
    /// Weight of migration cost in the ILP objective (and in the improved heuristic's score):
    /// objective = Σ benefit − `cost_weight` · Σ cost.
    #[serde(default = "default_cost_weight")]
    pub cost_weight: f64,
    /// Optional limit on the total migration cost of a plan (evictions included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_budget: Option<f64>,
    /// The current time in seconds, for hysteresis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now_s: Option<f64>,
    /// Hysteresis durations `T` (after a move) and `T'` (low rank before eviction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hysteresis: Option<Hysteresis>,
    pub sites: Vec<SiteSpec>,
    pub locations: Vec<LocationSpec>,
    pub desktops: Vec<DesktopSpec>,
}

fn default_cost_weight() -> f64 {
    0.0
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// `T_h`: desktops ranked above it are relocation candidates.
    pub high: f64,
    /// `T_l`: desktops at regional sites ranked below it are reclaimable.
    pub low: f64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BenefitWeights {
    pub w1: f64,
    pub w2: f64,
}

impl Default for BenefitWeights {
    fn default() -> Self {
        Self { w1: 0.6, w2: 0.4 }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Hysteresis {
    /// `T`: a desktop moved less than this long ago is left alone.
    pub move_s: f64,
    /// `T'`: a desktop must have been low-ranked this long before it can be evicted.
    pub evict_s: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SiteSpec {
    pub name: String,
    /// A large global site (eviction target) rather than a small regional one.
    pub global: bool,
    pub slots: f64,
    pub mem_gb: f64,
    pub disk_gb: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LocationSpec {
    pub name: String,
    /// Latency in ms from this user location to every site, by site name.
    pub latency_ms: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DesktopSpec {
    pub name: String,
    /// Location-sensitivity rank (see `fingerprint`).
    pub rank: f64,
    pub mem_gb: f64,
    pub disk_gb: f64,
    /// Dirtying rate relative to the network bandwidth, `0 ≤ r < 1`.
    pub dirty_rate: f64,
    /// Current site.
    pub site: String,
    /// The user's location.
    pub user: String,
    /// When the desktop last moved (seconds), for hysteresis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_at_s: Option<f64>,
    /// Since when its rank has been below `T_l` (seconds), for hysteresis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_since_s: Option<f64>,
}

/// What is wrong with a scenario; `field` is a JSON path such as `desktops[3].site`.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("scenario JSON at `{path}`: {message}")]
    Json { path: String, message: String },
    #[error("scenario field `{field}`: {problem}")]
    Invalid { field: String, problem: String },
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

impl Scenario {
    /// Parses JSON; errors carry the path of the offending field.
    pub fn from_json(text: &str) -> Result<Self, ScenarioError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            ScenarioError::Json {
                path,
                message: e.into_inner().to_string(),
            }
        })
    }

    pub fn to_json(&self) -> String {
        // Serialising plain structs of strings and numbers cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// A site, by index.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub name: String,
    pub global: bool,
    pub capacity: [f64; DIMS],
}

/// A desktop, by index.
#[derive(Debug, Clone, PartialEq)]
pub struct Desktop {
    pub name: String,
    pub rank: f64,
    /// Slots (always 1), memory and disk.
    pub size: [f64; DIMS],
    pub dirty_rate: f64,
    pub site: usize,
    pub user: usize,
    /// Passed the relocation test (rank above `T_h`, not within hysteresis).
    pub relocatable: bool,
    /// Passed the eviction test (regional site, rank below `T_l`, low for long enough).
    pub reclaimable: bool,
}

/// A validated scenario with everything resolved to indices and precomputed per desktop.
#[derive(Debug, Clone)]
pub struct Model {
    pub sites: Vec<Site>,
    pub location_names: Vec<String>,
    /// `latency[location][site]` in ms.
    pub latency: Vec<Vec<f64>>,
    pub desktops: Vec<Desktop>,
    pub thresholds: Thresholds,
    pub k: usize,
    pub weights: BenefitWeights,
    pub cost_weight: f64,
    pub migration_budget: Option<f64>,
    /// Relocation targets per desktop: of the `k` closest sites, those strictly closer than the
    /// current one, closest first (ties by site index). Empty for non-candidates.
    pub targets: Vec<Vec<usize>>,
    /// Global sites per desktop ordered by latency, current site excluded (reclaimable only).
    pub eviction_targets: Vec<Vec<usize>>,
}

fn check_num(field: &str, v: f64, min: f64) -> Result<(), ScenarioError> {
    if !v.is_finite() {
        return Err(invalid(field, format!("must be a finite number, got {v}")));
    }
    if v < min {
        return Err(invalid(field, format!("must be at least {min}, got {v}")));
    }
    Ok(())
}

impl Model {
    /// Validates a scenario. Every error names the offending field.
    pub fn new(sc: &Scenario) -> Result<Self, ScenarioError> {
        for (f, v) in [
            ("thresholds.high", sc.thresholds.high),
            ("thresholds.low", sc.thresholds.low),
        ] {
            check_num(f, v, f64::NEG_INFINITY)?;
        }
        if sc.thresholds.low > sc.thresholds.high {
            return Err(invalid("thresholds.low", "must not exceed thresholds.high"));
        }
        if sc.k == 0 {
            return Err(invalid("k", "must be at least 1"));
        }
        check_num("weights.w1", sc.weights.w1, f64::NEG_INFINITY)?;
        check_num("weights.w2", sc.weights.w2, f64::NEG_INFINITY)?;
        check_num("cost_weight", sc.cost_weight, 0.0)?;
        if let Some(b) = sc.migration_budget {
            check_num("migration_budget", b, 0.0)?;
        }
        if let Some(n) = sc.now_s {
            check_num("now_s", n, f64::NEG_INFINITY)?;
        }
        if let Some(h) = sc.hysteresis {
            check_num("hysteresis.move_s", h.move_s, 0.0)?;
            check_num("hysteresis.evict_s", h.evict_s, 0.0)?;
            if sc.now_s.is_none() {
                return Err(invalid("now_s", "is required when hysteresis is set"));
            }
        }
        if sc.sites.is_empty() {
            return Err(invalid("sites", "must list at least one site"));
        }
        let mut site_index = HashMap::new();
        let mut sites = Vec::with_capacity(sc.sites.len());
        for (i, s) in sc.sites.iter().enumerate() {
            let f = |n: &str| format!("sites[{i}].{n}");
            if s.name.is_empty() {
                return Err(invalid(f("name"), "must not be empty"));
            }
            if site_index.insert(s.name.as_str(), i).is_some() {
                return Err(invalid(
                    f("name"),
                    format!("duplicate site name `{}`", s.name),
                ));
            }
            check_num(&f("slots"), s.slots, 0.0)?;
            if s.slots.fract() != 0.0 {
                return Err(invalid(
                    f("slots"),
                    format!("must be a whole number, got {}", s.slots),
                ));
            }
            check_num(&f("mem_gb"), s.mem_gb, 0.0)?;
            check_num(&f("disk_gb"), s.disk_gb, 0.0)?;
            sites.push(Site {
                name: s.name.clone(),
                global: s.global,
                capacity: [s.slots, s.mem_gb, s.disk_gb],
            });
        }
        let mut loc_index = HashMap::new();
        let mut latency = Vec::with_capacity(sc.locations.len());
        for (i, l) in sc.locations.iter().enumerate() {
            if loc_index.insert(l.name.as_str(), i).is_some() {
                return Err(invalid(
                    format!("locations[{i}].name"),
                    format!("duplicate location `{}`", l.name),
                ));
            }
            for name in l.latency_ms.keys() {
                if !site_index.contains_key(name.as_str()) {
                    return Err(invalid(
                        format!("locations[{i}].latency_ms.{name}"),
                        format!("unknown site `{name}`"),
                    ));
                }
            }
            let mut row = Vec::with_capacity(sites.len());
            for s in &sites {
                let field = format!("locations[{i}].latency_ms.{}", s.name);
                let v = *l
                    .latency_ms
                    .get(&s.name)
                    .ok_or_else(|| invalid(field.clone(), "missing latency to this site"))?;
                check_num(&field, v, 0.0)?;
                row.push(v);
            }
            latency.push(row);
        }
        let mut desk_names = HashMap::new();
        let mut desktops = Vec::with_capacity(sc.desktops.len());
        let mut usage = vec![[0.0; DIMS]; sites.len()];
        for (i, d) in sc.desktops.iter().enumerate() {
            let f = |n: &str| format!("desktops[{i}].{n}");
            if desk_names.insert(d.name.as_str(), i).is_some() {
                return Err(invalid(
                    f("name"),
                    format!("duplicate desktop `{}`", d.name),
                ));
            }
            check_num(&f("rank"), d.rank, f64::NEG_INFINITY)?;
            check_num(&f("mem_gb"), d.mem_gb, 0.0)?;
            check_num(&f("disk_gb"), d.disk_gb, 0.0)?;
            check_num(&f("dirty_rate"), d.dirty_rate, 0.0)?;
            if d.dirty_rate >= 1.0 {
                return Err(invalid(
                    f("dirty_rate"),
                    format!(
                        "must be below 1 (else migration never converges), got {}",
                        d.dirty_rate
                    ),
                ));
            }
            let site = *site_index
                .get(d.site.as_str())
                .ok_or_else(|| invalid(f("site"), format!("unknown site `{}`", d.site)))?;
            let user = *loc_index
                .get(d.user.as_str())
                .ok_or_else(|| invalid(f("user"), format!("unknown location `{}`", d.user)))?;
            for (n, t) in [("moved_at_s", d.moved_at_s), ("low_since_s", d.low_since_s)] {
                if let Some(t) = t {
                    check_num(&f(n), t, f64::NEG_INFINITY)?;
                }
            }
            let size = [1.0, d.mem_gb, d.disk_gb];
            for (u, s) in usage[site].iter_mut().zip(size) {
                *u += s;
            }
            let recent = |at: Option<f64>, window: f64| match (sc.now_s, at) {
                (Some(now), Some(at)) => now - at < window,
                _ => false,
            };
            let (move_window, evict_window) =
                sc.hysteresis.map_or((0.0, 0.0), |h| (h.move_s, h.evict_s));
            let relocatable = d.rank > sc.thresholds.high && !recent(d.moved_at_s, move_window);
            let low_long_enough = sc.hysteresis.is_none()
                || d.low_since_s
                    .is_some_and(|t| !recent(Some(t), evict_window));
            let reclaimable = !sites[site].global && d.rank < sc.thresholds.low && low_long_enough;
            desktops.push(Desktop {
                name: d.name.clone(),
                rank: d.rank,
                size,
                dirty_rate: d.dirty_rate,
                site,
                user,
                relocatable,
                reclaimable,
            });
        }
        for (s, u) in usage.iter().enumerate() {
            for dim in 0..DIMS {
                if u[dim] > sites[s].capacity[dim] + 1e-9 {
                    return Err(invalid(
                        format!("sites[{s}].{}", DIM_NAMES[dim]),
                        format!(
                            "the desktops placed there already use {} of {}",
                            u[dim], sites[s].capacity[dim]
                        ),
                    ));
                }
            }
        }
        let mut m = Model {
            sites,
            location_names: sc.locations.iter().map(|l| l.name.clone()).collect(),
            latency,
            desktops,
            thresholds: sc.thresholds,
            k: sc.k,
            weights: sc.weights,
            cost_weight: sc.cost_weight,
            migration_budget: sc.migration_budget,
            targets: Vec::new(),
            eviction_targets: Vec::new(),
        };
        m.targets = (0..m.desktops.len())
            .map(|v| m.compute_targets(v))
            .collect();
        m.eviction_targets = (0..m.desktops.len())
            .map(|v| m.compute_eviction_targets(v))
            .collect();
        Ok(m)
    }

    /// Latency from desktop `v`'s user to site `s`.
    pub fn lat(&self, v: usize, s: usize) -> f64 {
        self.latency[self.desktops[v].user][s]
    }

    /// The `k` sites closest to `v`'s user, closest first, ties by site index.
    pub fn closest_sites(&self, v: usize) -> Vec<usize> {
        let mut all: Vec<usize> = (0..self.sites.len()).collect();
        all.sort_by(|&a, &b| self.lat(v, a).total_cmp(&self.lat(v, b)).then(a.cmp(&b)));
        all.truncate(self.k);
        all
    }

    fn compute_targets(&self, v: usize) -> Vec<usize> {
        let d = &self.desktops[v];
        if !d.relocatable {
            return Vec::new();
        }
        let here = self.lat(v, d.site);
        self.closest_sites(v)
            .into_iter()
            .filter(|&s| self.lat(v, s) < here)
            .collect()
    }

    fn compute_eviction_targets(&self, v: usize) -> Vec<usize> {
        let d = &self.desktops[v];
        if !d.reclaimable {
            return Vec::new();
        }
        let mut g: Vec<usize> = (0..self.sites.len())
            .filter(|&s| self.sites[s].global && s != d.site)
            .collect();
        g.sort_by(|&a, &b| self.lat(v, a).total_cmp(&self.lat(v, b)).then(a.cmp(&b)));
        g
    }

    /// Equation 1: benefit of moving `v` from its current site to `s`. Negative when `s` is
    /// farther. The percentage term is taken as 0 when the current latency is 0.
    pub fn benefit(&self, v: usize, s: usize) -> f64 {
        let l1 = self.lat(v, self.desktops[v].site);
        let l2 = self.lat(v, s);
        let pct = if l1 > 0.0 {
            (l1 - l2) * 100.0 / l1
        } else {
            0.0
        };
        self.weights.w1 * (l1 - l2) + self.weights.w2 * pct
    }

    /// Equation 2: migration cost of `v`, `(S_disk + S_mem) / (1 − r)`.
    pub fn cost(&self, v: usize) -> f64 {
        let d = &self.desktops[v];
        (d.size[1] + d.size[2]) / (1.0 - d.dirty_rate)
    }

    /// Objective contribution of placing `v` at `s`: 0 at its current site; for a relocation
    /// candidate `benefit − cost_weight · cost`; for an evicted (reclaimable, so not
    /// location-sensitive) desktop only `−cost_weight · cost`: its latency change does not count,
    /// as the paper ignores it ("for simplicity, we ignore the cost of evicting such low-ranked
    /// VMs"), but its migration still costs what any migration costs.
    pub fn value(&self, v: usize, s: usize) -> f64 {
        if s == self.desktops[v].site {
            0.0
        } else if self.desktops[v].relocatable {
            self.benefit(v, s) - self.cost_weight * self.cost(v)
        } else {
            -self.cost_weight * self.cost(v)
        }
    }

    /// Every site `v` may end up at: its current one, its relocation targets, its eviction targets.
    pub fn options(&self, v: usize) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(self.desktops[v].site)
            .chain(self.targets[v].iter().copied())
            .chain(self.eviction_targets[v].iter().copied())
    }

    /// Current usage of every site.
    pub fn initial_usage(&self) -> Vec<[f64; DIMS]> {
        let mut usage = vec![[0.0; DIMS]; self.sites.len()];
        for d in &self.desktops {
            for (u, s) in usage[d.site].iter_mut().zip(d.size) {
                *u += s;
            }
        }
        usage
    }
}

/// Capacity slack used when comparing floating-point usage with capacity.
pub const EPS: f64 = 1e-9;

/// Whether adding `size` to `usage` stays within `cap`.
pub fn fits(usage: &[f64; DIMS], size: &[f64; DIMS], cap: &[f64; DIMS]) -> bool {
    (0..DIMS).all(|i| usage[i] + size[i] <= cap[i] + EPS)
}

pub(crate) fn add(usage: &mut [f64; DIMS], size: &[f64; DIMS]) {
    for i in 0..DIMS {
        usage[i] += size[i];
    }
}

pub(crate) fn sub(usage: &mut [f64; DIMS], size: &[f64; DIMS]) {
    for i in 0..DIMS {
        usage[i] -= size[i];
    }
}

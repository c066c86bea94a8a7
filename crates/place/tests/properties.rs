//! Properties on generated scenarios: capacities hold after every step, no move makes a desktop's
//! latency worse, evictions only take reclaimable desktops to global sites, and the ILP's
//! objective is at least every heuristic's.

// Replaying moves indexes two sites per dimension; index loops read better than zips here.
#![allow(clippy::needless_range_loop)]

use doppel_place::gen::{generate, GenOptions};
use doppel_place::ilp::{self, IlpOptions, IlpStatus};
use doppel_place::model::DIMS;
use doppel_place::{heuristic, Algo, Model, Plan};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

/// Where every desktop is while a plan is replayed, and the load it puts on each site.
struct Replay<'m> {
    m: &'m Model,
    usage: Vec<[f64; DIMS]>,
    at: Vec<usize>,
    moved: std::collections::HashSet<usize>,
}

impl Replay<'_> {
    fn site(&self, name: &str) -> usize {
        self.m.sites.iter().position(|s| s.name == name).unwrap()
    }
    fn desktop(&self, name: &str) -> usize {
        self.m.desktops.iter().position(|d| d.name == name).unwrap()
    }
    /// Moves desktop `name` from `from` to `to`: it must be there and not have moved before.
    fn relocate(&mut self, name: &str, from: &str, to: &str) -> Result<usize, TestCaseError> {
        let (v, from, to) = (self.desktop(name), self.site(from), self.site(to));
        prop_assert_eq!(self.at[v], from);
        prop_assert!(self.moved.insert(v), "{} moved twice", name);
        for d in 0..DIMS {
            self.usage[from][d] -= self.m.desktops[v].size[d];
            self.usage[to][d] += self.m.desktops[v].size[d];
        }
        self.at[v] = to;
        Ok(v)
    }
    fn over_capacity(&self) -> bool {
        let m = self.m;
        (0..m.sites.len())
            .any(|s| (0..DIMS).any(|d| self.usage[s][d] > m.sites[s].capacity[d] + 1e-6))
    }
}

/// Replays a plan step by step (evictions first) and checks every intermediate state; returns
/// whether each step fit as it came (cycles in ILP plans may need a temporary home).
fn replay(sc: &doppel_place::Scenario, m: &Model, p: &Plan) -> Result<bool, TestCaseError> {
    let mut r = Replay {
        m,
        usage: m.initial_usage(),
        at: m.desktops.iter().map(|d| d.site).collect(),
        moved: std::collections::HashSet::new(),
    };
    let mut stepwise = true;
    for mv in &p.moves {
        for e in &mv.evictions {
            let u = r.relocate(&e.desktop, &e.from, &e.to)?;
            prop_assert!(
                m.desktops[u].reclaimable,
                "{} evicted but not reclaimable",
                e.desktop
            );
            prop_assert!(
                m.sites[r.site(&e.to)].global,
                "{} evicted to regional {}",
                e.desktop,
                e.to
            );
        }
        let v = r.relocate(&mv.desktop, &mv.from, &mv.to)?;
        prop_assert!(
            m.desktops[v].relocatable,
            "{} moved but not a candidate",
            mv.desktop
        );
        prop_assert!(
            mv.to_latency_ms < mv.from_latency_ms,
            "{}: latency {} -> {}",
            mv.desktop,
            mv.from_latency_ms,
            mv.to_latency_ms
        );
        if r.over_capacity() {
            stepwise = false;
        }
    }
    prop_assert!(!r.over_capacity(), "final state over capacity");
    if let Some(b) = sc.migration_budget {
        prop_assert!(p.total_cost <= b + 1e-6);
    }
    Ok(stepwise)
}

/// Cases and seed when the environment names neither: fixed, so a run in CI is the same every
/// time and can only go red on a real regression (a failure found later with random seeds is
/// saved in `properties.proptest-regressions` and replayed first from then on).
const CI_CASES: u32 = 128;
const CI_SEED: u64 = 0x0d0b_be1c_0f11_2026;

/// The test's proptest configuration. `cargo test -p doppel-place --test properties` runs
/// [`CI_CASES`] cases from [`CI_SEED`]; to explore, set `DOPPEL_PROPTEST_RANDOM=1` (a random seed)
/// or `PROPTEST_RNG_SEED=N`, and `PROPTEST_CASES=N` for more cases, e.g.
/// `DOPPEL_PROPTEST_RANDOM=1 PROPTEST_CASES=2000 cargo test -p doppel-place --test properties`.
fn config() -> ProptestConfig {
    // `default()` already applies any `PROPTEST_*` variables.
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = CI_CASES;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none()
        && std::env::var_os("DOPPEL_PROPTEST_RANDOM").is_none()
    {
        c.rng_seed = RngSeed::Fixed(CI_SEED);
    }
    c
}

proptest! {
    #![proptest_config(config())]
    #[test]
    fn plans_respect_capacity_latency_and_the_ilp_bound(
        seed in any::<u64>(),
        vms in 3usize..40,
        sites in 2usize..7,
        k in 1usize..6,
        cost_weight in prop_oneof![Just(0.0), 0.0f64..2.0],
        budget in prop_oneof![Just(None), (0.0f64..200.0).prop_map(Some)],
    ) {
        let mut sc = generate(GenOptions { vms, sites, seed, k, cost_weight });
        sc.migration_budget = budget;
        let m = Model::new(&sc).unwrap();
        let best = ilp::solve(&m, IlpOptions::default()).unwrap();
        prop_assert_eq!(best.status, IlpStatus::Optimal);
        replay(&sc, &m, &best.plan)?;
        for algo in [Algo::Rank, Algo::Benefit, Algo::Cost, Algo::Improved] {
            let p = heuristic(&m, algo).unwrap();
            let stepwise = replay(&sc, &m, &p)?;
            if algo != Algo::Improved {
                prop_assert!(stepwise, "{:?}: a greedy step broke a capacity", algo);
            }
            prop_assert!(best.plan.objective >= p.objective - 1e-6,
                "{:?}: heuristic {} beats ILP {}", algo, p.objective, best.plan.objective);
        }
    }
}

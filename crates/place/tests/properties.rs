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

/// Replays a plan step by step (evictions first) and checks every intermediate state; returns
/// whether each step fit as it came (cycles in ILP plans may need a temporary home).
fn replay(sc: &doppel_place::Scenario, m: &Model, p: &Plan) -> Result<bool, TestCaseError> {
    let idx = |name: &str| m.sites.iter().position(|s| s.name == name).unwrap();
    let didx = |name: &str| m.desktops.iter().position(|d| d.name == name).unwrap();
    let mut usage = m.initial_usage();
    let mut at: Vec<usize> = m.desktops.iter().map(|d| d.site).collect();
    let mut stepwise = true;
    let over = |u: &Vec<[f64; DIMS]>| {
        (0..m.sites.len()).any(|s| (0..DIMS).any(|d| u[s][d] > m.sites[s].capacity[d] + 1e-6))
    };
    let mut moved = std::collections::HashSet::new();
    for mv in &p.moves {
        for e in &mv.evictions {
            let u = didx(&e.desktop);
            prop_assert!(
                m.desktops[u].reclaimable,
                "{} evicted but not reclaimable",
                e.desktop
            );
            prop_assert!(
                m.sites[idx(&e.to)].global,
                "{} evicted to regional {}",
                e.desktop,
                e.to
            );
            prop_assert_eq!(at[u], idx(&e.from));
            prop_assert!(moved.insert(u), "{} moved twice", e.desktop);
            for d in 0..DIMS {
                usage[at[u]][d] -= m.desktops[u].size[d];
                usage[idx(&e.to)][d] += m.desktops[u].size[d];
            }
            at[u] = idx(&e.to);
        }
        let v = didx(&mv.desktop);
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
        prop_assert_eq!(at[v], idx(&mv.from));
        prop_assert!(moved.insert(v), "{} moved twice", mv.desktop);
        for d in 0..DIMS {
            usage[at[v]][d] -= m.desktops[v].size[d];
            usage[idx(&mv.to)][d] += m.desktops[v].size[d];
        }
        at[v] = idx(&mv.to);
        if over(&usage) {
            stepwise = false;
        }
    }
    prop_assert!(!over(&usage), "final state over capacity");
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

//! VMShadow placement (Guo et al., "VMShadow: Optimizing the performance of latency-sensitive
//! virtual desktops in distributed clouds"): location-sensitivity fingerprinting, the paper's three
//! greedy heuristics, an improved heuristic (greedy plus local search) and an exact ILP.
//!
//! A pure library: scenarios, flow records and pcap bytes come in, plans go out; nothing here
//! reads a clock, a file or a socket.
//!
//! - [`fingerprint`]: ranks from flow records (three metrics, weighted, EMA over windows).
//! - [`pcap`]: classic pcap reader/writer turning packets into per-window flow records.
//! - [`model`]: the scenario (JSON) and its validated, indexed form.
//! - [`greedy`]: rank-ordered, cost-oblivious and cost-aware greedy (section 5.1).
//! - [`improved`]: greedy followed by relocate/eject local search.
//! - [`ilp`]: the exact ILP (HiGHS, or pure-Rust microlp).
//! - [`plan`]: moves, evictions and how a plan is scored.
//! - [`gen`]: seeded synthetic scenarios.

pub mod fingerprint;
pub mod gen;
pub mod greedy;
pub mod ilp;
pub mod improved;
pub mod model;
pub mod pcap;
pub mod plan;

pub use greedy::{greedy, Greedy};
pub use ilp::{Backend, IlpOptions, IlpOutcome, IlpStatus};
pub use improved::improved;
pub use model::{Model, Scenario, ScenarioError};
pub use plan::{Move, Plan};

/// The algorithms `plan` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    Rank,
    Benefit,
    Cost,
    Improved,
    Ilp,
}

impl Algo {
    pub const ALL: [Algo; 5] = [
        Algo::Rank,
        Algo::Benefit,
        Algo::Cost,
        Algo::Improved,
        Algo::Ilp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Algo::Rank => "rank",
            Algo::Benefit => "benefit",
            Algo::Cost => "cost",
            Algo::Improved => "improved",
            Algo::Ilp => "ilp",
        }
    }
}

/// Runs a heuristic (anything but the ILP, which needs [`ilp::solve`] for its options).
pub fn heuristic(m: &Model, algo: Algo) -> Option<Plan> {
    match algo {
        Algo::Rank => Some(greedy(m, Greedy::RankOrdered)),
        Algo::Benefit => Some(greedy(m, Greedy::CostOblivious)),
        Algo::Cost => Some(greedy(m, Greedy::CostAware)),
        Algo::Improved => Some(improved(m)),
        Algo::Ilp => None,
    }
}

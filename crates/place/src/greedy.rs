//! The three greedy heuristics of VMShadow section 5.1, exactly as the paper defines them.
//!
//! - **Rank-ordered**: relocation candidates (rank > `T_h`) in rank order, highest first. Each
//!   tries its target sites closest first; if a site lacks room, reclaimable desktops there are
//!   evicted (lowest rank first) when that frees enough; else the next closest site is tried,
//!   until one is chosen or the present site is kept.
//! - **Cost-oblivious**: candidates ordered by the benefit `B` of moving to their best remaining
//!   site (equation 1). The top one is tried at that site (evicting as above); if it does not fit,
//!   `B` is recomputed for its next-best site and it is re-inserted in benefit order. Ties by rank.
//! - **Cost-aware**: the same, ordered by `B / C` with `C` from equation 2. Eviction costs are
//!   ignored when choosing, as in the paper. Ties by rank.
//!
//! Remaining ties (equal score and rank) go to the lower desktop index, so plans are deterministic.
//! An evicted desktop goes to the global site closest to its user that has room. With a
//! migration budget, a move whose cost (its evictions' included) exceeds what is left does not fit.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::model::{add, fits, sub, Model, DIMS};
use crate::plan::{Plan, Step};

/// Which greedy rule orders the candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greedy {
    RankOrdered,
    CostOblivious,
    CostAware,
}

impl Greedy {
    pub fn name(self) -> &'static str {
        match self {
            Greedy::RankOrdered => "rank",
            Greedy::CostOblivious => "benefit",
            Greedy::CostAware => "cost",
        }
    }
}

/// Mutable placement state shared by the greedy heuristics and the local search.
#[derive(Debug, Clone)]
pub(crate) struct State<'m> {
    pub m: &'m Model,
    pub site: Vec<usize>,
    pub usage: Vec<[f64; DIMS]>,
    pub budget_left: f64,
    /// Reclaimable desktops initially at each site, lowest rank first.
    reclaim_at: Vec<Vec<usize>>,
}

impl<'m> State<'m> {
    pub fn new(m: &'m Model) -> Self {
        let mut reclaim_at = vec![Vec::new(); m.sites.len()];
        for (u, d) in m.desktops.iter().enumerate() {
            if d.reclaimable {
                reclaim_at[d.site].push(u);
            }
        }
        for list in &mut reclaim_at {
            list.sort_by(|&a, &b| {
                m.desktops[a]
                    .rank
                    .total_cmp(&m.desktops[b].rank)
                    .then(a.cmp(&b))
            });
        }
        State {
            m,
            reclaim_at,
            site: m.desktops.iter().map(|d| d.site).collect(),
            usage: m.initial_usage(),
            budget_left: m.migration_budget.unwrap_or(f64::INFINITY),
        }
    }

    pub fn fits(&self, v: usize, s: usize) -> bool {
        fits(
            &self.usage[s],
            &self.m.desktops[v].size,
            &self.m.sites[s].capacity,
        )
    }

    pub fn relocate(&mut self, v: usize, to: usize) {
        let size = self.m.desktops[v].size;
        sub(&mut self.usage[self.site[v]], &size);
        add(&mut self.usage[to], &size);
        self.site[v] = to;
    }

    /// Tries to place `v` at `s`, evicting reclaimable desktops there (lowest rank first) if
    /// needed. Commits and returns the evictions on success; leaves the state alone on failure.
    pub fn try_place(&mut self, v: usize, s: usize) -> Option<Vec<(usize, usize)>> {
        let m = self.m;
        let move_cost = m.cost(v);
        if move_cost > self.budget_left + 1e-9 {
            return None;
        }
        if self.fits(v, s) {
            self.relocate(v, s);
            self.budget_left -= move_cost;
            return Some(Vec::new());
        }
        // Reclaimable desktops still at s, lowest rank first.
        let victims: Vec<usize> = self.reclaim_at[s]
            .iter()
            .copied()
            .filter(|&u| self.site[u] == s)
            .collect();
        if victims.is_empty() {
            return None;
        }
        let saved = (self.usage.clone(), self.budget_left);
        let mut done: Vec<(usize, usize)> = Vec::new();
        let mut spent = move_cost;
        for u in victims {
            let Some(&g) = m.eviction_targets[u].iter().find(|&&g| self.fits(u, g)) else {
                continue;
            };
            spent += m.cost(u);
            self.relocate(u, g);
            done.push((u, g));
            if self.fits(v, s) {
                break;
            }
        }
        if self.fits(v, s) && spent <= self.budget_left + 1e-9 {
            self.relocate(v, s);
            self.budget_left -= spent;
            return Some(done);
        }
        // Not enough room even after evicting everything reclaimable: undo.
        for &(u, _) in &done {
            self.site[u] = s;
        }
        (self.usage, self.budget_left) = saved;
        None
    }
}

#[derive(Debug)]
struct Entry {
    score: f64,
    rank: f64,
    desktop: usize,
    /// Index into the desktop's target list.
    pos: usize,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> Ordering {
        self.score
            .total_cmp(&o.score)
            .then(self.rank.total_cmp(&o.rank))
            .then(o.desktop.cmp(&self.desktop))
            .then(o.pos.cmp(&self.pos))
    }
}

/// Runs one of the paper's heuristics and returns its steps in decision order.
pub(crate) fn greedy_steps(m: &Model, algo: Greedy) -> (State<'_>, Vec<Step>) {
    let mut st = State::new(m);
    let mut steps = Vec::new();
    let candidates = (0..m.desktops.len()).filter(|&v| !m.targets[v].is_empty());
    match algo {
        Greedy::RankOrdered => {
            let mut order: Vec<usize> = candidates.collect();
            order.sort_by(|&a, &b| {
                m.desktops[b]
                    .rank
                    .total_cmp(&m.desktops[a].rank)
                    .then(a.cmp(&b))
            });
            for v in order {
                for &s in &m.targets[v] {
                    if let Some(evictions) = st.try_place(v, s) {
                        steps.push(Step {
                            desktop: v,
                            to: s,
                            evictions,
                        });
                        break;
                    }
                }
            }
        }
        Greedy::CostOblivious | Greedy::CostAware => {
            let score = |v: usize, s: usize| {
                let b = m.benefit(v, s);
                match algo {
                    Greedy::CostAware => ratio(b, m.cost(v)),
                    _ => b,
                }
            };
            let mut heap: BinaryHeap<Entry> = candidates
                .map(|v| Entry {
                    score: score(v, m.targets[v][0]),
                    rank: m.desktops[v].rank,
                    desktop: v,
                    pos: 0,
                })
                .collect();
            while let Some(e) = heap.pop() {
                let (v, s) = (e.desktop, m.targets[e.desktop][e.pos]);
                if let Some(evictions) = st.try_place(v, s) {
                    steps.push(Step {
                        desktop: v,
                        to: s,
                        evictions,
                    });
                } else if e.pos + 1 < m.targets[v].len() {
                    let next = m.targets[v][e.pos + 1];
                    heap.push(Entry {
                        score: score(v, next),
                        rank: e.rank,
                        desktop: v,
                        pos: e.pos + 1,
                    });
                }
            }
        }
    }
    (st, steps)
}

/// `b / c`, with a zero cost counting as infinitely cheap.
fn ratio(b: f64, c: f64) -> f64 {
    if c > 0.0 {
        b / c
    } else if b > 0.0 {
        f64::INFINITY
    } else {
        0.0
    }
}

/// Runs one of the paper's three heuristics.
pub fn greedy(m: &Model, algo: Greedy) -> Plan {
    let (_, steps) = greedy_steps(m, algo);
    Plan::from_steps(m, algo.name(), &steps)
}

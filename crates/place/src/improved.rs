//! Beyond the paper: greedy followed by local search.
//!
//! Start from the better (by objective) of the cost-aware and cost-oblivious greedy plans, then
//! repeat until a pass finds nothing or `MAX_PASSES` is reached:
//! - **relocate**: move a desktop to another of its allowed sites that has room, if the objective
//!   (Σ benefit − λ·cost, the ILP's) rises;
//! - **eject**: move desktop `v` into a full site `s` by sending one desktop `u` that is at `s`
//!   to another of `u`'s allowed sites (`u`'s original site, a target of its own, or a global site
//!   if `u` is reclaimable; the site `v` leaves counts as freed), if the sum of both changes is
//!   positive. A swap is the case where `u` goes where `v` came from.
//!
//! Every desktop stays within the choices the ILP has, so the result never beats the ILP and never
//! breaks a capacity; the objective rises strictly with each step, so it terminates.

use crate::greedy::{greedy_steps, Greedy, State};
use crate::model::{add, fits, sub, Model, DIMS};
use crate::plan::{assignment_of, evaluate, polish, Plan};

/// Upper bound on local-search passes over all desktops.
pub const MAX_PASSES: usize = 50;
const GAIN_EPS: f64 = 1e-9;

/// The improved heuristic's plan.
pub fn improved(m: &Model) -> Plan {
    let mut best: Option<(f64, Vec<usize>, f64)> = None;
    for algo in [Greedy::CostAware, Greedy::CostOblivious] {
        let (st, steps) = greedy_steps(m, algo);
        let a = assignment_of(m, &steps);
        let obj = evaluate(m, &a).0;
        if best.as_ref().is_none_or(|(o, _, _)| obj > *o + GAIN_EPS) {
            best = Some((obj, a, st.budget_left));
        }
    }
    let (_, a, budget_left) =
        best.unwrap_or_else(|| (0.0, m.desktops.iter().map(|d| d.site).collect(), 0.0));
    let mut ls = Search::new(m, a, budget_left);
    ls.run();
    let mut a = ls.st.site;
    polish(m, &mut a);
    Plan::from_assignment(m, "improved", &a)
}

/// `(gain, target of v, optional ejection (u, t))`.
type Candidate = (f64, usize, Option<(usize, usize)>);

struct Search<'m> {
    st: State<'m>,
    /// Desktops at each site, for ejection.
    members: Vec<Vec<usize>>,
    /// Allowed sites per desktop, best value first.
    options: Vec<Vec<usize>>,
    /// Best value any option of each desktop can give (ignoring capacity).
    best_value: Vec<f64>,
}

impl<'m> Search<'m> {
    fn new(m: &'m Model, a: Vec<usize>, budget_left: f64) -> Self {
        let mut st = State::new(m);
        st.site = a;
        st.usage = crate::plan::usage_of(m, &st.site);
        st.budget_left = budget_left;
        let mut members = vec![Vec::new(); m.sites.len()];
        for (v, &s) in st.site.iter().enumerate() {
            members[s].push(v);
        }
        // Options best first, so scans can stop at the first one that cannot improve.
        let options: Vec<Vec<usize>> = (0..m.desktops.len())
            .map(|v| {
                let mut o: Vec<usize> = m.options(v).collect();
                o.sort_by(|&a, &b| m.value(v, b).total_cmp(&m.value(v, a)).then(a.cmp(&b)));
                o
            })
            .collect();
        let best_value = options
            .iter()
            .enumerate()
            .map(|(v, o)| {
                o.iter()
                    .map(|&s| m.value(v, s))
                    .fold(f64::NEG_INFINITY, f64::max)
            })
            .collect();
        Search {
            st,
            members,
            options,
            best_value,
        }
    }

    fn cost_of(&self, v: usize, s: usize) -> f64 {
        if s == self.st.m.desktops[v].site {
            0.0
        } else {
            self.st.m.cost(v)
        }
    }

    fn do_move(&mut self, v: usize, to: usize) {
        let from = self.st.site[v];
        self.st.budget_left += self.cost_of(v, from) - self.cost_of(v, to);
        if let Some(i) = self.members[from].iter().position(|&x| x == v) {
            self.members[from].swap_remove(i);
        }
        self.members[to].push(v);
        self.st.relocate(v, to);
    }

    fn run(&mut self) {
        let m = self.st.m;
        let n = m.desktops.len();
        for _ in 0..MAX_PASSES {
            let mut improved = false;
            for v in 0..n {
                if self.options[v].len() > 1 && self.improve(v) {
                    improved = true;
                }
            }
            if !improved {
                break;
            }
        }
    }

    /// Tries the best relocate or eject step for `v`; applies it and returns true if one helps.
    fn improve(&mut self, v: usize) -> bool {
        let m = self.st.m;
        let here = self.st.site[v];
        let here_val = m.value(v, here);
        let size_v = m.desktops[v].size;
        // (gain, target of v, optional (u, t))
        let mut best: Option<Candidate> = None;
        for &s in &self.options[v] {
            if s == here {
                continue;
            }
            let gain_v = m.value(v, s) - here_val;
            let extra_v = self.cost_of(v, s) - self.cost_of(v, here);
            if self.st.fits(v, s) {
                if gain_v > GAIN_EPS
                    && extra_v <= self.st.budget_left + 1e-9
                    && best.as_ref().is_none_or(|b| gain_v > b.0)
                {
                    best = Some((gain_v, s, None));
                }
                continue;
            }
            for &u in &self.members[s] {
                let u_val = m.value(u, s);
                let bound = gain_v + self.best_value[u] - u_val;
                if bound <= GAIN_EPS || best.as_ref().is_some_and(|b| bound <= b.0) {
                    continue;
                }
                // Room at s once u leaves.
                let mut us = self.st.usage[s];
                sub(&mut us, &m.desktops[u].size);
                if !fits(&us, &size_v, &m.sites[s].capacity) {
                    continue;
                }
                for &t in &self.options[u] {
                    if t == s {
                        continue;
                    }
                    let gain = gain_v + m.value(u, t) - u_val;
                    if gain <= GAIN_EPS || best.as_ref().is_some_and(|b| gain <= b.0) {
                        break; // options are best first: the rest are no better
                    }
                    let mut ut = self.st.usage[t];
                    if t == here {
                        sub(&mut ut, &size_v);
                    }
                    if !fits(&ut, &m.desktops[u].size, &m.sites[t].capacity) {
                        continue;
                    }
                    let extra = extra_v + self.cost_of(u, t) - self.cost_of(u, s);
                    if extra > self.st.budget_left + 1e-9 {
                        continue;
                    }
                    best = Some((gain, s, Some((u, t))));
                }
            }
        }
        let Some((_, s, eject)) = best else {
            return false;
        };
        if let Some((u, t)) = eject {
            // Move v out first so u may take its place.
            let mut tmp = self.st.usage[s];
            sub(&mut tmp, &m.desktops[u].size);
            add(&mut tmp, &size_v);
            debug_assert!((0..DIMS).all(|d| tmp[d] <= m.sites[s].capacity[d] + 1e-6));
            self.do_move(u, t);
        }
        self.do_move(v, s);
        true
    }
}

//! A plan: a deterministic list of moves, each with the evictions that make room for it, and the
//! figures it is judged by (objective, latency decrease, migration cost).

use serde::{Deserialize, Serialize};

use crate::model::{add, fits, sub, Model, DIMS};

/// A reclaimable desktop sent back to a global site to make room for a move.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Eviction {
    pub desktop: String,
    pub from: String,
    pub to: String,
    pub from_latency_ms: f64,
    pub to_latency_ms: f64,
    pub benefit: f64,
    pub cost: f64,
}

/// One relocation; its evictions run first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Move {
    pub desktop: String,
    pub from: String,
    pub to: String,
    pub from_latency_ms: f64,
    pub to_latency_ms: f64,
    pub benefit: f64,
    pub cost: f64,
    pub evictions: Vec<Eviction>,
}

/// The output of every algorithm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub algo: String,
    pub moves: Vec<Move>,
    /// Σ benefit of the moves − cost_weight · Σ cost of moves and evictions (the ILP's
    /// objective; an evicted desktop's latency change does not count, see `Model::value`).
    pub objective: f64,
    /// Σ over the moved (location-sensitive) desktops of latency before − after, ms.
    pub latency_decrease_ms: f64,
    /// Σ benefit over the moves.
    pub total_benefit: f64,
    /// Σ migration cost over every move and eviction.
    pub total_cost: f64,
}

/// One step as the algorithms produce it, by index: `(desktop, to, evictions as (desktop, to))`.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub desktop: usize,
    pub to: usize,
    pub evictions: Vec<(usize, usize)>,
}

impl Plan {
    /// Builds a plan from steps in execution order.
    pub fn from_steps(m: &Model, algo: &str, steps: &[Step]) -> Plan {
        let ev = |v: usize, s: usize| {
            let from = m.desktops[v].site;
            Eviction {
                desktop: m.desktops[v].name.clone(),
                from: m.sites[from].name.clone(),
                to: m.sites[s].name.clone(),
                from_latency_ms: m.lat(v, from),
                to_latency_ms: m.lat(v, s),
                benefit: m.benefit(v, s),
                cost: m.cost(v),
            }
        };
        let moves: Vec<Move> = steps
            .iter()
            .map(|st| {
                let e = ev(st.desktop, st.to);
                Move {
                    desktop: e.desktop,
                    from: e.from,
                    to: e.to,
                    from_latency_ms: e.from_latency_ms,
                    to_latency_ms: e.to_latency_ms,
                    benefit: e.benefit,
                    cost: e.cost,
                    evictions: st.evictions.iter().map(|&(u, t)| ev(u, t)).collect(),
                }
            })
            .collect();
        let assignment = assignment_of(m, steps);
        let (objective, latency_decrease_ms, total_benefit, total_cost) = evaluate(m, &assignment);
        Plan {
            algo: algo.to_string(),
            moves,
            objective,
            latency_decrease_ms,
            total_benefit,
            total_cost,
        }
    }

    /// Builds a plan from a final assignment (site per desktop), as the ILP and the local search
    /// produce. Moved reclaimable desktops are evictions and are attached to the first move into
    /// the site they leave; [`polish`] first undoes evictions no move needs.
    /// Moves are ordered so each can run when its turn comes where that is possible (a cycle of
    /// moves between full sites is emitted in desktop order and needs a temporary home).
    pub fn from_assignment(m: &Model, algo: &str, assignment: &[usize]) -> Plan {
        let n = m.desktops.len();
        let mut moves = Vec::new();
        let mut evictions = Vec::new();
        for (v, &to) in assignment.iter().enumerate().take(n) {
            let from = m.desktops[v].site;
            if from == to {
                continue;
            }
            if !m.desktops[v].relocatable {
                evictions.push(v);
            } else {
                moves.push(v);
            }
        }
        let mut attached: Vec<Vec<(usize, usize)>> = vec![Vec::new(); moves.len()];
        let mut orphans = Vec::new();
        for &u in &evictions {
            let from = m.desktops[u].site;
            match moves.iter().position(|&v| assignment[v] == from) {
                Some(i) => attached[i].push((u, assignment[u])),
                None => orphans.push(u),
            }
        }
        let mut pending: Vec<Step> = moves
            .iter()
            .zip(attached)
            .map(|(&v, e)| Step {
                desktop: v,
                to: assignment[v],
                evictions: e,
            })
            .collect();
        // Orphaned evictions (only from non-optimal inputs that skipped `polish`) become steps.
        pending.extend(orphans.into_iter().map(|u| Step {
            desktop: u,
            to: assignment[u],
            evictions: Vec::new(),
        }));
        // Order for execution: repeatedly take the first step that fits now.
        let mut usage = m.initial_usage();
        let mut ordered = Vec::with_capacity(pending.len());
        while !pending.is_empty() {
            let runnable = pending.iter().position(|st| {
                let mut u = usage.clone();
                for &(e, t) in &st.evictions {
                    sub(&mut u[m.desktops[e].site], &m.desktops[e].size);
                    add(&mut u[t], &m.desktops[e].size);
                }
                st.evictions
                    .iter()
                    .all(|&(_, t)| (0..DIMS).all(|d| u[t][d] <= m.sites[t].capacity[d] + 1e-9))
                    && fits(
                        &u[st.to],
                        &m.desktops[st.desktop].size,
                        &m.sites[st.to].capacity,
                    )
            });
            let st = pending.remove(runnable.unwrap_or(0));
            for &(e, t) in &st.evictions {
                sub(&mut usage[m.desktops[e].site], &m.desktops[e].size);
                add(&mut usage[t], &m.desktops[e].size);
            }
            sub(
                &mut usage[m.desktops[st.desktop].site],
                &m.desktops[st.desktop].size,
            );
            add(&mut usage[st.to], &m.desktops[st.desktop].size);
            ordered.push(st);
        }
        Plan::from_steps(m, algo, &ordered)
    }
}

/// The final site of every desktop after `steps`.
pub fn assignment_of(m: &Model, steps: &[Step]) -> Vec<usize> {
    let mut a: Vec<usize> = m.desktops.iter().map(|d| d.site).collect();
    for st in steps {
        for &(u, t) in &st.evictions {
            a[u] = t;
        }
        a[st.desktop] = st.to;
    }
    a
}

/// `(objective, latency decrease, total benefit, total cost)` of a final assignment.
pub fn evaluate(m: &Model, a: &[usize]) -> (f64, f64, f64, f64) {
    let (mut obj, mut dec, mut ben, mut cost) = (0.0, 0.0, 0.0, 0.0);
    for (v, &s) in a.iter().enumerate() {
        let from = m.desktops[v].site;
        if s != from {
            obj += m.value(v, s);
            cost += m.cost(v);
            if m.desktops[v].relocatable {
                dec += m.lat(v, from) - m.lat(v, s);
                ben += m.benefit(v, s);
            }
        }
    }
    (obj, dec, ben, cost)
}

/// Site usage under an assignment.
pub fn usage_of(m: &Model, a: &[usize]) -> Vec<[f64; DIMS]> {
    let mut usage = vec![[0.0; DIMS]; m.sites.len()];
    for (v, &s) in a.iter().enumerate() {
        add(&mut usage[s], &m.desktops[v].size);
    }
    usage
}

/// Undoes evictions that free room no move uses. Putting such a desktop back always fits (its
/// old site received no newcomer, so its usage is at most the initial one) and never lowers the
/// objective (an eviction's value is `−cost_weight · cost ≤ 0`), so this only helps.
pub fn polish(m: &Model, a: &mut [usize]) {
    let mut incoming = vec![false; m.sites.len()];
    for (v, &s) in a.iter().enumerate() {
        if s != m.desktops[v].site && m.desktops[v].relocatable {
            incoming[s] = true;
        }
    }
    for (v, at) in a.iter_mut().enumerate() {
        let d = &m.desktops[v];
        if *at != d.site && !d.relocatable && !incoming[d.site] {
            *at = d.site;
        }
    }
}

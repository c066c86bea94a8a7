//! The exact placement ILP.
//!
//! One binary variable `x[v,s]` per desktop `v` and site `s` it may end up at (its current site,
//! its relocation targets if it is a candidate, the global sites if it is reclaimable — the same
//! choices the heuristics have, so every heuristic plan is a feasible point):
//!
//! ```text
//! maximise   Σ x[v,s] · (B(v,s) − λ·C(v))            over s ≠ current site of v
//! subject to Σ_s x[v,s] = 1                         for every desktop v
//!            Σ_v x[v,s] · size(v)_d ≤ capacity(s)_d  for every site s and d ∈ {slots, mem, disk}
//!            Σ x[v,s] · C(v) ≤ budget                (s ≠ current; only with a migration budget)
//! ```
//!
//! `λ` is the scenario's `cost_weight`. Solved with HiGHS (C++, built from source; cargo feature
//! `highs`, on by default) to a relative gap of 0 (absolute gap [`MIP_ABS_GAP`]), or with the
//! pure-Rust `microlp` branch-and-bound as a fallback for small instances. See `status_of` for
//! what counts as proven optimal.

use good_lp::solvers::{Solution, SolutionStatus, SolverModel, WithTimeLimit};
use good_lp::{variable, Expression, ProblemVariables, Variable};

use crate::model::{Model, DIMS};
use crate::plan::{polish, Plan};

/// Which solver runs the ILP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// HiGHS (needs the `highs` feature).
    Highs,
    /// microlp, pure Rust.
    Microlp,
}

impl Backend {
    /// The best backend compiled in.
    pub fn best() -> Backend {
        if cfg!(feature = "highs") {
            Backend::Highs
        } else {
            Backend::Microlp
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Backend::Highs => "highs",
            Backend::Microlp => "microlp",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IlpOptions {
    pub backend: Backend,
    /// Give up after this many seconds and return the best plan found, not proven optimal.
    pub time_limit_s: Option<f64>,
}

impl Default for IlpOptions {
    fn default() -> Self {
        IlpOptions {
            backend: Backend::best(),
            time_limit_s: None,
        }
    }
}

/// Whether the plan is proven optimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IlpStatus {
    /// Proven optimal: the solver closed the gap to a relative gap of 0 or an absolute gap of at
    /// most [`MIP_ABS_GAP`] (objective units; benefits are in the tens to hundreds).
    Optimal,
    /// The solver stopped at a limit before proving optimality: the time limit of
    /// [`IlpOptions::time_limit_s`] (HiGHS reports its iteration, node and memory limits the same
    /// way, none of which is set here). The plan is feasible but not proven optimal.
    TimeLimit,
}

/// The absolute optimality gap HiGHS may stop at. Objective values are sums of benefits (eq. 1)
/// in the tens to thousands, so this is far below any difference between two plans.
pub const MIP_ABS_GAP: f32 = 1e-6;

/// What a `good_lp` solution status means for us.
///
/// `good_lp` reports HiGHS's model status `Optimal` as [`SolutionStatus::GapLimit`] whenever the
/// final gap HiGHS returns is positive, however small: HiGHS's dual bound comes out of floating
/// point and can sit 1e-14 above the primal bound of a solution it has proven optimal (this
/// happened on a 19-desktop scenario, `tests/data/highs-gap-noise-19x3.json`). HiGHS only
/// stops with `Optimal` once the gap is within the tolerances set in [`solve`] — a relative gap
/// of 0 or an absolute one of [`MIP_ABS_GAP`] — so `GapLimit` is a proof of optimality to that
/// tolerance. microlp reports `GapLimit` only for a positive requested gap, which is never set
/// here. `TimeLimit` is the only status that means the search was cut short.
fn status_of(s: SolutionStatus) -> IlpStatus {
    match s {
        SolutionStatus::Optimal | SolutionStatus::GapLimit => IlpStatus::Optimal,
        SolutionStatus::TimeLimit => IlpStatus::TimeLimit,
    }
}

#[derive(Debug, Clone)]
pub struct IlpOutcome {
    pub plan: Plan,
    pub status: IlpStatus,
    pub variables: usize,
    pub constraints: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum IlpError {
    #[error("the `{backend}` ILP backend failed: {message}")]
    Solver {
        backend: &'static str,
        message: String,
    },
    #[error("the `highs` ILP backend is not compiled in (build with the `highs` feature)")]
    Unavailable,
}

/// The ILP before a solver is attached.
struct Formulation {
    vars: ProblemVariables,
    objective: Expression,
    /// `(desktop, site, variable)`.
    x: Vec<(usize, usize, Variable)>,
    constraints: Vec<good_lp::Constraint>,
}

fn formulate(m: &Model) -> Formulation {
    let mut vars = ProblemVariables::new();
    let mut x = Vec::new();
    let mut objective = Expression::default();
    let mut constraints = Vec::new();
    // Usage by desktops that cannot move, and the variable terms of every site's load.
    let mut fixed = vec![[0.0; DIMS]; m.sites.len()];
    let mut load: Vec<[Expression; DIMS]> =
        (0..m.sites.len()).map(|_| Default::default()).collect();
    let mut max_load = vec![[0.0; DIMS]; m.sites.len()];
    let mut budget = Expression::default();
    for v in 0..m.desktops.len() {
        let size = m.desktops[v].size;
        let opts: Vec<usize> = m.options(v).collect();
        if opts.len() == 1 {
            for d in 0..DIMS {
                fixed[opts[0]][d] += size[d];
            }
            continue;
        }
        let mut one = Expression::default();
        for &s in &opts {
            let xv = vars.add(variable().binary());
            x.push((v, s, xv));
            one += xv;
            let val = m.value(v, s);
            if val != 0.0 {
                objective += val * xv;
            }
            if s != m.desktops[v].site {
                budget += m.cost(v) * xv;
            }
            for d in 0..DIMS {
                if size[d] != 0.0 {
                    load[s][d] += size[d] * xv;
                    max_load[s][d] += size[d];
                }
            }
        }
        constraints.push(one.eq(1.0));
    }
    for (s, site) in m.sites.iter().enumerate() {
        for d in 0..DIMS {
            let room = site.capacity[d] - fixed[s][d];
            // Skip rows that can never bind.
            if max_load[s][d] > room + 1e-9 {
                let l = std::mem::take(&mut load[s][d]);
                constraints.push(l.leq(room));
            }
        }
    }
    if let Some(b) = m.migration_budget {
        constraints.push(budget.leq(b));
    }
    Formulation {
        vars,
        objective,
        x,
        constraints,
    }
}

fn run<P: SolverModel>(
    mut p: P,
    f_x: &[(usize, usize, Variable)],
    cons: Vec<good_lp::Constraint>,
    backend: Backend,
) -> Result<(Vec<(usize, usize)>, IlpStatus), IlpError>
where
    P::Error: std::fmt::Display,
{
    for c in cons {
        p.add_constraint(c);
    }
    let sol = p.solve().map_err(|e| IlpError::Solver {
        backend: backend.name(),
        message: e.to_string(),
    })?;
    let status = status_of(sol.status());
    let chosen = f_x
        .iter()
        .filter(|&&(_, _, xv)| sol.value(xv) > 0.5)
        .map(|&(v, s, _)| (v, s))
        .collect();
    Ok((chosen, status))
}

/// Solves the placement ILP.
pub fn solve(m: &Model, opts: IlpOptions) -> Result<IlpOutcome, IlpError> {
    let f = formulate(m);
    let variables = f.x.len();
    let constraints = f.constraints.len();
    let Formulation {
        vars,
        objective,
        x,
        constraints: cons,
    } = f;
    let (chosen, status) = if x.is_empty() {
        // Nobody can move (HiGHS rejects an empty model): staying put is the optimum.
        (Vec::new(), IlpStatus::Optimal)
    } else {
        match opts.backend {
            Backend::Microlp => {
                let mut p = vars
                    .maximise(objective)
                    .using(good_lp::solvers::microlp::microlp);
                if let Some(t) = opts.time_limit_s {
                    p = p.with_time_limit(t);
                }
                run(p, &x, cons, Backend::Microlp)?
            }
            Backend::Highs => {
                #[cfg(feature = "highs")]
                {
                    let mut p = vars
                        .maximise(objective)
                        .using(good_lp::solvers::highs::highs)
                        .set_threads(1)
                        .set_mip_rel_gap(0.0)
                        .map_err(|e| IlpError::Solver {
                            backend: "highs",
                            message: e.to_string(),
                        })?
                        .set_mip_abs_gap(MIP_ABS_GAP)
                        .map_err(|e| IlpError::Solver {
                            backend: "highs",
                            message: e.to_string(),
                        })?;
                    p.set_verbose(false);
                    if let Some(t) = opts.time_limit_s {
                        p = p.set_time_limit(t);
                    }
                    run(p, &x, cons, Backend::Highs)?
                }
                #[cfg(not(feature = "highs"))]
                {
                    drop((vars, objective, x, cons));
                    return Err(IlpError::Unavailable);
                }
            }
        }
    };
    let mut assignment: Vec<usize> = m.desktops.iter().map(|d| d.site).collect();
    for (v, s) in chosen {
        assignment[v] = s;
    }
    polish(m, &mut assignment);
    let plan = Plan::from_assignment(m, "ilp", &assignment);
    Ok(IlpOutcome {
        plan,
        status,
        variables,
        constraints,
    })
}

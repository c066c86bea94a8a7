//! `doppel place`: VMShadow placement from the command line — make scenarios, plan moves, rank
//! desktops from pcap captures, and run the Figure-11 benchmark.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use doppel_place::fingerprint::{window_metrics, FingerprintConfig, RankTracker};
use doppel_place::gen::{generate, GenOptions};
use doppel_place::ilp::{self, Backend, IlpOptions, IlpStatus};
use doppel_place::{heuristic, Algo, Model, Plan, Scenario};

#[derive(Args, Debug)]
pub struct PlaceArgs {
    #[command(subcommand)]
    command: PlaceCommand,
}

#[derive(Subcommand, Debug)]
enum PlaceCommand {
    /// Plan moves for a scenario with one algorithm; writes the plan as JSON.
    ///
    /// The scenario lists sites (capacity in slots, mem_gb, disk_gb; global or regional), user
    /// locations with their latency to every site, desktops (rank, size, dirty rate, site, user),
    /// thresholds T_h/T_l and k. Make one with `doppel place gen`.
    Plan {
        /// Scenario JSON file.
        #[arg(long)]
        scenario: PathBuf,
        /// rank, benefit and cost are the paper's three greedy heuristics; improved adds local
        /// search; ilp is exact.
        #[arg(long, value_enum)]
        algo: AlgoArg,
        /// Write the plan here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// ILP solver.
        #[arg(long, value_enum, default_value = "best")]
        backend: BackendArg,
        /// ILP time limit in seconds (the plan is then feasible but maybe not optimal).
        #[arg(long)]
        time_limit: Option<f64>,
    },
    /// Generate a synthetic scenario (JSON on standard output or --out).
    Gen {
        #[arg(long)]
        vms: usize,
        #[arg(long)]
        sites: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Closest sites a candidate considers.
        #[arg(long, default_value_t = 5)]
        k: usize,
        /// Weight of migration cost in the objective.
        #[arg(long, default_value_t = 0.0)]
        cost_weight: f64,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Rank a desktop from a pcap capture: per-window metrics and the smoothed rank.
    Rank {
        #[arg(long)]
        pcap: PathBuf,
        /// The desktop's IP address (flows are oriented from it).
        #[arg(long)]
        desktop: std::net::IpAddr,
        /// Window length, seconds.
        #[arg(long, default_value_t = 10.0)]
        window: f64,
        /// EMA weight of the newest window.
        #[arg(long, default_value_t = 0.5)]
        alpha: f64,
    },
    /// Figure 11 of the paper: run time and effectiveness of every algorithm for 2000 desktops
    /// over 2..40 sites and 40 sites over 100..1200 desktops. Writes fig11.csv, fig11.md and
    /// fig11.svg to --out-dir.
    Bench {
        /// A few points only, with a short ILP limit.
        #[arg(long)]
        quick: bool,
        /// ILP time limit per point, seconds.
        #[arg(long)]
        ilp_limit: Option<f64>,
        /// k for the generated scenarios; 0 means every site.
        #[arg(long, default_value_t = 0)]
        k: usize,
        #[arg(long, default_value = "out/place-fig11")]
        out_dir: PathBuf,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum AlgoArg {
    Rank,
    Benefit,
    Cost,
    Improved,
    Ilp,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum BackendArg {
    Best,
    Highs,
    Microlp,
}

impl AlgoArg {
    fn algo(self) -> Algo {
        match self {
            AlgoArg::Rank => Algo::Rank,
            AlgoArg::Benefit => Algo::Benefit,
            AlgoArg::Cost => Algo::Cost,
            AlgoArg::Improved => Algo::Improved,
            AlgoArg::Ilp => Algo::Ilp,
        }
    }
}

pub fn run(args: PlaceArgs) -> Result<()> {
    match args.command {
        PlaceCommand::Plan {
            scenario,
            algo,
            out,
            backend,
            time_limit,
        } => {
            let text = std::fs::read_to_string(&scenario)
                .with_context(|| format!("reading {}", scenario.display()))?;
            let sc =
                Scenario::from_json(&text).with_context(|| format!("in {}", scenario.display()))?;
            let m = Model::new(&sc).with_context(|| format!("in {}", scenario.display()))?;
            let backend = match backend {
                BackendArg::Best => Backend::best(),
                BackendArg::Highs => Backend::Highs,
                BackendArg::Microlp => Backend::Microlp,
            };
            let start = Instant::now();
            let (plan, note) = match heuristic(&m, algo.algo()) {
                Some(p) => (p, String::new()),
                None => {
                    let o = ilp::solve(
                        &m,
                        IlpOptions {
                            backend,
                            time_limit_s: time_limit,
                        },
                    )?;
                    let status = match o.status {
                        IlpStatus::Optimal => "proven optimal",
                        IlpStatus::TimeLimit => "time limit: NOT proven optimal",
                    };
                    (
                        o.plan,
                        format!(", {} {status}, {} variables", backend.name(), o.variables),
                    )
                }
            };
            let ms = start.elapsed().as_secs_f64() * 1e3;
            eprintln!(
                "{}: {} moves, objective {:.2}, latency decrease {:.1} ms, migration cost {:.1}, {ms:.1} ms{note}",
                plan.algo,
                plan.moves.len(),
                plan.objective,
                plan.latency_decrease_ms,
                plan.total_cost
            );
            write_out(
                out.as_deref(),
                &(serde_json::to_string_pretty(&plan)? + "\n"),
            )
        }
        PlaceCommand::Gen {
            vms,
            sites,
            seed,
            k,
            cost_weight,
            out,
        } => {
            if sites == 0 {
                bail!("--sites must be at least 1");
            }
            let sc = generate(GenOptions {
                vms,
                sites,
                seed,
                k,
                cost_weight,
            });
            write_out(out.as_deref(), &(sc.to_json() + "\n"))
        }
        PlaceCommand::Rank {
            pcap,
            desktop,
            window,
            alpha,
        } => {
            let bytes =
                std::fs::read(&pcap).with_context(|| format!("reading {}", pcap.display()))?;
            let cap = doppel_place::pcap::parse(&bytes)
                .with_context(|| format!("in {}", pcap.display()))?;
            let cfg = FingerprintConfig {
                window_s: window,
                alpha,
                ..Default::default()
            };
            let mut t = RankTracker::new(cfg.clone())?;
            let start = cap.packets.first().map_or(0.0, |p| p.ts_s);
            println!("window  ports  traffic  rd_KB/s  rank   smoothed");
            for (w, recs) in doppel_place::pcap::flows_by_window(&cap, desktop, start, window) {
                let mm = window_metrics(&cfg, &recs);
                let r = t.observe("d", &recs);
                println!(
                    "{w:6}  {:5.2}  {:7.2}  {:7.2}  {:5.3}  {r:.3}",
                    mm.port_share,
                    mm.traffic_share,
                    mm.rd_bandwidth_bps / 1e3,
                    mm.rank
                );
            }
            if cap.skipped > 0 {
                eprintln!(
                    "{} records were not TCP/UDP over IP and were skipped",
                    cap.skipped
                );
            }
            Ok(())
        }
        PlaceCommand::Bench {
            quick,
            ilp_limit,
            k,
            out_dir,
        } => bench(quick, ilp_limit, k, &out_dir),
    }
}

fn write_out(out: Option<&Path>, text: &str) -> Result<()> {
    match out {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display())),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// One measured algorithm at one point.
#[derive(Debug, Clone)]
struct Row {
    sweep: &'static str,
    vms: usize,
    sites: usize,
    algo: &'static str,
    ms: f64,
    /// CPU time of the benchmark thread, when the system reports it: on a shared, loaded machine
    /// this is what the algorithm itself cost, wall time includes waiting for a core.
    cpu_ms: Option<f64>,
    objective: f64,
    latency_decrease: f64,
    moves: usize,
    /// For the ILP: proven optimal.
    optimal: Option<bool>,
}

fn bench(quick: bool, ilp_limit: Option<f64>, k: usize, out_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let limit = ilp_limit.unwrap_or(if quick { 10.0 } else { 60.0 });
    let (site_points, vm_points): (Vec<usize>, Vec<usize>) = if quick {
        (vec![2, 10, 40], vec![100, 600, 1200])
    } else {
        (
            vec![2, 5, 10, 15, 20, 25, 30, 35, 40],
            (1..=12).map(|i| i * 100).collect(),
        )
    };
    let mut points: Vec<(&'static str, usize, usize)> =
        site_points.iter().map(|&s| ("sites", 2000, s)).collect();
    points.extend(vm_points.iter().map(|&n| ("vms", n, 40)));
    let mut rows = Vec::new();
    for (sweep, vms, sites) in points {
        let sc = generate(GenOptions {
            vms,
            sites,
            seed: 1,
            k: if k == 0 { sites } else { k },
            cost_weight: 0.0,
        });
        let m = Model::new(&sc)?;
        for algo in Algo::ALL {
            let start = Instant::now();
            let cpu_start = thread_cpu_ns();
            let (plan, optimal): (Plan, Option<bool>) = match heuristic(&m, algo) {
                Some(p) => (p, None),
                None => match ilp::solve(
                    &m,
                    IlpOptions {
                        backend: Backend::best(),
                        time_limit_s: Some(limit),
                    },
                ) {
                    Ok(o) => (o.plan, Some(o.status == IlpStatus::Optimal)),
                    Err(e) => {
                        eprintln!("{vms} x {sites}: ILP failed: {e}");
                        continue;
                    }
                },
            };
            let ms = start.elapsed().as_secs_f64() * 1e3;
            #[allow(clippy::cast_precision_loss)]
            let cpu_ms = cpu_start
                .zip(thread_cpu_ns())
                .map(|(a, b)| b.saturating_sub(a) as f64 / 1e6);
            eprintln!(
                "{sweep:5} {vms:5} desktops x {sites:2} sites  {:8}  {ms:10.1} ms (cpu {:10.1} ms)  objective {:10.1}  moves {:4}{}",
                algo.name(),
                cpu_ms.unwrap_or(f64::NAN),
                plan.objective,
                plan.moves.len(),
                match optimal {
                    Some(true) => "  optimal",
                    Some(false) => "  TIME LIMIT",
                    None => "",
                }
            );
            rows.push(Row {
                sweep,
                vms,
                sites,
                algo: algo.name(),
                ms,
                cpu_ms,
                objective: plan.objective,
                latency_decrease: plan.latency_decrease_ms,
                moves: plan.moves.len(),
                optimal,
            });
        }
    }
    let mut csv = String::from("sweep,vms,sites,algo,ms,cpu_ms,objective,latency_decrease_ms,moves,ilp_optimal,objective_vs_ilp,latency_vs_ilp\n");
    let mut md = String::from(
        "| desktops | sites | algo | run time (ms) | CPU time (ms) | objective | latency decrease (ms) | moves | objective / ILP | latency decrease / ILP |\n|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in &rows {
        let ilp = ilp_row(&rows, r);
        let ratio = |a: f64, b: Option<f64>| b.filter(|b| *b > 0.0).map(|b| a / b);
        let ro = ratio(r.objective, ilp.map(|x| x.objective));
        let rl = ratio(r.latency_decrease, ilp.map(|x| x.latency_decrease));
        let fmt = |x: Option<f64>| x.map_or(String::from("-"), |x| format!("{:.1}%", 100.0 * x));
        let opt = match r.optimal {
            Some(true) => "optimal",
            Some(false) => "time-limit",
            None => "",
        };
        writeln!(
            csv,
            "{},{},{},{},{:.3},{},{:.3},{:.3},{},{},{},{}",
            r.sweep,
            r.vms,
            r.sites,
            r.algo,
            r.ms,
            r.cpu_ms.map_or(String::new(), |c| format!("{c:.3}")),
            r.objective,
            r.latency_decrease,
            r.moves,
            opt,
            ro.map_or(String::new(), |x| format!("{x:.4}")),
            rl.map_or(String::new(), |x| format!("{x:.4}"))
        )?;
        let algo = if r.optimal == Some(false) {
            format!("{} (not proven optimal)", r.algo)
        } else {
            r.algo.to_string()
        };
        writeln!(
            md,
            "| {} | {} | {} | {:.1} | {} | {:.1} | {:.0} | {} | {} | {} |",
            r.vms,
            r.sites,
            algo,
            r.ms,
            r.cpu_ms.map_or(String::from("-"), |c| format!("{c:.1}")),
            r.objective,
            r.latency_decrease,
            r.moves,
            fmt(ro),
            fmt(rl)
        )?;
    }
    std::fs::write(out_dir.join("fig11.csv"), csv)?;
    std::fs::write(out_dir.join("fig11.md"), md)?;
    plot(&rows, &out_dir.join("fig11.svg"))?;
    eprintln!("wrote {}/fig11.{{csv,md,svg}}", out_dir.display());
    Ok(())
}

/// CPU time of the calling thread in nanoseconds (Linux: the first field of
/// `/proc/thread-self/schedstat`), or `None` where the system does not report it.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// The ILP's row at `r`'s point: the reference for effectiveness.
fn ilp_row<'a>(rows: &'a [Row], r: &Row) -> Option<&'a Row> {
    rows.iter()
        .find(|x| x.sweep == r.sweep && x.vms == r.vms && x.sites == r.sites && x.algo == "ilp")
}

fn plot(rows: &[Row], path: &Path) -> Result<()> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (1200, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((2, 2));
    for (i, area) in panels.iter().enumerate() {
        let sweep = if i % 2 == 0 { "sites" } else { "vms" };
        let time_panel = i < 2;
        #[allow(clippy::cast_precision_loss)]
        let x_of = |r: &Row| {
            if sweep == "sites" {
                r.sites as f64
            } else {
                r.vms as f64
            }
        };
        let xmax = rows
            .iter()
            .filter(|r| r.sweep == sweep)
            .map(x_of)
            .fold(1.0f64, f64::max);
        let title = match (time_panel, sweep) {
            (true, "sites") => "(a) CPU time, 2000 desktops",
            (true, _) => "(a) CPU time, 40 sites",
            (false, "sites") => "(b) latency decrease vs ILP, 2000 desktops",
            (false, _) => "(b) latency decrease vs ILP, 40 sites",
        };
        let xlabel = if sweep == "sites" {
            "cloud sites"
        } else {
            "desktops"
        };
        // (x, y) of one algorithm in this panel: run time, or latency decrease as % of the ILP's.
        let series = |algo: &str| -> Vec<(f64, f64)> {
            rows.iter()
                .filter(|r| r.sweep == sweep && r.algo == algo)
                .filter_map(|r| {
                    if time_panel {
                        return Some((x_of(r), r.cpu_ms.unwrap_or(r.ms).max(0.01)));
                    }
                    let ilp = ilp_row(rows, r)?;
                    (ilp.latency_decrease > 0.0)
                        .then_some((x_of(r), 100.0 * r.latency_decrease / ilp.latency_decrease))
                })
                .collect()
        };
        let mut chart = ChartBuilder::on(area);
        chart
            .caption(title, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60);
        let x = 0f64..xmax * 1.05;
        if time_panel {
            let ymax = rows.iter().map(|r| r.ms).fold(1.0f64, f64::max) * 2.0;
            let chart = chart.build_cartesian_2d(x, (0.01f64..ymax).log_scale())?;
            draw_algos(
                chart,
                xlabel,
                "CPU ms (log; wall ms where not reported)",
                &series,
                SeriesLabelPosition::UpperLeft,
            )?;
        } else {
            let chart = chart.build_cartesian_2d(x, 0f64..110f64)?;
            draw_algos(
                chart,
                xlabel,
                "% of ILP",
                &series,
                SeriesLabelPosition::LowerLeft,
            )?;
        }
    }
    root.present()?;
    Ok(())
}

/// Draws one line per algorithm (with its points and a legend) on a Figure-11 panel.
fn draw_algos<'a, Y>(
    mut chart: plotters::prelude::ChartContext<
        'a,
        plotters::prelude::SVGBackend<'a>,
        plotters::prelude::Cartesian2d<plotters::coord::types::RangedCoordf64, Y>,
    >,
    xlabel: &str,
    ylabel: &str,
    series: &dyn Fn(&str) -> Vec<(f64, f64)>,
    legend: plotters::prelude::SeriesLabelPosition,
) -> Result<()>
where
    Y: plotters::prelude::Ranged<ValueType = f64> + plotters::coord::ranged1d::ValueFormatter<f64>,
{
    use plotters::prelude::*;
    const COLORS: [RGBColor; 5] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(0, 0, 0),
    ];
    chart
        .configure_mesh()
        .x_desc(xlabel)
        .y_desc(ylabel)
        .draw()?;
    for (algo, color) in Algo::ALL.iter().zip(COLORS) {
        let pts = series(algo.name());
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
            .label(algo.name())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .position(legend)
        .draw()?;
    Ok(())
}

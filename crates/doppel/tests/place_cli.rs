//! `doppel place` as users run it: generate a scenario, plan it with every algorithm, and get a
//! clear error naming the field for a bad scenario.

use std::process::{Command, Output};

fn doppel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_doppel"))
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn gen_then_plan_with_every_algorithm() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("place_cli");
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("scenario.json");
    let sc = scenario.to_str().unwrap();
    let o = doppel(&[
        "place", "gen", "--vms", "60", "--sites", "6", "--seed", "3", "--out", sc,
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let same = doppel(&["place", "gen", "--vms", "60", "--sites", "6", "--seed", "3"]);
    assert_eq!(
        text(&same.stdout),
        std::fs::read_to_string(&scenario).unwrap()
    );

    let mut objectives = Vec::new();
    for algo in ["rank", "benefit", "cost", "improved", "ilp"] {
        let out = dir.join(format!("{algo}.json"));
        let o = doppel(&[
            "place",
            "plan",
            "--scenario",
            sc,
            "--algo",
            algo,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{algo}: {}", text(&o.stderr));
        let plan: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(plan["algo"], algo);
        assert!(
            plan["moves"].as_array().is_some_and(|m| !m.is_empty()),
            "{algo}: no moves"
        );
        objectives.push(plan["objective"].as_f64().unwrap());
        if algo == "ilp" {
            assert!(
                text(&o.stderr).contains("proven optimal"),
                "{}",
                text(&o.stderr)
            );
        }
    }
    let ilp = objectives[4];
    assert!(
        objectives.iter().all(|&o| o <= ilp + 1e-6),
        "{objectives:?}"
    );
}

#[test]
fn a_bad_scenario_names_its_field() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("place_cli_bad");
    std::fs::create_dir_all(&dir).unwrap();
    let good = doppel(&["place", "gen", "--vms", "5", "--sites", "2", "--seed", "1"]);
    let mut v: serde_json::Value = serde_json::from_slice(&good.stdout).unwrap();
    v["sites"][1]["mem_gb"] = serde_json::json!(-4.0);
    let path = dir.join("bad.json");
    std::fs::write(&path, v.to_string()).unwrap();
    let o = doppel(&[
        "place",
        "plan",
        "--scenario",
        path.to_str().unwrap(),
        "--algo",
        "cost",
    ]);
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(e.contains("sites[1].mem_gb"), "{e}");
    assert!(e.contains("bad.json"), "{e}");
}

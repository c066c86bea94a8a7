//! Bad scenarios give errors that name the field.

use doppel_place::gen::{generate, GenOptions};
use doppel_place::{Model, Scenario};

fn small() -> Scenario {
    generate(GenOptions {
        vms: 5,
        sites: 3,
        seed: 3,
        k: 2,
        cost_weight: 0.0,
    })
}

fn json_error(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v: serde_json::Value = serde_json::from_str(&small().to_json()).unwrap();
    edit(&mut v);
    let text = serde_json::to_string(&v).unwrap();
    match Scenario::from_json(&text) {
        Err(e) => e.to_string(),
        Ok(sc) => Model::new(&sc).unwrap_err().to_string(),
    }
}

#[test]
fn the_generated_scenario_round_trips_through_json() {
    let sc = small();
    assert_eq!(Scenario::from_json(&sc.to_json()).unwrap(), sc);
    Model::new(&sc).unwrap();
}

#[test]
fn unknown_site_names_the_desktop_field() {
    let e = json_error(|v| v["desktops"][2]["site"] = "atlantis".into());
    assert!(
        e.contains("desktops[2].site") && e.contains("atlantis"),
        "{e}"
    );
    let e = json_error(|v| {
        v["locations"][1]["latency_ms"]["atlantis"] = 5.0.into();
    });
    assert!(
        e.contains("locations[1].latency_ms.atlantis") && e.contains("unknown site"),
        "{e}"
    );
}

#[test]
fn negative_capacity_names_the_site_field() {
    let e = json_error(|v| v["sites"][1]["mem_gb"] = (-4.0).into());
    assert!(
        e.contains("sites[1].mem_gb") && e.contains("at least 0"),
        "{e}"
    );
}

#[test]
fn nan_latency_names_the_matrix_entry() {
    let mut sc = small();
    let site = sc.sites[0].name.clone();
    sc.locations[1].latency_ms.insert(site.clone(), f64::NAN);
    let e = Model::new(&sc).unwrap_err().to_string();
    assert!(
        e.contains(&format!("locations[1].latency_ms.{site}")) && e.contains("finite"),
        "{e}"
    );
    // JSON has no NaN; a string where a number belongs is caught by the parser, with the path.
    let e = json_error(|v| v["locations"][0]["latency_ms"]["g0"] = "NaN".into());
    assert!(e.contains("locations[0].latency_ms.g0"), "{e}");
}

#[test]
fn missing_field_is_named() {
    let e = json_error(|v| {
        v["desktops"][3].as_object_mut().unwrap().remove("rank");
    });
    assert!(
        e.contains("desktops[3]") && e.contains("missing field `rank`"),
        "{e}"
    );
    let e = json_error(|v| {
        v["locations"][0]["latency_ms"]
            .as_object_mut()
            .unwrap()
            .remove("g0");
    });
    assert!(
        e.contains("locations[0].latency_ms.g0") && e.contains("missing"),
        "{e}"
    );
    let e = json_error(|v| {
        v.as_object_mut().unwrap().remove("thresholds");
    });
    assert!(e.contains("missing field `thresholds`"), "{e}");
}

#[test]
fn other_bad_values_are_named() {
    let e = json_error(|v| v["desktops"][0]["dirty_rate"] = 1.0.into());
    assert!(e.contains("desktops[0].dirty_rate"), "{e}");
    let e = json_error(|v| v["sites"][0]["slots"] = 0.0.into());
    assert!(
        e.contains("sites[0].slots") && e.contains("already use"),
        "{e}"
    );
    let e = json_error(|v| v["k"] = 0.into());
    assert!(e.contains("`k`"), "{e}");
    let e = json_error(|v| v["desktops"][1]["user"] = "mars".into());
    assert!(e.contains("desktops[1].user"), "{e}");
    let e = json_error(|v| v["sites"][0]["colour"] = "red".into());
    assert!(e.contains("sites[0]") && e.contains("colour"), "{e}");
}

//! The Mann–Kendall trend test against pymannkendall's `original_test` on a committed fixture
//! (regenerate with scripts/mann_kendall_fixtures.py). Tolerance: 1e-9 absolute on S, z and p.

use atlas_analytics::emerging::mann_kendall;
use serde_json::Value;

#[test]
fn trends_equal_pymannkendall() {
    let document: Value = serde_json::from_str(include_str!("fixtures/mann_kendall.json")).unwrap();
    let fixtures = document["fixtures"].as_array().unwrap();
    assert!(fixtures.len() >= 6);
    for fixture in fixtures {
        let series: Vec<f64> = fixture["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|value| value.as_f64().unwrap())
            .collect();
        let trend = mann_kendall(&series);
        let name = fixture["name"].as_str().unwrap();
        for (ours, theirs, what) in [
            (trend.s, fixture["s"].as_f64().unwrap(), "S"),
            (trend.z, fixture["z"].as_f64().unwrap(), "z"),
            (trend.p, fixture["p"].as_f64().unwrap(), "p"),
        ] {
            assert!(
                (ours - theirs).abs() < 1e-9,
                "{name}: {what} is {ours}, pymannkendall says {theirs}"
            );
        }
    }
}

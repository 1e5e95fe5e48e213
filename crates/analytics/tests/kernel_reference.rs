//! Gi* with triangular and gaussian kernel weights against an independent numpy implementation
//! of Ord and Getis's general formula, itself proven against esda on binary weights when the
//! fixture is made (scripts/gistar_kernel_fixtures.py). Tolerance: 1e-9 absolute on z.

use atlas_analytics::gistar::{Kernel, StudyArea, gi_star};
use h3o::CellIndex;
use serde_json::Value;

#[test]
fn kernel_z_scores_equal_the_reference() {
    let fixture: Value =
        serde_json::from_str(include_str!("fixtures/gistar_kernels.json")).unwrap();
    let cells: Vec<CellIndex> = fixture["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|cell| cell.as_str().unwrap().parse().unwrap())
        .collect();
    let values: Vec<f64> = fixture["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|value| value.as_f64().unwrap())
        .collect();
    let area = StudyArea::new(cells).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for case in cases {
        let kernel = match case["kernel"].as_str().unwrap() {
            "triangular" => Kernel::Triangular,
            "gaussian" => Kernel::Gaussian,
            other => panic!("unexpected kernel {other}"),
        };
        let k = u32::try_from(case["k"].as_u64().unwrap()).unwrap();
        let ours = gi_star(&area, &values, k, kernel).unwrap();
        for (i, expected) in case["z"].as_array().unwrap().iter().enumerate() {
            let expected = expected.as_f64().unwrap();
            assert!(
                (ours.z[i] - expected).abs() < 1e-9,
                "{kernel:?} k={k} cell {i}: {} against {expected}",
                ours.z[i]
            );
        }
    }
}

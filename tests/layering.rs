//! The crate graph points one way (docs/architecture.md): pure crates have no database, web or
//! runtime; the store depends on the domain only; the application layer knows no HTTP. Read
//! from `cargo metadata`, so that a dependency added against the grain fails here.

#![expect(clippy::unwrap_used, reason = "a test fails where it unwraps, loudly")]

use std::collections::BTreeMap;
use std::process::Command;

/// Each workspace crate's normal (not dev or build) dependencies.
fn dependencies() -> BTreeMap<String, Vec<String>> {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| {
            let normal = package["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|dependency| dependency["kind"].is_null())
                .map(|dependency| dependency["name"].as_str().unwrap().to_owned())
                .collect();
            (package["name"].as_str().unwrap().to_owned(), normal)
        })
        .collect()
}

/// Whether `name` is one of `forbidden` (a trailing `*` matches a prefix).
fn matches(name: &str, forbidden: &[&str]) -> bool {
    forbidden.iter().any(|pattern| {
        pattern
            .strip_suffix('*')
            .map_or(name == *pattern, |prefix| name.starts_with(prefix))
    })
}

#[test]
fn every_crate_depends_only_along_the_layers() {
    const IO: [&str; 6] = [
        "diesel*",
        "tokio*",
        "actix*",
        "deadpool*",
        "reqwest",
        "postgres*",
    ];
    const OURS_ABOVE_PURE: [&str; 4] = ["atlas-store", "atlas-app", "atlas-server", "atlas-cli"];
    let rules: [(&str, Vec<&str>); 9] = [
        ("atlas-domain", [IO.as_slice(), &["atlas-*"]].concat()),
        (
            "atlas-analytics",
            [IO.as_slice(), &OURS_ABOVE_PURE].concat(),
        ),
        ("atlas-ingest", [IO.as_slice(), &OURS_ABOVE_PURE].concat()),
        ("atlas-access", [IO.as_slice(), &OURS_ABOVE_PURE].concat()),
        (
            "atlas-store",
            vec![
                "actix*",
                "atlas-analytics",
                "atlas-ingest",
                "atlas-access",
                "atlas-app",
                "atlas-server",
                "atlas-cli",
                "geo*",
                "h3o-*",
            ],
        ),
        (
            "atlas-postgres",
            vec![
                "actix*",
                "atlas-analytics",
                "atlas-ingest",
                "atlas-access",
                "atlas-app",
                "atlas-server",
                "atlas-cli",
            ],
        ),
        ("atlas-app", vec!["actix*", "atlas-server", "atlas-cli"]),
        ("atlas-server", vec!["atlas-cli"]),
        ("atlas-cli", vec!["actix*"]),
    ];
    let graph = dependencies();
    for (crate_name, forbidden) in &rules {
        let depends = graph
            .get(*crate_name)
            .unwrap_or_else(|| panic!("{crate_name} is not in the workspace"));
        let against: Vec<&String> = depends
            .iter()
            .filter(|name| matches(name, forbidden))
            .collect();
        assert!(
            against.is_empty(),
            "{crate_name} depends on {against:?}, against the layers of docs/architecture.md"
        );
    }
    let ours: Vec<&String> = graph
        .keys()
        .filter(|name| name.starts_with("atlas-"))
        .collect();
    assert!(
        ours.iter()
            .all(|name| name.as_str() == "atlas-e2e" || rules.iter().any(|(rule, _)| rule == name)),
        "a crate without a layering rule: {ours:?}"
    );
}

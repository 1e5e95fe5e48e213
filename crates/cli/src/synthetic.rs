//! Synthetic multi-agency exports for the demo: children of three neighbouring partnerships
//! known to police, social care, health and schools, with clusters planted at known places.
//! Nothing here is real; the generator is seeded, so every run writes the same files.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use atlas_domain::{AgencyKind, StoredResolution};
use atlas_domain::{PostcodeCell, ReferenceArea};
use chrono::NaiveDate;
use h3o::{CellIndex, LatLng};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};

/// A place where exploitation is planted, so that the map has hotspots the tests know.
#[derive(Debug, Clone, Copy)]
pub struct PlantedCluster {
    /// Where it is.
    pub name: &'static str,
    /// Its partnership.
    pub partnership: &'static str,
    /// Centre, WGS84.
    pub lat: f64,
    /// Centre, WGS84.
    pub lon: f64,
}

/// The planted clusters.
pub const CLUSTERS: [PlantedCluster; 4] = [
    PlantedCluster {
        name: "Blackpool town centre",
        partnership: "E06000009",
        lat: 53.8130,
        lon: -3.0400,
    },
    PlantedCluster {
        name: "Preston city centre",
        partnership: "E10000017",
        lat: 53.7590,
        lon: -2.6990,
    },
    PlantedCluster {
        name: "Burnley town centre",
        partnership: "E10000017",
        lat: 53.7893,
        lon: -2.2405,
    },
    PlantedCluster {
        name: "Rochdale town centre",
        partnership: "E08000005",
        lat: 53.6153,
        lon: -2.1557,
    },
];

/// An agency of the demo and the partnerships it serves.
#[derive(Debug, Clone, Copy)]
pub struct DemoAgency {
    /// Name.
    pub name: &'static str,
    /// Kind.
    pub kind: AgencyKind,
    /// GSS codes of the partnerships it serves.
    pub partnerships: &'static [&'static str],
}

/// The demo's agencies: four kinds across three partnerships.
pub const AGENCIES: [DemoAgency; 7] = [
    DemoAgency {
        name: "Lancashire Constabulary",
        kind: AgencyKind::Police,
        partnerships: &["E10000017", "E06000009"],
    },
    DemoAgency {
        name: "Greater Manchester Police",
        kind: AgencyKind::Police,
        partnerships: &["E08000005"],
    },
    DemoAgency {
        name: "Lancashire County Council Children's Services",
        kind: AgencyKind::SocialCare,
        partnerships: &["E10000017"],
    },
    DemoAgency {
        name: "Blackpool Council Children's Services",
        kind: AgencyKind::SocialCare,
        partnerships: &["E06000009"],
    },
    DemoAgency {
        name: "Rochdale Borough Council Children's Services",
        kind: AgencyKind::SocialCare,
        partnerships: &["E08000005"],
    },
    DemoAgency {
        name: "Lancashire and South Cumbria NHS Foundation Trust",
        kind: AgencyKind::Health,
        partnerships: &["E10000017", "E06000009", "E08000005"],
    },
    DemoAgency {
        name: "Pennine Schools Safeguarding Service",
        kind: AgencyKind::Education,
        partnerships: &["E10000017", "E06000009", "E08000005"],
    },
];

const FORENAMES: [&str; 16] = [
    "Amelia", "Olivia", "Isla", "Ava", "Mia", "Ivy", "Lily", "Freya", "Noah", "Oliver", "Leo",
    "Arthur", "Muhammad", "Zoë", "Aisha", "Kai",
];
const SURNAMES: [&str; 16] = [
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
    "Khan", "O'Brien", "Walker", "Wright", "Hughes", "Ahmed", "Nowak",
];

struct Child {
    forename: &'static str,
    surname: &'static str,
    born: NaiveDate,
    cluster: Option<PlantedCluster>,
}

/// The raw export (CSV with identifiers) of each agency, keyed by the agency's name.
#[must_use]
pub fn exports(
    areas: &[ReferenceArea],
    postcodes: &[PostcodeCell],
    children: usize,
    seed: u64,
) -> BTreeMap<&'static str, String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let codes = ["E10000017", "E06000009", "E08000005"];
    // Children live, and most incidents happen, where people live: at the cell of a postcode
    // drawn from the directory (so a busy street counts as often as it has postcodes), kept to
    // cells wholly inside the boundary so that each place lies inside it. Without postcodes,
    // every such cell is as likely.
    let cells: BTreeMap<&str, Vec<u64>> = codes
        .iter()
        .filter_map(|code| {
            areas
                .iter()
                .find(|area| area.code.as_str() == *code)
                .map(|area| {
                    let whole = |cell: u64| area.coverage.is_whole(cell);
                    let lived_in: Vec<u64> = postcodes
                        .iter()
                        .filter(|postcode| {
                            postcode.authority.as_ref().is_some_and(|a| a == code)
                                && whole(postcode.cell)
                        })
                        .map(|postcode| postcode.cell)
                        .collect();
                    let places = if lived_in.is_empty() {
                        area.coverage
                            .cells(StoredResolution::FINEST)
                            .iter()
                            .copied()
                            .filter(|cell| whole(*cell))
                            .collect()
                    } else {
                        lived_in
                    };
                    (*code, places)
                })
        })
        .collect();
    let start = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or(NaiveDate::MIN);
    let mut exports: BTreeMap<&'static str, String> = AGENCIES
        .iter()
        .map(|agency| (agency.name, "forename,surname,date_of_birth,record_kind,occurred_on,lat,lon,location_role,indicators,age,sex\n".to_owned()))
        .collect();
    for index in 0..children {
        let partnership = codes[[0, 0, 0, 1, 2][index % 5]];
        let clusters: Vec<PlantedCluster> = CLUSTERS
            .iter()
            .copied()
            .filter(|c| c.partnership == partnership)
            .collect();
        let child = Child {
            forename: FORENAMES[rng.random_range(0..FORENAMES.len())],
            surname: SURNAMES[rng.random_range(0..SURNAMES.len())],
            born: NaiveDate::from_ymd_opt(
                2008 + rng.random_range(0..8),
                rng.random_range(1..=12),
                rng.random_range(1..=28),
            )
            .unwrap_or(start),
            cluster: (rng.random_range(0.0..1.0) < 0.3)
                .then(|| clusters[rng.random_range(0..clusters.len())]),
        };
        let Some(area_cells) = cells.get(partnership) else {
            continue;
        };
        let home = cell_centre(area_cells[rng.random_range(0..area_cells.len())]);
        let events = rng.random_range(1..=5);
        for _ in 0..events {
            let serving: Vec<&DemoAgency> = AGENCIES
                .iter()
                .filter(|agency| agency.partnerships.contains(&partnership))
                .collect();
            let agency = serving[rng.random_range(0..serving.len())];
            let day = start + chrono::Duration::days(rng.random_range(0..730));
            let (lat, lon, role) = match child.cluster {
                // About a kilometre across: several resolution-8 cells, so that the cluster is
                // a neighbourhood of high counts (what Gi* finds), not one busy cell.
                Some(cluster) if rng.random_range(0.0..1.0) < 0.8 => (
                    cluster.lat + rng.random_range(-0.005..0.005),
                    cluster.lon + rng.random_range(-0.008..0.008),
                    "meeting",
                ),
                _ if rng.random_range(0.0..1.0) < 0.5 => (home.0, home.1, "home"),
                _ => {
                    let place = cell_centre(area_cells[rng.random_range(0..area_cells.len())]);
                    (place.0, place.1, "incident")
                }
            };
            let kind = record_kind(agency.kind, &mut rng);
            let indicators = indicators(child.cluster.is_some(), &mut rng);
            let age = (day - child.born).num_days() / 365;
            let sex = if rng.random_range(0.0..1.0) < 0.8 {
                "F"
            } else {
                "M"
            };
            let line = &mut exports.entry(agency.name).or_default();
            let _ = writeln!(
                line,
                "{},{},{},{kind},{day},{lat:.5},{lon:.5},{role},{indicators},{age},{sex}",
                child.forename,
                csv_text(child.surname),
                child.born,
            );
        }
    }
    exports
}

fn cell_centre(cell: u64) -> (f64, f64) {
    CellIndex::try_from(cell)
        .map(LatLng::from)
        .map_or((0.0, 0.0), |centre| (centre.lat(), centre.lng()))
}

fn csv_text(text: &str) -> String {
    if text.contains([',', '"']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn record_kind(kind: AgencyKind, rng: &mut StdRng) -> &'static str {
    let choices: &[&str] = match kind {
        AgencyKind::Police => &["incident", "missing_episode", "intelligence"],
        AgencyKind::SocialCare => &["referral", "assessment", "missing_episode"],
        AgencyKind::Health => &["health_attendance"],
        _ => &["education_concern"],
    };
    choices[rng.random_range(0..choices.len())]
}

fn indicators(exploited: bool, rng: &mut StdRng) -> String {
    let all = [
        "missing",
        "substance_misuse",
        "older_associate",
        "gifts_money",
        "online_contact",
        "hotel_taxi",
        "school_absence",
        "sexual_health",
        "self_harm",
        "known_peer_exploited",
    ];
    let count = if exploited {
        rng.random_range(2..=4)
    } else {
        rng.random_range(0..=1)
    };
    let mut chosen: Vec<&str> = (0..count)
        .map(|_| all[rng.random_range(0..all.len())])
        .collect();
    chosen.sort_unstable();
    chosen.dedup();
    chosen.join(";")
}

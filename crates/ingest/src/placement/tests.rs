use geo::{LineString, Polygon};
use proptest::prelude::*;

use super::*;
use crate::reference::cover;

/// A rectangle in degrees, optionally with a rectangular hole.
fn rectangle(west: f64, south: f64, east: f64, north: f64) -> LineString<f64> {
    LineString::from(vec![
        (west, south),
        (east, south),
        (east, north),
        (west, north),
        (west, south),
    ])
}

fn area(outer: LineString<f64>, holes: Vec<LineString<f64>>) -> MultiPolygon<f64> {
    MultiPolygon::new(vec![Polygon::new(outer, holes)])
}

/// Served `areas` (index order), with their coverage, and `others` not served.
fn territory(served: &[MultiPolygon<f64>], others: &[MultiPolygon<f64>]) -> Territory {
    let mut cells = Vec::new();
    for (index, polygons) in served.iter().enumerate() {
        let coverage = cover(polygons).unwrap();
        cells.extend(
            coverage
                .cells(atlas_domain::StoredResolution::FINEST)
                .iter()
                .map(|&cell| CoveredCell {
                    cell,
                    area: index,
                    whole: coverage.is_whole(cell),
                }),
        );
    }
    Territory::new(
        served
            .iter()
            .enumerate()
            .map(|(index, polygons)| (format!("E0600000{index}"), Some(polygons.clone())))
            .collect(),
        cells.into_iter().collect::<FixedCoverage>(),
        others,
    )
}

fn point(lat: f64, lng: f64) -> Location {
    Location::Point(LatLng::new(lat, lng).unwrap())
}

/// Two areas sharing the meridian -2.5 between 53.7 and 53.8; the sea lies west of -2.6.
fn west_and_east() -> (MultiPolygon<f64>, MultiPolygon<f64>) {
    (
        area(rectangle(-2.6, 53.7, -2.5, 53.8), vec![]),
        area(rectangle(-2.5, 53.7, -2.4, 53.8), vec![]),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Every point inside a served boundary is kept, in its own area and a covered cell, and
    /// every point inside the neighbour's is refused.
    #[test]
    fn points_inside_are_kept_and_points_across_the_border_refused(
        points in proptest::collection::vec((0.0..1.0_f64, 0.0..1.0_f64), 200),
    ) {
        let (west, east) = west_and_east();
        let served = territory(std::slice::from_ref(&west), std::slice::from_ref(&east));
        let coverage = cover(&west).unwrap();
        for (x, y) in points {
            let (lat, lng) = (53.7 + y * 0.1, -2.6 + x * 0.1);
            let placed = served.place(point(lat, lng));
            prop_assert!(placed.is_ok(), "({lat}, {lng}) refused: {placed:?}");
            let placed = placed.unwrap();
            prop_assert_eq!(placed.area, 0);
            prop_assert!(coverage.cells(atlas_domain::StoredResolution::FINEST).binary_search(&u64::from(placed.cell)).is_ok());
            prop_assert_eq!(served.place(point(lat, lng + 0.1)), Err(Unplaced::Outside));
        }
    }
}

#[test]
fn a_border_cell_goes_to_the_side_its_point_is_on() {
    let (west, east) = west_and_east();
    let both = territory(&[west, east], &[]);
    // 30 m either side of the shared meridian, in the same or adjacent border cells.
    let left = both.place(point(53.75, -2.5005)).unwrap();
    let right = both.place(point(53.75, -2.4995)).unwrap();
    assert_eq!((left.area, right.area), (0, 1));
}

#[test]
fn the_sea_within_the_margin_belongs_to_the_nearest_coast() {
    let (west, east) = west_and_east();
    let served = territory(std::slice::from_ref(&west), std::slice::from_ref(&east));
    // 0.01° of longitude at 53.75° N is about 660 m: a pier.
    let pier = served.place(point(53.75, -2.61)).unwrap();
    assert_eq!(pier.area, 0);
    let coverage = cover(&west).unwrap();
    assert!(
        coverage
            .cells(atlas_domain::StoredResolution::FINEST)
            .binary_search(&u64::from(pier.cell))
            .is_ok(),
        "moved onto a covered cell"
    );
    // 0.03° is about 2 km out: too far.
    assert_eq!(served.place(point(53.75, -2.63)), Err(Unplaced::Outside));
    // Beyond the neighbour's far side the sea is the neighbour's, not ours.
    assert_eq!(served.place(point(53.75, -2.39)), Err(Unplaced::Outside));
}

#[test]
fn an_enclave_is_its_own_partnership() {
    let hole = rectangle(-2.56, 53.74, -2.54, 53.76);
    let county = area(rectangle(-2.6, 53.7, -2.5, 53.8), vec![hole.clone()]);
    let city = area(hole, vec![]);
    let county_only = territory(std::slice::from_ref(&county), std::slice::from_ref(&city));
    assert_eq!(
        county_only.place(point(53.75, -2.55)),
        Err(Unplaced::Outside)
    );
    assert_eq!(county_only.place(point(53.739, -2.55)).unwrap().area, 0);
    let city_only = territory(std::slice::from_ref(&city), std::slice::from_ref(&county));
    assert_eq!(city_only.place(point(53.75, -2.55)).unwrap().area, 0);
    assert_eq!(
        city_only.place(point(53.739, -2.55)),
        Err(Unplaced::Outside)
    );
}

#[test]
fn a_postcode_belongs_to_its_own_authority_whichever_side_its_cell_is() {
    let (west, east) = west_and_east();
    let served = territory(std::slice::from_ref(&west), std::slice::from_ref(&east));
    // The grid reference lies 400 m inside the neighbour, but the directory says the west area.
    let across = LatLng::new(53.75, -2.494)
        .unwrap()
        .to_cell(Resolution::Nine);
    let placed = served
        .place(Location::Postcode(PostcodePlace {
            cell: across,
            area: Some(0),
        }))
        .unwrap();
    assert_eq!(placed.area, 0);
    assert_ne!(
        placed.cell, across,
        "moved to a covered cell of its own area"
    );
    // Without an authority, the cell's centre decides: the neighbour's.
    assert_eq!(
        served.place(Location::Postcode(PostcodePlace {
            cell: across,
            area: None,
        })),
        Err(Unplaced::Outside)
    );
    // Far from its own area even the directory cannot place it.
    let far = LatLng::new(53.75, -2.2).unwrap().to_cell(Resolution::Nine);
    assert_eq!(
        served.place(Location::Postcode(PostcodePlace {
            cell: far,
            area: Some(0),
        })),
        Err(Unplaced::TooFar)
    );
}

/// Real boundaries of the shipped reference data, by code.
fn real_areas(codes: &[&str]) -> Vec<atlas_domain::ReferenceArea> {
    let boundaries = include_str!("../../../../data/reference/utla_boundaries_england.geojson");
    let features: Vec<&str> = boundaries
        .lines()
        .filter(|line| {
            codes
                .iter()
                .any(|code| line.contains(&format!("\"code\":\"{code}\"")))
        })
        .map(|line| line.trim_end_matches(','))
        .collect();
    let collection = format!(
        "{{\"type\":\"FeatureCollection\",\"features\":[{}]}}",
        features.join(",")
    );
    let mut areas = crate::reference::read_boundaries(
        collection.as_bytes(),
        &crate::reference::BoundaryFields::default(),
    )
    .unwrap();
    areas.sort_by_key(|area| codes.iter().position(|code| *code == area.code.as_str()));
    areas
}

/// A territory serving `areas[served]` alone, with every other area of `areas` as a neighbour.
fn serving(areas: &[atlas_domain::ReferenceArea], served: usize) -> Territory {
    let polygons = |area: &atlas_domain::ReferenceArea| {
        crate::reference::boundary_polygons(&area.boundary).unwrap()
    };
    let others: Vec<MultiPolygon<f64>> = areas
        .iter()
        .enumerate()
        .filter(|(index, _)| *index != served)
        .map(|(_, area)| polygons(area))
        .collect();
    let own = &areas[served];
    let cells = own
        .coverage
        .cells(atlas_domain::StoredResolution::FINEST)
        .iter()
        .map(|&cell| CoveredCell {
            cell,
            area: 0,
            whole: own.coverage.is_whole(cell),
        });
    Territory::new(
        vec![(own.code.to_string(), Some(polygons(own)))],
        cells.collect::<FixedCoverage>(),
        &others,
    )
}

/// Deterministic points spread uniformly over a boundary's box, kept when inside it.
fn points_inside(polygons: &MultiPolygon<f64>, wanted: usize) -> Vec<LatLng> {
    let bounds = polygons.bounding_rect().unwrap();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1_u64 << 53) as f64
    };
    let mut points = Vec::new();
    while points.len() < wanted {
        let x = bounds.min().x + next() * bounds.width();
        let y = bounds.min().y + next() * bounds.height();
        if polygons.contains(&Point::new(x, y)) {
            points.push(LatLng::new(y, x).unwrap());
        }
    }
    points
}

#[test]
fn uniform_points_inside_real_boundaries_are_all_kept_and_across_the_border_refused() {
    // Blackpool (coastal), Lancashire (land borders), Rochdale, and Derby, an enclave in
    // Derbyshire. Before placement by position, 0.7 % to 3.6 % of such points were refused.
    let codes = [
        "E06000009",
        "E10000017",
        "E08000005",
        "E06000015",
        "E10000007",
    ];
    let areas = real_areas(&codes);
    assert_eq!(areas.len(), codes.len());
    for (served, area) in areas.iter().enumerate() {
        let territory = serving(&areas, served);
        let polygons = crate::reference::boundary_polygons(&area.boundary).unwrap();
        let refused: Vec<LatLng> = points_inside(&polygons, 2_000)
            .into_iter()
            .filter(|point| territory.place(Location::Point(*point)).is_err())
            .collect();
        assert!(refused.is_empty(), "{}: refused {refused:?}", area.code);
        for (other, neighbour) in areas.iter().enumerate() {
            if other == served {
                continue;
            }
            let polygons = crate::reference::boundary_polygons(&neighbour.boundary).unwrap();
            let accepted = points_inside(&polygons, 300)
                .into_iter()
                .filter(|point| territory.place(Location::Point(*point)).is_ok())
                .count();
            assert_eq!(
                accepted, 0,
                "{} accepted points of {}",
                area.code, neighbour.code
            );
        }
    }
}

#[test]
fn every_postcode_of_the_directory_sample_is_placed_in_its_own_partnership() {
    // 0.2 % of the sample's grid references lie outside their own generalised polygon (the
    // data's README), and more sit in border cells: the directory's authority decides, and the
    // record moves to the nearest covered cell of that authority when its own is not covered.
    let codes = ["E06000009", "E08000005", "E10000017"];
    let areas = real_areas(&codes);
    let sample = include_str!("../../../../data/reference/onspd_sample_lancashire_cluster.csv");
    let file = crate::reference::read_postcodes(sample.as_bytes()).unwrap();
    for (served, code) in codes.iter().enumerate() {
        let territory = serving(&areas, served);
        let (mut placed, mut total) = (0_u32, 0_u32);
        for postcode in &file.postcodes {
            if postcode
                .authority
                .as_ref()
                .map(atlas_domain::GssCode::as_str)
                != Some(*code)
            {
                continue;
            }
            total += 1;
            let place = PostcodePlace {
                cell: CellIndex::try_from(postcode.cell).unwrap(),
                area: Some(0),
            };
            placed += u32::from(territory.place(Location::Postcode(place)).is_ok());
        }
        assert!(total > 5_000, "{code}: {total} postcodes");
        assert_eq!(placed, total, "{code}: postcodes lost");
    }
}

#[test]
fn a_tiles_span_holds_its_own_cells_and_no_other() {
    let cell = LatLng::new(53.8175, -3.0357)
        .unwrap()
        .to_cell(Resolution::Nine);
    let tile = cell.parent(TILE_RESOLUTION).unwrap();
    let (first, last) = tile_span(tile).unwrap();
    let children: Vec<u64> = tile.children(Resolution::Nine).map(u64::from).collect();
    assert_eq!(children.len(), 343);
    assert!(
        children
            .iter()
            .all(|&child| (first..=last).contains(&child))
    );
    // Every cell near the tile but outside it falls outside the span.
    for outside in cell
        .grid_disk::<Vec<_>>(12)
        .into_iter()
        .filter(|near| near.parent(TILE_RESOLUTION) != Some(tile))
    {
        assert!(!(first..=last).contains(&u64::from(outside)), "{outside}");
    }
}

#[test]
fn placing_a_few_records_reads_only_the_tiles_around_them() {
    // A served area of some 70 by 110 km, hundreds of tiles, and one record in it.
    let large = area(rectangle(-3.0, 53.5, -2.0, 54.5), vec![]);
    let served = territory(std::slice::from_ref(&large), &[]);
    assert_eq!(
        served.tiles_read(),
        0,
        "nothing is read before a record comes"
    );
    assert_eq!(served.place(point(54.0, -2.5)).unwrap().area, 0);
    assert!(
        (1..=2).contains(&served.tiles_read()),
        "{} tiles read for one record",
        served.tiles_read()
    );
}

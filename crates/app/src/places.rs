//! Place names for maps, hot spot areas and release rows: the places imported as reference data
//! (`atlas reference import --places`; the demo imports `data/reference/england_places.csv`,
//! GeoNames, CC BY 4.0), and where a point lies from the nearest of them, in words.

use atlas_domain::Place;
use rstar::{PointDistance, RTree, RTreeObject};

/// The attribution GeoNames asks for (CC BY 4.0): the default source of imported places.
pub const GEONAMES_ATTRIBUTION: &str = "Place names © GeoNames (geonames.org), CC BY 4.0";

/// How many of the plane's nearest places are ranked by their distance on the ground.
const NEAREST_CANDIDATES: usize = 8;

/// Within this many kilometres of a place's point, a point is at the place's centre.
const CENTRE_KM: f64 = 1.5;

/// The places that name a partnership's points: those within its local authorities (every
/// place when none of them has one), indexed for the nearest one.
#[derive(Debug)]
pub struct PlaceNames {
    /// The places, most populous first.
    places: Vec<Place>,
    /// The places' points, projected so that nearness in the plane is nearness on the ground.
    index: RTree<Projected>,
    /// The cosine of the places' mean latitude: the projection's scale of longitude.
    scale: f64,
    /// Where the names come from, as every product naming them shows it.
    attribution: Option<String>,
}

/// A place's point on the plane (longitude scaled by the cosine of the mean latitude, and
/// latitude, in degrees), with its position in [`PlaceNames::places`].
#[derive(Debug, Clone, Copy)]
struct Projected {
    point: [f64; 2],
    place: usize,
}

impl RTreeObject for Projected {
    type Envelope = rstar::AABB<[f64; 2]>;

    fn envelope(&self) -> Self::Envelope {
        rstar::AABB::from_point(self.point)
    }
}

impl PointDistance for Projected {
    fn distance_2(&self, point: &[f64; 2]) -> f64 {
        (self.point[0] - point[0]).powi(2) + (self.point[1] - point[1]).powi(2)
    }
}

impl PlaceNames {
    /// Indexes `gazetteer`'s places.
    #[must_use]
    pub fn new(gazetteer: atlas_store::places::Gazetteer) -> Self {
        let mut places = gazetteer.places;
        places.sort_by(|a, b| {
            b.population
                .cmp(&a.population)
                .then_with(|| a.name.cmp(&b.name))
        });
        #[expect(clippy::cast_precision_loss, reason = "a few thousand places")]
        let mean_latitude =
            places.iter().map(|place| place.lat).sum::<f64>() / places.len().max(1) as f64;
        let scale = mean_latitude.to_radians().cos();
        let index = RTree::bulk_load(
            places
                .iter()
                .enumerate()
                .map(|(position, place)| Projected {
                    point: [place.lon * scale, place.lat],
                    place: position,
                })
                .collect(),
        );
        let attribution = (!gazetteer.sources.is_empty()).then(|| gazetteer.sources.join("; "));
        Self {
            places,
            index,
            scale,
            attribution,
        }
    }

    /// The places, most populous first.
    #[must_use]
    pub fn into_places(self) -> Vec<Place> {
        self.places
    }

    /// Where the names come from ("Place names © GeoNames (geonames.org), CC BY 4.0"); none
    /// when no place is known.
    #[must_use]
    pub fn attribution(&self) -> Option<&str> {
        self.attribution.as_deref()
    }

    /// Where the point (`lat`, `lon`) is, in words, from the nearest place: "Burnley centre",
    /// or "3 km south-west of Burnley"; none when no place is known.
    #[must_use]
    pub fn describe(&self, lat: f64, lon: f64) -> Option<String> {
        // The plane's few nearest, ranked on the ground: one scale of longitude is only
        // approximate across a country.
        let (place, (km, direction)) = self
            .index
            .nearest_neighbor_iter(&[lon * self.scale, lat])
            .take(NEAREST_CANDIDATES)
            .map(|candidate| {
                let place = &self.places[candidate.place];
                (
                    place,
                    distance_and_direction((place.lat, place.lon), (lat, lon)),
                )
            })
            .min_by(|(_, (a, _)), (_, (b, _))| a.total_cmp(b))?;
        Some(if km < CENTRE_KM {
            format!("{} centre", place.name)
        } else {
            format!("{km:.0} km {direction} of {}", place.name)
        })
    }

    /// Where the centre of `cell` is, in words (see [`PlaceNames::describe`]).
    #[must_use]
    pub fn describe_cell(&self, cell: h3o::CellIndex) -> Option<String> {
        let centre = h3o::LatLng::from(cell);
        self.describe(centre.lat(), centre.lng())
    }
}

/// Kilometres between two points (haversine, mean Earth radius) and the compass point (of
/// eight) of the second seen from the first.
fn distance_and_direction(
    (lat1, lon1): (f64, f64),
    (lat2, lon2): (f64, f64),
) -> (f64, &'static str) {
    const DIRECTIONS: [&str; 8] = [
        "north",
        "north-east",
        "east",
        "south-east",
        "south",
        "south-west",
        "west",
        "north-west",
    ];
    let (phi1, phi2) = (lat1.to_radians(), lat2.to_radians());
    let (d_phi, d_lambda) = ((lat2 - lat1).to_radians(), (lon2 - lon1).to_radians());
    let a = (d_phi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (d_lambda / 2.0).sin().powi(2);
    let km = 2.0 * 6371.0088 * a.sqrt().asin();
    let bearing = (d_lambda.sin() * phi2.cos())
        .atan2(phi1.cos() * phi2.sin() - phi1.sin() * phi2.cos() * d_lambda.cos())
        .to_degrees()
        .rem_euclid(360.0);
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a bearing from 0 to 360 degrees, in eighths"
    )]
    let eighth = ((bearing + 22.5) / 45.0) as usize % 8;
    (km, DIRECTIONS[eighth])
}

#[cfg(test)]
mod tests {
    use super::*;
    use atlas_domain::GssCode;
    use atlas_store::places::Gazetteer;

    fn place(name: &str, lat: f64, lon: f64, population: u64) -> Place {
        Place {
            name: name.to_owned(),
            lat,
            lon,
            population,
            authority: GssCode::parse("E10000017").unwrap(),
        }
    }

    fn lancashire() -> PlaceNames {
        PlaceNames::new(Gazetteer {
            places: vec![
                place("Padiham", 53.7971, -2.3114, 12_000),
                place("Burnley", 53.7995, -2.2330, 73_000),
                place("Preston", 53.7632, -2.7031, 114_000),
            ],
            sources: vec!["Place names © GeoNames (geonames.org), CC BY 4.0".to_owned()],
        })
    }

    #[test]
    fn places_come_most_populous_first_with_their_attribution() {
        let names = lancashire();
        let order: Vec<&str> = names.places.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(order, ["Preston", "Burnley", "Padiham"]);
        assert!(names.attribution().unwrap().contains("GeoNames"));
        let none = PlaceNames::new(Gazetteer::default());
        assert_eq!(none.attribution(), None);
        assert_eq!(none.describe(53.8, -2.2), None);
    }

    #[test]
    fn points_are_described_from_the_nearest_place() {
        let names = lancashire();
        assert_eq!(
            names.describe(53.7995, -2.2330).as_deref(),
            Some("Burnley centre")
        );
        assert_eq!(
            names.describe(53.782, -2.2333).as_deref(),
            Some("2 km south of Burnley")
        );
        // Nearer Padiham than Burnley, though Burnley is larger.
        assert_eq!(
            names.describe(53.80, -2.32).as_deref(),
            Some("Padiham centre")
        );
        assert_eq!(
            names.describe(53.70, -2.70).as_deref(),
            Some("7 km south of Preston")
        );
    }

    #[test]
    fn the_index_finds_the_same_place_as_a_search_of_every_place() {
        let shipped = atlas_ingest::reference::read_places(
            include_str!("../../../data/reference/england_places.csv").as_bytes(),
        )
        .unwrap();
        let names = PlaceNames::new(Gazetteer {
            places: shipped.clone(),
            sources: vec![],
        });
        for step in 0..400 {
            let (lat, lon) = (
                50.2 + f64::from(step % 20) * 0.25,
                -5.5 + f64::from(step / 20) * 0.36,
            );
            let nearest = shipped
                .iter()
                .min_by(|a, b| {
                    distance_and_direction((a.lat, a.lon), (lat, lon))
                        .0
                        .total_cmp(&distance_and_direction((b.lat, b.lon), (lat, lon)).0)
                })
                .unwrap();
            let found = names.describe(lat, lon).unwrap();
            let (km, _) = distance_and_direction((nearest.lat, nearest.lon), (lat, lon));
            // The place named is the nearest on the ground (ties aside).
            let described_km = names
                .places
                .iter()
                .filter(|place| {
                    found.ends_with(&format!(" {}", place.name))
                        || found == format!("{} centre", place.name)
                })
                .map(|place| distance_and_direction((place.lat, place.lon), (lat, lon)).0)
                .fold(f64::INFINITY, f64::min);
            assert!(
                described_km <= km + 1e-9,
                "{lat},{lon}: {found} vs {}",
                nearest.name
            );
        }
    }
}

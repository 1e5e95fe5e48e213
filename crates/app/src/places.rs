//! Place names for hotspot areas: the 3,314 towns and villages of England shipped with Atlas
//! (`data/reference/england_places.csv`, GeoNames, CC BY 4.0), and where a point lies from the
//! nearest of them, in words.

use std::sync::OnceLock;

/// The attribution every product naming places shows.
pub const ATTRIBUTION: &str = "Place names © GeoNames (geonames.org), CC BY 4.0";

/// Within this many kilometres of a place's point, a point is at the place's centre.
const CENTRE_KM: f64 = 1.5;

/// The places shipped with Atlas.
const PLACES: &str = include_str!("../../../data/reference/england_places.csv");

/// A named place.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Place {
    /// Its name.
    pub name: String,
    /// Latitude, degrees (WGS84).
    pub lat: f64,
    /// Longitude, degrees (WGS84).
    pub lon: f64,
    /// Its population as GeoNames gives it (0 where unknown).
    pub population: u64,
    /// The upper-tier local authority (GSS code) holding it.
    pub authority: String,
}

/// The places within `authorities`, most populous first: what a map labels.
#[must_use]
pub fn within(authorities: &[String]) -> Vec<Place> {
    let mut places: Vec<Place> = shipped()
        .iter()
        .filter(|place| authorities.contains(&place.authority))
        .cloned()
        .collect();
    places.sort_by(|a, b| {
        b.population
            .cmp(&a.population)
            .then_with(|| a.name.cmp(&b.name))
    });
    places
}

/// The shipped places, read once.
fn shipped() -> &'static [Place] {
    static PLACES_READ: OnceLock<Vec<Place>> = OnceLock::new();
    PLACES_READ.get_or_init(|| {
        #[derive(serde::Deserialize)]
        struct Row {
            name: String,
            lat: f64,
            lon: f64,
            population: Option<u64>,
            utla_code: String,
        }
        csv::Reader::from_reader(PLACES.as_bytes())
            .deserialize::<Row>()
            .filter_map(Result::ok)
            .map(|row| Place {
                name: row.name,
                lat: row.lat,
                lon: row.lon,
                population: row.population.unwrap_or_default(),
                authority: row.utla_code,
            })
            .collect()
    })
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

/// Where the point (`lat`, `lon`) is, in words, from the nearest place in `authorities` (any
/// place when none of them has one): "Burnley centre", or "3 km south-west of Burnley".
#[must_use]
pub fn describe(lat: f64, lon: f64, authorities: &[String]) -> Option<String> {
    let places = shipped();
    let within: Vec<&Place> = places
        .iter()
        .filter(|place| authorities.contains(&place.authority))
        .collect();
    let candidates: Vec<&Place> = if within.is_empty() {
        places.iter().collect()
    } else {
        within
    };
    let (place, (km, direction)) = candidates
        .into_iter()
        .map(|place| {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_place_is_read() {
        assert_eq!(shipped().len(), 3314);
    }

    #[test]
    fn a_partnerships_places_come_most_populous_first() {
        let places = within(&["E10000017".to_owned()]);
        assert!(places.len() > 50, "{}", places.len());
        assert!(
            places
                .windows(2)
                .all(|pair| pair[0].population >= pair[1].population)
        );
        assert!(places.iter().take(5).any(|place| place.name == "Preston"));
        assert!(places.iter().all(|place| place.authority == "E10000017"));
    }

    #[test]
    fn points_are_described_from_the_nearest_place_of_the_partnership() {
        let lancashire = ["E10000017".to_owned()];
        // By Burnley's GeoNames point, and 2 km south of it.
        assert_eq!(
            describe(53.7995, -2.2330, &lancashire).as_deref(),
            Some("Burnley centre")
        );
        let described = describe(53.782, -2.2333, &lancashire).expect("a place");
        assert!(described == "2 km south of Burnley", "{described}");
        // Outside every listed authority, the nearest place anywhere.
        assert!(describe(53.7893, -2.2405, &["E09000001".to_owned()]).is_some());
    }
}

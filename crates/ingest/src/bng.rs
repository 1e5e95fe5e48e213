//! British National Grid (EPSG:27700) easting/northing to WGS84 latitude/longitude.
//!
//! The inverse transverse Mercator projection on the Airy 1830 ellipsoid gives OSGB36 latitude
//! and longitude (Ordnance Survey, "A guide to coordinate systems in Great Britain", annex C);
//! a seven-parameter Helmert transformation then moves them to WGS84. The Helmert step is good to
//! a few metres, far finer than the 170 m edge of the resolution-9 cell a location becomes.

/// Airy 1830 semi-major and semi-minor axes, metres.
const AIRY: (f64, f64) = (6_377_563.396, 6_356_256.909);
/// GRS80/WGS84 semi-major and semi-minor axes, metres.
const WGS84: (f64, f64) = (6_378_137.0, 6_356_752.314_245);
/// Scale factor on the central meridian.
const F0: f64 = 0.999_601_271_7;
/// True origin: 49° N, 2° W.
const ORIGIN_LAT: f64 = 49.0;
const ORIGIN_LON: f64 = -2.0;
/// False easting and northing of the true origin, metres.
const E0: f64 = 400_000.0;
const N0: f64 = -100_000.0;

/// Converts an easting and northing (metres) to WGS84 `(latitude, longitude)` in degrees.
#[must_use]
pub fn to_wgs84(easting: f64, northing: f64) -> (f64, f64) {
    let (lat, lon) = to_osgb36(easting, northing);
    helmert_to_wgs84(lat, lon)
}

/// Inverse transverse Mercator: grid coordinates to OSGB36 `(latitude, longitude)` in degrees.
#[must_use]
pub fn to_osgb36(easting: f64, northing: f64) -> (f64, f64) {
    let (a, b) = AIRY;
    let e2 = 1.0 - (b * b) / (a * a);
    let n = (a - b) / (a + b);
    let lat0 = ORIGIN_LAT.to_radians();
    let lon0 = ORIGIN_LON.to_radians();

    let meridional_arc = |lat: f64| {
        let (d, s) = (lat - lat0, lat + lat0);
        b * F0
            * ((1.0 + n + 1.25 * n * n + 1.25 * n * n * n) * d
                - (3.0 * n + 3.0 * n * n + 21.0 / 8.0 * n * n * n) * d.sin() * s.cos()
                + (15.0 / 8.0 * n * n + 15.0 / 8.0 * n * n * n) * (2.0 * d).sin() * (2.0 * s).cos()
                - 35.0 / 24.0 * n * n * n * (3.0 * d).sin() * (3.0 * s).cos())
    };
    let mut lat = (northing - N0) / (a * F0) + lat0;
    let mut arc = meridional_arc(lat);
    // Converges to 0.01 mm in a handful of steps for any point in or near Great Britain.
    for _ in 0..20 {
        if (northing - N0 - arc).abs() < 1e-5 {
            break;
        }
        lat += (northing - N0 - arc) / (a * F0);
        arc = meridional_arc(lat);
    }

    let sin_lat = lat.sin();
    let nu = a * F0 / (1.0 - e2 * sin_lat * sin_lat).sqrt();
    let rho = a * F0 * (1.0 - e2) / (1.0 - e2 * sin_lat * sin_lat).powf(1.5);
    let eta2 = nu / rho - 1.0;
    let (tan, sec) = (lat.tan(), 1.0 / lat.cos());
    let (t2, t4, t6) = (tan * tan, tan.powi(4), tan.powi(6));
    let vii = tan / (2.0 * rho * nu);
    let viii = tan / (24.0 * rho * nu.powi(3)) * (5.0 + 3.0 * t2 + eta2 - 9.0 * t2 * eta2);
    let ix = tan / (720.0 * rho * nu.powi(5)) * (61.0 + 90.0 * t2 + 45.0 * t4);
    let x = sec / nu;
    let xi = sec / (6.0 * nu.powi(3)) * (nu / rho + 2.0 * t2);
    let xii = sec / (120.0 * nu.powi(5)) * (5.0 + 28.0 * t2 + 24.0 * t4);
    let xiia = sec / (5040.0 * nu.powi(7)) * (61.0 + 662.0 * t2 + 1320.0 * t4 + 720.0 * t6);
    let de = easting - E0;
    let latitude = lat - vii * de.powi(2) + viii * de.powi(4) - ix * de.powi(6);
    let longitude = lon0 + x * de - xi * de.powi(3) + xii * de.powi(5) - xiia * de.powi(7);
    (latitude.to_degrees(), longitude.to_degrees())
}

/// OSGB36 to WGS84 through Earth-centred Cartesian coordinates (height 0), with the Ordnance
/// Survey's published Helmert parameters.
fn helmert_to_wgs84(lat: f64, lon: f64) -> (f64, f64) {
    let (x, y, z) = to_cartesian(lat.to_radians(), lon.to_radians(), AIRY);
    let arcsec = |seconds: f64| (seconds / 3600.0).to_radians();
    let (tx, ty, tz) = (446.448, -125.157, 542.060);
    let scale = 1.0 - 20.4894e-6;
    let (rx, ry, rz) = (arcsec(0.1502), arcsec(0.2470), arcsec(0.8421));
    let x2 = tx + scale * x - rz * y + ry * z;
    let y2 = ty + rz * x + scale * y - rx * z;
    let z2 = tz - ry * x + rx * y + scale * z;
    from_cartesian(x2, y2, z2, WGS84)
}

fn to_cartesian(lat: f64, lon: f64, (a, b): (f64, f64)) -> (f64, f64, f64) {
    let e2 = 1.0 - (b * b) / (a * a);
    let nu = a / (1.0 - e2 * lat.sin().powi(2)).sqrt();
    (
        nu * lat.cos() * lon.cos(),
        nu * lat.cos() * lon.sin(),
        (1.0 - e2) * nu * lat.sin(),
    )
}

fn from_cartesian(x: f64, y: f64, z: f64, (a, b): (f64, f64)) -> (f64, f64) {
    let e2 = 1.0 - (b * b) / (a * a);
    let p = x.hypot(y);
    let mut lat = z.atan2(p * (1.0 - e2));
    for _ in 0..10 {
        let nu = a / (1.0 - e2 * lat.sin().powi(2)).sqrt();
        lat = (z + e2 * nu * lat.sin()).atan2(p);
    }
    (lat.to_degrees(), y.atan2(x).to_degrees())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dms(degrees: f64, minutes: f64, seconds: f64) -> f64 {
        degrees + minutes / 60.0 + seconds / 3600.0
    }

    #[test]
    fn the_ordnance_survey_worked_example_is_reproduced() {
        // OS guide, annex C: Caister Water Tower, E 651409.903 N 313177.270 is
        // 52°39'27.2531"N 1°43'4.5177"E on OSGB36.
        let (lat, lon) = to_osgb36(651_409.903, 313_177.270);
        assert!((lat - dms(52.0, 39.0, 27.2531)).abs() < 1e-7, "{lat}");
        assert!((lon - dms(1.0, 43.0, 4.5177)).abs() < 1e-7, "{lon}");
    }

    #[test]
    fn wgs84_agrees_with_proj_within_a_few_metres() {
        // Reference values from PROJ 9 (pyproj `Transformer.from_crs(27700, 4326)`):
        // Caister Water Tower and a point in Blackpool.
        for ((easting, northing), (lat, lon)) in [
            (
                (651_409.903, 313_177.270),
                (52.657_978_598_579_84, 1.716_051_990_375_036_6),
            ),
            (
                (330_965.0, 436_402.0),
                (53.819_290_336_740_99, -3.050_105_253_685_546_6),
            ),
        ] {
            let (got_lat, got_lon) = to_wgs84(easting, northing);
            let north_error = (got_lat - lat) * 111_200.0;
            let east_error = (got_lon - lon) * 111_200.0 * lat.to_radians().cos();
            assert!(
                north_error.hypot(east_error) < 5.0,
                "{north_error} m N, {east_error} m E"
            );
        }
    }

    #[test]
    fn the_datum_shift_is_the_expected_size() {
        // Between OSGB36 and WGS84 the shift is of the order of 100 m: in Norfolk WGS84 latitude
        // is larger by about 1.5" and longitude smaller by about 6.5".
        let (osgb_lat, osgb_lon) = to_osgb36(651_409.903, 313_177.270);
        let (lat, lon) = to_wgs84(651_409.903, 313_177.270);
        let (d_lat, d_lon) = ((lat - osgb_lat) * 3600.0, (lon - osgb_lon) * 3600.0);
        assert!((1.0..2.5).contains(&d_lat), "{d_lat}\"");
        assert!((-7.5..-5.5).contains(&d_lon), "{d_lon}\"");
    }
}

//! GCJ-02 ↔ WGS-84.
//!
//! GCJ-02 is WGS-84 plus a published, deterministic offset of a few hundred metres inside
//! mainland China. The forward direction is the public formula (Krasovsky ellipsoid
//! constants, the polynomial-and-sine offset); the inverse has no closed form, so
//! [`gcj02_to_wgs84`] iterates the forward formula (fixed point: subtract the offset at the
//! current estimate until it moves by less than 1e-10°, a few centimetres less than a
//! millimetre), which lands within centimetres where the one-step inverse most code uses is
//! off by up to a couple of metres. Written here rather than taken from a crate: the crates
//! that do it (`gcj02`, `coordtransform`, `coordtransform-rs`) are single-release, single
//! maintainer ones, some tied to an old `geo`, and the formula is short, pure and tested
//! below against a published point pair and by round trip.

use std::f64::consts::PI;

/// Semi-major axis of the Krasovsky 1940 ellipsoid the formula uses, in metres.
const A: f64 = 6_378_245.0;
/// First eccentricity squared of that ellipsoid.
const EE: f64 = 0.006_693_421_622_965_943;
/// Iterations of the inverse at most (it converges in 3-5).
const INVERSE_ITERATIONS: usize = 30;

/// Whether a point lies outside the rectangle the offset applies in (there GCJ-02 = WGS-84).
fn outside_china(lat: f64, lon: f64) -> bool {
    !(72.004..=137.8347).contains(&lon) || !(0.8293..=55.8271).contains(&lat)
}

fn offset_lat(x: f64, y: f64) -> f64 {
    let mut d = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
    d += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    d += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
    d += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    d
}

fn offset_lon(x: f64, y: f64) -> f64 {
    let mut d = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
    d += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    d += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
    d += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;
    d
}

/// WGS-84 `(lat, lon)` → GCJ-02 `(lat, lon)`, in degrees (the public forward formula).
pub fn wgs84_to_gcj02(lat: f64, lon: f64) -> (f64, f64) {
    if outside_china(lat, lon) {
        return (lat, lon);
    }
    let d_lat = offset_lat(lon - 105.0, lat - 35.0);
    let d_lon = offset_lon(lon - 105.0, lat - 35.0);
    let rad_lat = lat / 180.0 * PI;
    let magic = 1.0 - EE * rad_lat.sin() * rad_lat.sin();
    let sqrt_magic = magic.sqrt();
    let d_lat = d_lat * 180.0 / ((A * (1.0 - EE)) / (magic * sqrt_magic) * PI);
    let d_lon = d_lon * 180.0 / (A / sqrt_magic * rad_lat.cos() * PI);
    (lat + d_lat, lon + d_lon)
}

/// GCJ-02 `(lat, lon)` → WGS-84 `(lat, lon)`, in degrees: the iterated inverse of
/// [`wgs84_to_gcj02`].
pub fn gcj02_to_wgs84(lat: f64, lon: f64) -> (f64, f64) {
    let (mut w_lat, mut w_lon) = (lat, lon);
    for _ in 0..INVERSE_ITERATIONS {
        let (g_lat, g_lon) = wgs84_to_gcj02(w_lat, w_lon);
        let (d_lat, d_lon) = (lat - g_lat, lon - g_lon);
        w_lat += d_lat;
        w_lon += d_lon;
        if d_lat.abs() < 1e-10 && d_lon.abs() < 1e-10 {
            break;
        }
    }
    (w_lat, w_lon)
}

/// Great-circle distance in metres between two `(lat, lon)` points (haversine, mean radius).
pub fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    const R: f64 = 6_371_008.8;
    let (la1, la2) = (a.0.to_radians(), b.0.to_radians());
    let d_la = la2 - la1;
    let d_lo = (b.1 - a.1).to_radians();
    let h = (d_la / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (d_lo / 2.0).sin().powi(2);
    2.0 * R * h.sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A published WGS-84 / GCJ-02 pair (Shanghai, Pudong) from the test suite of the common
    /// implementations.
    const PAIRS: [((f64, f64), (f64, f64)); 1] = [(
        (31.1774276, 121.5272106),
        (31.17530398364597, 121.531541859215),
    )];

    #[test]
    fn forward_matches_published_pairs_within_a_metre() {
        for (wgs, gcj) in PAIRS {
            let got = wgs84_to_gcj02(wgs.0, wgs.1);
            assert!(
                distance_m(got, gcj) < 1.0,
                "{wgs:?} → {got:?}, expected {gcj:?}"
            );
        }
    }

    #[test]
    fn inverse_recovers_wgs84_within_a_centimetre() {
        for (wgs, gcj) in PAIRS {
            let got = gcj02_to_wgs84(gcj.0, gcj.1);
            assert!(
                distance_m(got, wgs) < 1.0,
                "{gcj:?} → {got:?}, expected {wgs:?}"
            );
        }
        // Round trip in the demo district (Yicheng): far below a metre.
        let wgs = (34.7651, 117.5312);
        let gcj = wgs84_to_gcj02(wgs.0, wgs.1);
        assert!(
            distance_m(wgs, gcj) > 100.0,
            "the offset is hundreds of metres here"
        );
        let back = gcj02_to_wgs84(gcj.0, gcj.1);
        assert!(
            distance_m(back, wgs) < 0.01,
            "round trip {wgs:?} → {back:?}"
        );
    }

    #[test]
    fn outside_china_nothing_moves() {
        assert_eq!(wgs84_to_gcj02(48.8566, 2.3522), (48.8566, 2.3522));
        assert_eq!(gcj02_to_wgs84(48.8566, 2.3522), (48.8566, 2.3522));
    }
}

use super::*;

fn places() -> Places {
    Places::builtin(&Directory::builtin()).expect("built-in grids are valid")
}

fn path(street: &str, community: &str, grid: &str) -> GridPath {
    GridPath {
        street: street.into(),
        community: community.into(),
        grid: grid.into(),
        micro_grid: None,
    }
}

#[test]
fn builtin_covers_every_grid_and_community() {
    let places = places();
    let grids = places.areas().iter().filter(|a| a.level == AreaLevel::Grid);
    assert_eq!(grids.count(), Directory::builtin().grids().count());
    assert_eq!(places.areas().len(), 27 + 9);
    assert_eq!(places.version(), "2026.1");
}

#[test]
fn a_point_inside_lands_in_its_grid() {
    let places = places();
    // Middle of wg-010101 (117.50..117.52, 34.74..34.77).
    assert_eq!(
        places.locate(34.755, 117.51),
        Some(path("jd-01", "sq-0101", "wg-010101"))
    );
    // Middle of wg-030303 (117.66..117.68, 34.80..34.83).
    assert_eq!(
        places.locate(34.815, 117.67),
        Some(path("jd-03", "sq-0303", "wg-030303"))
    );
    assert_eq!(
        places.locate(34.785, 117.595),
        Some(path("jd-02", "sq-0202", "wg-020202"))
    );
}

#[test]
fn a_point_outside_every_polygon_lands_nowhere() {
    let places = places();
    assert_eq!(places.locate(34.739, 117.51), None);
    assert_eq!(places.locate(34.755, 117.681), None);
    assert_eq!(places.locate(39.9, 116.4), None);
}

#[test]
fn a_shared_edge_belongs_to_the_first_grid_in_file_order() {
    let places = places();
    // 117.52 is the edge between wg-010101 and wg-010102.
    assert_eq!(
        places.locate(34.755, 117.52),
        Some(path("jd-01", "sq-0101", "wg-010101"))
    );
    // The outer edge of the jurisdiction is inside.
    assert_eq!(
        places.locate(34.74, 117.51),
        Some(path("jd-01", "sq-0101", "wg-010101"))
    );
}

#[test]
fn malformed_files_name_the_file_and_the_feature() {
    let directory = Directory::builtin();
    let err = Places::parse("g.geojson", "{not json", &directory).unwrap_err();
    assert!(err.to_string().starts_with("g.geojson: "), "{err}");
    let err = Places::parse(
        "g.geojson",
        r#"{"type":"Point","coordinates":[1,2]}"#,
        &directory,
    )
    .unwrap_err();
    assert!(err.to_string().contains("FeatureCollection"), "{err}");
    let unknown = r#"{"type":"FeatureCollection","version":"1","features":[
      {"type":"Feature","properties":{"level":"grid","street":"jd-01","community":"sq-0101","grid":"wg-999"},
       "geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}}]}"#;
    let err = Places::parse("g.geojson", unknown, &directory).unwrap_err();
    assert_eq!(
        err.to_string(),
        "g.geojson: features[0]: field `properties`: names no grid or community of the directory"
    );
    let no_version = r#"{"type":"FeatureCollection","features":[]}"#;
    let err = Places::parse("g.geojson", no_version, &directory).unwrap_err();
    assert!(err.to_string().contains("version"), "{err}");
    let point = r#"{"type":"FeatureCollection","version":"1","features":[
      {"type":"Feature","properties":{"level":"community","street":"jd-01","community":"sq-0101"},
       "geometry":{"type":"Point","coordinates":[0,0]}}]}"#;
    let err = Places::parse("g.geojson", point, &directory).unwrap_err();
    assert!(err.to_string().contains("field `geometry`"), "{err}");
}

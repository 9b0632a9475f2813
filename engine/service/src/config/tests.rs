//! The configuration's sources, precedence, masking and validation.

use super::*;

#[test]
fn defaults_are_valid_and_listen_on_loopback() {
    let config = Config::default();
    config.validate().unwrap();
    assert_eq!(config.http.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.http.body_limit_bytes, 65_536);
    assert_eq!(
        config.events_db(),
        PathBuf::from("./bianmin-data/events.db")
    );
}

#[test]
#[allow(clippy::result_large_err)] // figment's own test jail returns its error type
fn file_then_environment_then_flags_override_in_order() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "b.toml",
            "data_dir = \"/srv/b\"\n[http]\nlisten = \"0.0.0.0:9000\"\n[cache]\nrequests_max = 5\n",
        )?;
        jail.set_env("BIANMIN_CACHE__REQUESTS_MAX", "7");
        jail.set_env("BIANMIN_NATS_URL", "nats://127.0.0.1:4222");
        jail.set_env("DATABASE_URL", "postgres://bm:pw@localhost/bm");
        let overrides = Overrides {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            ..Overrides::default()
        };
        let config =
            Config::load(Some(Path::new("b.toml")), &overrides).map_err(|e| e.to_string())?;
        assert_eq!(config.data_dir, PathBuf::from("/srv/b"));
        assert_eq!(config.cache.requests_max, 7);
        assert_eq!(config.http.listen.port(), 0);
        assert_eq!(config.nats.url.as_deref(), Some("nats://127.0.0.1:4222"));
        let masked = config.masked_toml();
        assert!(
            masked.contains("postgres://bm:****@localhost/bm"),
            "{masked}"
        );
        assert!(!masked.contains("pw@"));
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)] // figment's own test jail returns its error type
fn an_unknown_key_in_a_section_is_refused() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("b.toml", "[http]\nlisen = \"0.0.0.0:9000\"\n")?;
        let result = Config::load(Some(Path::new("b.toml")), &Overrides::default());
        assert!(result.is_err());
        Ok(())
    });
}

#[test]
fn ranking_weights_are_read_partly_and_refused_out_of_range() {
    let config: Config = toml::from_str("[projections.weights]\nbottom_up = 10\n").expect("parses");
    assert_eq!(config.projections.weights.bottom_up, 10.0);
    assert_eq!(
        config.projections.weights.response, 10.0,
        "the rest keep defaults"
    );
    assert!(config.validate().is_ok());
    let mut bad = config.clone();
    bad.projections.weights.satisfaction = 101.0;
    let err = bad.validate().expect_err("out of range");
    assert!(err.to_string().contains("projections.weights"), "{err}");
    assert!(toml::from_str::<Config>("[projections.weights]\nw9 = 1\n").is_err());
}

#[test]
fn the_example_file_parses_to_the_defaults() {
    let example = include_str!("../../../../deploy/config/bianmin.example.toml");
    let config: Config = toml::from_str(example).expect("example parses");
    assert_eq!(config, Config::default());
}

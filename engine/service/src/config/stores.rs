//! Where the configuration puts the engine's own stores (contacts, privacy ledger,
//! deliveries): derived from `[stores]`, the log's backend and `database_url`.

use engine_write::stores::{StoresLocation, is_postgres};

use super::Config;

impl Config {
    /// Where the contact store, the privacy ledger and the delivery table live.
    pub fn stores_location(&self) -> StoresLocation {
        let kek_dir = || {
            self.stores
                .kek_dir
                .clone()
                .unwrap_or_else(|| self.data_dir.join("kek"))
        };
        let embedded = StoresLocation::Embedded {
            data_dir: self.data_dir.clone(),
        };
        match self.stores.url.as_deref() {
            Some("sqlite") => embedded,
            Some(url) => StoresLocation::Postgres {
                url: url.to_string(),
                kek_dir: kek_dir(),
            },
            None => match (&self.nats.url, &self.database_url) {
                (Some(_), Some(url)) if is_postgres(url) => StoresLocation::Postgres {
                    url: url.clone(),
                    kek_dir: kek_dir(),
                },
                _ => embedded,
            },
        }
    }

    /// The database of the notification delivery table: the PostgreSQL stores when they are
    /// in use, else the projections database.
    pub fn deliveries_url(&self) -> String {
        match self.stores_location() {
            StoresLocation::Postgres { url, .. } => url,
            StoresLocation::Embedded { .. } => self.projections_url(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jetstream_with_postgres_projections_puts_the_stores_in_postgres() {
        let mut config = Config::default();
        assert!(matches!(
            config.stores_location(),
            StoresLocation::Embedded { .. }
        ));
        config.database_url = Some("postgres://db/bianmin".into());
        assert!(
            matches!(config.stores_location(), StoresLocation::Embedded { .. }),
            "the embedded log keeps embedded stores"
        );
        config.nats.url = Some("nats://127.0.0.1:4222".into());
        assert_eq!(
            config.stores_location(),
            StoresLocation::Postgres {
                url: "postgres://db/bianmin".into(),
                kek_dir: config.data_dir.join("kek"),
            }
        );
        assert_eq!(config.deliveries_url(), "postgres://db/bianmin");
        config.stores.url = Some("sqlite".into());
        assert!(matches!(
            config.stores_location(),
            StoresLocation::Embedded { .. }
        ));
        assert_eq!(config.deliveries_url(), "postgres://db/bianmin");
    }
}

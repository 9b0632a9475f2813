//! The contact store and the privacy ledger behave the same on both backends: one suite of
//! behaviours, each run against the embedded SQLite files and the PostgreSQL stores.

use std::sync::Arc;

use engine_core::{Clock, ManualClock};
use engine_service::contacts::{ContactStore, PutOutcome, StoredContact};
use engine_service::privacy::{AccessRecord, ErasureRecord, PrivacyLedger};
use engine_service::stores::StoresLocation;
use schemas::ContactRef;
use schemas::intake::ResidentContact;
use tests::pg::TestDb;
use uuid::Uuid;

/// Which backend a run uses.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

const BOTH: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

/// A fresh location of the stores (a data directory, or a database plus a KEK directory).
struct Place {
    location: StoresLocation,
    clock: Arc<dyn Clock>,
    _dir: tempfile::TempDir,
    db: Option<TestDb>,
}

impl Place {
    async fn new(backend: Backend) -> Place {
        let dir = tempfile::tempdir().expect("a directory");
        let (location, db) = match backend {
            Backend::Sqlite => (
                StoresLocation::Embedded {
                    data_dir: dir.path().to_path_buf(),
                },
                None,
            ),
            Backend::Postgres => {
                let db = TestDb::create().await.expect("a test database");
                let location = StoresLocation::Postgres {
                    url: db.url.clone(),
                    kek_dir: dir.path().join("kek"),
                };
                (location, Some(db))
            }
        };
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(tests::app::start_time()));
        Place {
            location,
            clock,
            _dir: dir,
            db,
        }
    }

    /// A store on this place; every call opens another one, as another process would.
    async fn contacts(&self) -> ContactStore {
        ContactStore::open(&self.location, self.clock.clone())
            .await
            .expect("the contact store opens")
    }

    async fn ledger(&self) -> PrivacyLedger {
        PrivacyLedger::open(&self.location)
            .await
            .expect("the ledger opens")
    }

    async fn finish(self) {
        if let Some(db) = self.db {
            db.drop_db().await;
        }
    }
}

fn contact(phone: &str) -> ResidentContact {
    ResidentContact {
        name: Some("Zhao Lei".into()),
        phone: Some(phone.into()),
        id_number: None,
        address_detail: Some("5-1-302".into()),
    }
}

fn reference() -> ContactRef {
    ContactRef(Uuid::now_v7())
}

async fn intake_keeps_the_first_contact_and_only_replace_changes_it(place: &Place) {
    let store = place.contacts().await;
    let r = reference();
    assert_eq!(
        store.put(&r, &contact("1")).await.unwrap(),
        PutOutcome::Stored
    );
    assert_eq!(
        store.put(&r, &contact("2")).await.unwrap(),
        PutOutcome::Kept
    );
    assert_eq!(
        store.get(&r).await.unwrap(),
        Some(StoredContact::Present(contact("1")))
    );
    assert_eq!(
        store.replace(&r, &contact("3")).await.unwrap(),
        PutOutcome::Stored
    );
    assert_eq!(
        store.get(&r).await.unwrap(),
        Some(StoredContact::Present(contact("3")))
    );
    let raw = store.raw_ciphertext(&r).await.unwrap().expect("ciphertext");
    assert!(
        !raw.windows(7).any(|w| w == b"Zhao Le"),
        "sealed, not plaintext"
    );
}

async fn erasure_is_final_and_idempotent(place: &Place) {
    let store = place.contacts().await;
    let r = reference();
    store.put(&r, &contact("1")).await.unwrap();
    assert!(store.raw_key(&r).await.unwrap().is_some());
    assert!(store.erase(&r).await.unwrap(), "a key was destroyed");
    assert_eq!(store.get(&r).await.unwrap(), Some(StoredContact::Erased));
    assert_eq!(store.raw_key(&r).await.unwrap(), None);
    assert_eq!(store.raw_ciphertext(&r).await.unwrap(), None);
    assert!(!store.erase(&r).await.unwrap(), "nothing left to destroy");
    assert_eq!(
        store.put(&r, &contact("2")).await.unwrap(),
        PutOutcome::Erased
    );
    assert_eq!(
        store.replace(&r, &contact("2")).await.unwrap(),
        PutOutcome::Erased
    );
    assert_eq!(store.get(&r).await.unwrap(), Some(StoredContact::Erased));
    assert_eq!(store.get(&reference()).await.unwrap(), None, "never stored");
}

async fn a_discarded_contact_leaves_no_tombstone(place: &Place) {
    let store = place.contacts().await;
    let r = reference();
    store.put(&r, &contact("1")).await.unwrap();
    store.discard(&r).await.unwrap();
    assert_eq!(store.get(&r).await.unwrap(), None);
    assert_eq!(
        store.put(&r, &contact("2")).await.unwrap(),
        PutOutcome::Stored
    );
}

async fn a_contact_written_by_one_process_is_read_and_erased_by_another(place: &Place) {
    let (first, second) = (place.contacts().await, place.contacts().await);
    let r = reference();
    // Both write the same reference at once: one key wins, the second put keeps the first.
    let (one, two) = (contact("1"), contact("2"));
    let (a, b) = tokio::join!(first.put(&r, &one), second.put(&r, &two));
    let mut outcomes = [a.unwrap(), b.unwrap()];
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(outcomes, [PutOutcome::Kept, PutOutcome::Stored]);
    let seen = first.get(&r).await.unwrap();
    assert_eq!(second.get(&r).await.unwrap(), seen);
    assert!(second.erase(&r).await.unwrap());
    assert_eq!(first.get(&r).await.unwrap(), Some(StoredContact::Erased));
}

async fn the_ledger_is_shared_between_processes(place: &Place) {
    let (first, second) = (place.ledger().await, place.ledger().await);
    let now = place.clock.now();
    let erasure = ErasureRecord {
        contact_ref: reference(),
        request_id: Some(Uuid::now_v7()),
        reason: "resident_request".into(),
        actor: "dpo".into(),
        erased_at: now,
        key_destroyed: true,
    };
    let access = AccessRecord {
        contact_ref: reference(),
        request_id: Uuid::now_v7(),
        actor: "audit-wu".into(),
        role: "auditor".into(),
        purpose: "complaint review".into(),
        accessed_at: now,
    };
    first.record_erasure(&erasure).await.unwrap();
    second.record_access(&access).await.unwrap();
    assert_eq!(second.erasures().await.unwrap(), vec![erasure]);
    assert_eq!(first.accesses().await.unwrap(), vec![access]);
}

/// Runs `behaviour` on a fresh place of each backend.
macro_rules! on_both_backends {
    ($($behaviour:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $behaviour() {
                for backend in BOTH {
                    let place = Place::new(backend).await;
                    eprintln!("{}: {backend:?}", stringify!($behaviour));
                    super::$behaviour(&place).await;
                    place.finish().await;
                }
            }
        )*
    };
}

mod both {
    use super::*;
    on_both_backends!(
        intake_keeps_the_first_contact_and_only_replace_changes_it,
        erasure_is_final_and_idempotent,
        a_discarded_contact_leaves_no_tombstone,
        a_contact_written_by_one_process_is_read_and_erased_by_another,
        the_ledger_is_shared_between_processes,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_rewraps_live_keys_and_destroys_the_old_kek_file() {
    let place = Place::new(Backend::Postgres).await;
    let StoresLocation::Postgres { kek_dir, .. } = &place.location else {
        unreachable!("a PostgreSQL place")
    };
    let store = place.contacts().await;
    let (live, erased) = (reference(), reference());
    store.put(&live, &contact("1")).await.unwrap();
    store.put(&erased, &contact("2")).await.unwrap();
    store.erase(&erased).await.unwrap();
    let other = place.contacts().await;
    let rotation = store.rotate_kek().await.expect("rotates");
    assert_eq!((rotation.from_epoch, rotation.to_epoch), (1, 2));
    assert_eq!(rotation.rewrapped, 1, "only the live key");
    assert_eq!(rotation.destroyed, vec![1]);
    assert!(!kek_dir.join("kek-000001.key").exists());
    assert!(kek_dir.join("kek-000002.key").exists());
    // Another process, which cached epoch 1, reads and writes under epoch 2.
    assert_eq!(
        other.get(&live).await.unwrap(),
        Some(StoredContact::Present(contact("1")))
    );
    let fresh = reference();
    other.put(&fresh, &contact("3")).await.unwrap();
    assert_eq!(other.raw_wrapped_key(&fresh).await.unwrap().unwrap().0, 2);
    assert_eq!(
        store.get(&erased).await.unwrap(),
        Some(StoredContact::Erased)
    );
    // A process given another key directory refuses to start instead of wrapping keys
    // nobody else can unwrap.
    let elsewhere = tempfile::tempdir().unwrap();
    let StoresLocation::Postgres { url, .. } = &place.location else {
        unreachable!()
    };
    let refused = ContactStore::open_postgres(url, elsewhere.path(), place.clock.clone()).await;
    assert!(refused.is_err(), "a missing KEK file is refused");
    let sqlite = Place::new(Backend::Sqlite).await;
    assert!(sqlite.contacts().await.rotate_kek().await.is_err());
    place.finish().await;
}

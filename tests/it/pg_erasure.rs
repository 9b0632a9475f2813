//! Erasure in PostgreSQL, checked as an auditor would: on a private server whose files the
//! test can read, contacts with distinctive strings are stored, some erased, the KEK rotated
//! and the server checkpointed; then every file of the data directory (heap, WAL,
//! everything) is scanned for the plaintext and the data keys, and every wrapped key the
//! tables or the files hold is tried against every KEK still on disk.

use std::sync::Arc;

use engine_core::{Clock, ManualClock};
use engine_service::contacts::kek::{self, KekRing};
use engine_service::contacts::{ContactStore, StoredContact};
use schemas::ContactRef;
use schemas::intake::ResidentContact;
use sqlx::{Connection, PgConnection, Row};
use tests::faults::PrivatePostgres;
use uuid::Uuid;

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file under the server's data directory (heap, indexes, WAL, everything).
fn files(pg: &PrivatePostgres) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    fn walk(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push((path, bytes));
            }
        }
    }
    let mut out = Vec::new();
    walk(&pg.data_dir(), &mut out);
    assert!(out.len() > 100, "the scan reads the cluster's files");
    out
}

/// Forces a checkpoint: every dirty page is written to the data files.
async fn checkpoint(url: &str) {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    sqlx::query("CHECKPOINT")
        .execute(&mut conn)
        .await
        .expect("checkpoint");
}

/// The files under the server's data directory that hold `needle`.
fn files_holding(pg: &PrivatePostgres, needle: &[u8]) -> Vec<String> {
    files(pg)
        .into_iter()
        .filter(|(_, bytes)| holds(bytes, needle))
        .map(|(path, _)| path.display().to_string())
        .collect()
}

/// What one stored resident leaves behind, captured before erasure (as a backup would).
struct Resident {
    reference: ContactRef,
    marker: String,
    data_key: Vec<u8>,
    epoch: i32,
    wrapped: Vec<u8>,
    ciphertext: Vec<u8>,
}

/// Every wrapped key in the table, as (key id, epoch, bytes).
async fn wrapped_keys_in_tables(url: &str) -> Vec<(Uuid, i32, Vec<u8>)> {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    let rows = sqlx::query(
        "SELECT key_id, kek_epoch, wrapped_key FROM contact_keys WHERE wrapped_key IS NOT NULL",
    )
    .fetch_all(&mut conn)
    .await
    .expect("keys");
    rows.iter()
        .map(|r| (r.get("key_id"), r.get("kek_epoch"), r.get("wrapped_key")))
        .collect()
}

/// Whether any KEK file in `dir`, under any epoch label, unwraps `wrapped`.
fn any_kek_on_disk_unwraps(dir: &std::path::Path, key_id: Uuid, wrapped: &[u8]) -> bool {
    let ring = KekRing::new(dir);
    let epochs = ring.epochs_on_disk().expect("list KEKs");
    epochs.iter().any(|&file| {
        let kek = ring.load(file).expect("a KEK");
        (0..=epochs.iter().max().copied().unwrap_or(0) + 1)
            .any(|label| kek::unwrap(&kek, key_id, label, wrapped).is_some())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_key_is_unrecoverable_from_every_file_of_postgres_after_rotation() {
    let pg = PrivatePostgres::start().await;
    let url = pg.create_database("erasure").await;
    let keys = tempfile::tempdir().expect("a KEK directory");
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(tests::app::start_time()));
    let store = ContactStore::open_postgres(&url, keys.path(), clock)
        .await
        .expect("the store opens");
    let mut residents = Vec::new();
    for i in 0..4 {
        let marker = format!("AUDIT-MARKER-{i}-{}", Uuid::now_v7().simple());
        let reference = ContactRef(Uuid::now_v7());
        let contact = ResidentContact {
            name: Some(marker.clone()),
            phone: Some(format!("1390000{i:04}")),
            id_number: None,
            address_detail: Some(format!("{marker}-address")),
        };
        store.put(&reference, &contact).await.expect("put");
        let (epoch, wrapped) = store.raw_wrapped_key(&reference).await.unwrap().unwrap();
        residents.push(Resident {
            data_key: store.raw_key(&reference).await.unwrap().expect("a key"),
            ciphertext: store.raw_ciphertext(&reference).await.unwrap().unwrap(),
            reference,
            marker,
            epoch,
            wrapped,
        });
    }
    checkpoint(&url).await;

    // The scan sees what is there: every ciphertext and wrapped key is in the files.
    for r in &residents {
        assert!(
            !files_holding(&pg, &r.ciphertext).is_empty(),
            "the scan finds the ciphertext"
        );
        assert!(
            !files_holding(&pg, &r.wrapped).is_empty(),
            "the scan finds the wrapped key"
        );
        assert_eq!(
            files_holding(&pg, r.marker.as_bytes()),
            Vec::<String>::new(),
            "no plaintext"
        );
        assert_eq!(
            files_holding(&pg, &r.data_key),
            Vec::<String>::new(),
            "no clear data key"
        );
        assert!(any_kek_on_disk_unwraps(
            keys.path(),
            r.reference.0,
            &r.wrapped
        ));
    }

    let (erased, live) = residents.split_at(2);
    for r in erased {
        assert!(store.erase(&r.reference).await.expect("erase"));
    }
    checkpoint(&url).await;
    // What the brief of this design is about: the deleted wrapped key is still in the files
    // (dead tuple, WAL), and until a rotation the KEK on disk still opens it.
    for r in erased {
        assert!(
            !files_holding(&pg, &r.wrapped).is_empty(),
            "PostgreSQL keeps the deleted wrapped key in its files"
        );
        assert!(any_kek_on_disk_unwraps(
            keys.path(),
            r.reference.0,
            &r.wrapped
        ));
    }

    let rotation = store.rotate_kek().await.expect("rotate");
    assert_eq!(rotation.destroyed, vec![1]);
    assert_eq!(rotation.rewrapped, live.len() as u64);
    checkpoint(&url).await;

    let files = files(&pg);
    for r in &residents {
        for (path, bytes) in &files {
            assert!(
                !holds(bytes, r.marker.as_bytes()),
                "{} holds plaintext",
                path.display()
            );
            assert!(
                !holds(bytes, &r.data_key),
                "{} holds a clear data key",
                path.display()
            );
        }
    }
    // Every wrapped key an attacker can find: the tables, the captured copies of the erased
    // keys (as a backup or the WAL keeps them).
    for (key_id, _, wrapped) in wrapped_keys_in_tables(&url).await {
        let erased_id = erased.iter().any(|r| r.reference.0 == key_id);
        assert!(!erased_id, "an erased key is not in the table");
        assert!(any_kek_on_disk_unwraps(keys.path(), key_id, &wrapped));
    }
    for r in erased {
        assert!(
            !any_kek_on_disk_unwraps(keys.path(), r.reference.0, &r.wrapped),
            "the erased key of {} opens with a KEK still on disk",
            r.reference.0
        );
        assert_eq!(
            store.get(&r.reference).await.unwrap(),
            Some(StoredContact::Erased)
        );
    }
    for r in live {
        assert!(
            !any_kek_on_disk_unwraps(keys.path(), r.reference.0, &r.wrapped),
            "the pre-rotation copy of a live key no longer opens either"
        );
        assert!(matches!(
            store.get(&r.reference).await.unwrap(),
            Some(StoredContact::Present(c)) if c.name.as_deref() == Some(r.marker.as_str())
        ));
        assert_eq!(r.epoch, 1);
    }
    assert!(
        !KekRing::new(keys.path()).path(1).exists(),
        "the old KEK file is gone"
    );
}

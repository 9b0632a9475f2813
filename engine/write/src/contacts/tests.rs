//! The contact store's own tests: round trips, intake and correction semantics, group
//! commit, and erasure that leaves no key or ciphertext in any file of the store.

use super::*;
use engine_core::ManualClock;

fn contact() -> ResidentContact {
    ResidentContact {
        name: Some("Wang Fang".into()),
        phone: Some("13800001111".into()),
        id_number: None,
        address_detail: Some("Building 3, Unit 2".into()),
    }
}

async fn store() -> ContactStore {
    let clock = Arc::new(ManualClock::new("2026-03-02T09:00:00Z".parse().unwrap()));
    ContactStore::in_memory(clock).await.unwrap()
}

#[tokio::test]
async fn a_stored_contact_reads_back_and_is_not_stored_in_plaintext() {
    let store = store().await;
    let reference = ContactRef(uuid::Uuid::from_u128(7));
    store.put(&reference, &contact()).await.unwrap();
    assert_eq!(
        store.get(&reference).await.unwrap(),
        Some(StoredContact::Present(contact()))
    );
    let raw = store.raw_ciphertext(&reference).await.unwrap().unwrap();
    let needle = b"13800001111";
    assert!(!raw.windows(needle.len()).any(|w| w == needle));
}

#[tokio::test]
async fn a_second_put_keeps_the_first_contact_and_only_replace_changes_it() {
    let store = store().await;
    let reference = ContactRef(uuid::Uuid::from_u128(8));
    assert_eq!(
        store.put(&reference, &contact()).await.unwrap(),
        PutOutcome::Stored
    );
    let mut changed = contact();
    changed.phone = Some("13900002222".into());
    assert_eq!(
        store.put(&reference, &changed).await.unwrap(),
        PutOutcome::Kept
    );
    assert_eq!(
        store.get(&reference).await.unwrap(),
        Some(StoredContact::Present(contact()))
    );
    assert_eq!(
        store.replace(&reference, &changed).await.unwrap(),
        PutOutcome::Stored
    );
    assert_eq!(
        store.get(&reference).await.unwrap(),
        Some(StoredContact::Present(changed))
    );
}

#[tokio::test]
async fn a_discarded_contact_is_gone_without_a_tombstone() {
    let store = store().await;
    let reference = ContactRef(uuid::Uuid::from_u128(11));
    store.put(&reference, &contact()).await.unwrap();
    store.discard(&reference).await.unwrap();
    assert_eq!(store.get(&reference).await.unwrap(), None);
    assert_eq!(
        store.put(&reference, &contact()).await.unwrap(),
        PutOutcome::Stored
    );
}

#[tokio::test]
async fn erasure_destroys_the_key_and_is_final() {
    let store = store().await;
    let reference = ContactRef(uuid::Uuid::from_u128(9));
    store.put(&reference, &contact()).await.unwrap();
    assert!(store.erase(&reference).await.unwrap());
    assert_eq!(
        store.get(&reference).await.unwrap(),
        Some(StoredContact::Erased)
    );
    store.put(&reference, &contact()).await.unwrap();
    assert_eq!(
        store.get(&reference).await.unwrap(),
        Some(StoredContact::Erased)
    );
    assert!(!store.erase(&reference).await.unwrap());
}

#[tokio::test]
async fn concurrent_puts_on_a_file_are_all_durable_and_readable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contacts.db");
    let clock = Arc::new(ManualClock::new("2026-03-02T09:00:00Z".parse().unwrap()));
    let store = ContactStore::open_sqlite(&path, clock.clone())
        .await
        .unwrap();
    let puts = (0..300u128).map(|i| {
        let store = store.clone();
        async move {
            let mut contact = contact();
            contact.phone = Some(format!("1380000{i:04}"));
            store
                .put(&ContactRef(uuid::Uuid::from_u128(1000 + i)), &contact)
                .await
        }
    });
    for result in futures::future::join_all(puts).await {
        result.unwrap();
    }
    drop(store);
    // A fresh handle on the same file sees every acknowledged put.
    let reopened = ContactStore::open_sqlite(&path, clock).await.unwrap();
    for i in 0..300u128 {
        let Some(StoredContact::Present(read)) = reopened
            .get(&ContactRef(uuid::Uuid::from_u128(1000 + i)))
            .await
            .unwrap()
        else {
            panic!("contact {i} missing");
        };
        assert_eq!(read.phone, Some(format!("1380000{i:04}")));
    }
}

#[tokio::test]
async fn a_failing_write_does_not_fail_the_others_queued_with_it() {
    let store = store().await;
    let broken = ContactRef(uuid::Uuid::from_u128(20));
    sqlx::query("INSERT INTO contact_keys (key_id, key, created_at) VALUES (?, ?, 'x')")
        .bind(broken.0.to_string())
        .bind(vec![0u8; 5])
        .execute(match &store.backend {
            Backend::Sqlite(sqlite) => sqlite.readers(),
            Backend::Postgres(_) => unreachable!("an in-memory SQLite store"),
        })
        .await
        .unwrap();
    let others: Vec<ContactRef> = (21..40u128)
        .map(|i| ContactRef(uuid::Uuid::from_u128(i)))
        .collect();
    let contact = contact();
    let (broken_result, other_results) = tokio::join!(
        store.put(&broken, &contact),
        futures::future::join_all(others.iter().map(|r| store.put(r, &contact)))
    );
    assert!(matches!(broken_result, Err(ContactError::Corrupt(id)) if id == broken.0));
    for (reference, result) in others.iter().zip(other_results) {
        result.unwrap();
        assert_eq!(
            store.get(reference).await.unwrap(),
            Some(StoredContact::Present(contact.clone()))
        );
    }
}

#[tokio::test]
async fn an_unknown_reference_is_none() {
    let store = store().await;
    assert_eq!(
        store
            .get(&ContactRef(uuid::Uuid::from_u128(10)))
            .await
            .unwrap(),
        None
    );
}

/// Every byte of every file of the store (`contacts.db`, `-wal`, `-shm`).
fn store_files(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn after_erase_no_file_of_the_store_holds_the_key_or_the_ciphertext() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contacts.db");
    let clock = Arc::new(ManualClock::new("2026-03-02T09:00:00Z".parse().unwrap()));
    let store = ContactStore::open_sqlite(&path, clock.clone())
        .await
        .unwrap();
    let references: Vec<ContactRef> = (0..5u128)
        .map(|i| ContactRef(uuid::Uuid::from_u128(500 + i)))
        .collect();
    let mut secrets = Vec::new();
    for reference in &references {
        store.put(reference, &contact()).await.unwrap();
        let key = store.raw_key(reference).await.unwrap().unwrap();
        let ciphertext = store.raw_ciphertext(reference).await.unwrap().unwrap();
        secrets.push((key, ciphertext));
    }
    // A contact that stays, written after the others, so pages are shared and rewritten.
    let kept = ContactRef(uuid::Uuid::from_u128(600));
    store.put(&kept, &contact()).await.unwrap();
    let (key, _) = &secrets[0];
    assert!(
        store_files(dir.path())
            .iter()
            .any(|(_, bytes)| holds(bytes, key)),
        "the key is on disk before erasure (the scan can find it)"
    );
    for reference in &references {
        assert!(store.erase(reference).await.unwrap());
    }
    for (file, bytes) in store_files(dir.path()) {
        for (i, (key, ciphertext)) in secrets.iter().enumerate() {
            assert!(!holds(&bytes, key), "{} holds key {i}", file.display());
            assert!(
                !holds(&bytes, &ciphertext[..32]),
                "{} holds ciphertext {i}",
                file.display()
            );
        }
    }
    // Whatever is left cannot be decrypted with a key recovered from before the erasure:
    // there is no ciphertext left to decrypt.
    for reference in &references {
        assert_eq!(store.raw_ciphertext(reference).await.unwrap(), None);
        assert_eq!(
            store.get(reference).await.unwrap(),
            Some(StoredContact::Erased)
        );
    }
    assert_eq!(
        store.get(&kept).await.unwrap(),
        Some(StoredContact::Present(contact()))
    );
    drop(store);
    // Reopened, the erasures hold and the store still works.
    let reopened = ContactStore::open_sqlite(&path, clock).await.unwrap();
    assert_eq!(
        reopened.get(&references[0]).await.unwrap(),
        Some(StoredContact::Erased)
    );
}

#[tokio::test]
async fn after_a_replace_no_file_of_the_store_holds_the_old_ciphertext() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new("2026-03-02T09:00:00Z".parse().unwrap()));
    let store = ContactStore::open_sqlite(&dir.path().join("contacts.db"), clock)
        .await
        .unwrap();
    let reference = ContactRef(uuid::Uuid::from_u128(700));
    store.put(&reference, &contact()).await.unwrap();
    let old = store.raw_ciphertext(&reference).await.unwrap().unwrap();
    assert!(
        store_files(dir.path())
            .iter()
            .any(|(_, bytes)| holds(bytes, &old[..32])),
        "the ciphertext is on disk before the replace (the scan can find it)"
    );
    let mut corrected = contact();
    corrected.phone = Some("13677778888".into());
    assert_eq!(
        store.replace(&reference, &corrected).await.unwrap(),
        PutOutcome::Stored
    );
    for (file, bytes) in store_files(dir.path()) {
        assert!(
            !holds(&bytes, &old[..32]),
            "{} holds the old ciphertext",
            file.display()
        );
    }
    assert_eq!(
        store.get(&reference).await.unwrap(),
        Some(StoredContact::Present(corrected))
    );
}

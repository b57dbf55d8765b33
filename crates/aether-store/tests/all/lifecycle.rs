//! A function's life through `Arc<dyn Store>`: deploy, redeploy, rollback,
//! delete, reopen.

use std::sync::Arc;

use aether_store::{
    DeployOutcome, DeploySpec, EventQuery, NewEvent, RedbStore, Store, StoreError, StoreOptions,
    sha256_hex,
};

fn open(dir: &std::path::Path) -> Arc<dyn Store> {
    Arc::new(
        RedbStore::open(StoreOptions::new(
            dir.join("db").join("control.db"),
            dir.join("blobs"),
        ))
        .expect("open"),
    )
}

#[test]
fn a_function_lives_through_deploys_rollback_delete_and_reopen() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let spec = DeploySpec::default();
    {
        let store = open(dir.path());
        assert!(matches!(
            store.deploy("f", b"v1", &spec)?,
            DeployOutcome::Created(_)
        ));
        assert!(matches!(
            store.deploy("f", b"v1", &spec)?,
            DeployOutcome::Unchanged(_)
        ));
        assert_eq!(store.deploy("f", b"v2", &spec)?.record().version, 2);
        assert_eq!(store.rollback("f", 1)?.sha256, sha256_hex(b"v1"));
        store.deploy("gone", b"g", &spec)?;
        store.delete("gone")?;
        store.append_events(vec![NewEvent {
            event: "function_loaded".into(),
            node_id: None,
            function: Some("f".into()),
            data: serde_json::json!({"function": "f"}),
        }])?;
        assert_eq!(store.function_count()?, 1);
    }
    let store = open(dir.path());
    let current = store.current_versions()?;
    assert_eq!(current.len(), 1);
    assert_eq!((current[0].0.as_str(), current[0].1.version), ("f", 1));
    assert_eq!(store.read_blob(&sha256_hex(b"v2"))?, b"v2");
    assert!(matches!(
        store.read_blob(&sha256_hex(b"g")),
        Err(StoreError::BlobMissing { .. })
    ));
    assert!(matches!(
        store.version("f", Some(3)),
        Err(StoreError::VersionNotFound { version: 3, .. })
    ));
    let events = store.events(&EventQuery {
        since: 0,
        limit: 10,
        function: Some("f".into()),
        ..Default::default()
    })?;
    assert_eq!(events.len(), 1);
    Ok(())
}

#[test]
fn a_second_open_of_the_same_database_is_refused_not_corrupting() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let _first = open(dir.path());
    let second = RedbStore::open(StoreOptions::new(
        dir.path().join("db").join("control.db"),
        dir.path().join("blobs"),
    ));
    assert!(matches!(second, Err(StoreError::Database(_))));
    Ok(())
}

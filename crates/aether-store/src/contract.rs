//! What every backend must do, checked against each: `contract_tests!`
//! expands to one `#[test]` per function below for a [`Backend`].

use std::collections::BTreeMap;
use std::sync::Arc;

use aether_proto::LimitsSpec;
use aether_proto::control::FunctionKind;

use crate::{
    DEFAULT_EVENT_RETENTION, DeployOutcome, DeploySpec, EventQuery, GcReport, NewEvent,
    NodeHeartbeat, NodeJoin, Store, StoreError, sha256_hex,
};

/// Where a backend under test keeps its data.
pub(crate) trait Backend {
    /// A store on this backend's data keeping `retention` events. Called
    /// again, it opens the same data: a restart, or (for a shared
    /// backend, while the first is still open) another replica.
    fn open(&self, retention: u64) -> Arc<dyn Store>;
}

/// One `#[test]` per contract function for the backend `$backend`, an
/// expression giving `Option<impl Backend>` (`None`: skipped, after the
/// backend said why).
macro_rules! contract_tests {
    ($backend:expr) => {
        $crate::contract::contract_tests!(@each $backend;
            deploys_create_increasing_versions_and_identical_redeploy_keeps_version,
            same_bytes_with_other_settings_is_a_new_version,
            rollback_makes_an_old_version_current_and_refuses_unknown_ones,
            delete_removes_only_blobs_no_other_version_references,
            reopening_keeps_functions_versions_nodes_and_events,
            a_node_joins_once_keeps_its_credential_through_heartbeats_and_is_removed,
            heartbeat_keeps_registration_time_and_updates_last_seen,
            nodes_silent_since_before_the_cutoff_are_pruned_and_stopped_marks_only_known_ones,
            events_page_in_order_filter_by_function_and_drop_the_oldest_beyond_retention,
            bad_names_are_refused_before_touching_storage,
            concurrent_deploys_and_deletes_never_lose_a_referenced_blob,
            garbage_collection_removes_only_unreferenced_blobs,
            events_filter_by_node_and_kind_together_with_the_function,
            kind_and_outbound_hosts_round_trip_through_deploy_current_versions_and_rollback
        );
    };
    (@each $backend:expr; $($name:ident),*) => {$(
        #[test]
        fn $name() {
            if let Some(backend) = $backend {
                $crate::contract::$name(&backend);
            }
        }
    )*};
}
pub(crate) use contract_tests;

/// An event from `edge-1`.
pub(crate) fn event(kind: &str, function: Option<&str>) -> NewEvent {
    NewEvent {
        event: kind.to_owned(),
        node_id: Some("edge-1".into()),
        function: function.map(str::to_owned),
        data: serde_json::json!({"n": 1}),
    }
}

pub(crate) fn deploys_create_increasing_versions_and_identical_redeploy_keeps_version(
    b: &impl Backend,
) {
    let store = b.open(DEFAULT_EVENT_RETENTION);
    let spec = DeploySpec::default();
    let v1 = store.deploy("hello", b"one", &spec).unwrap();
    assert!(v1.created());
    assert_eq!(v1.record().version, 1);
    assert_eq!(v1.record().sha256, sha256_hex(b"one"));
    let again = store.deploy("hello", b"one", &spec).unwrap();
    assert_eq!(again, DeployOutcome::Unchanged(v1.record().clone()));
    let v2 = store.deploy("hello", b"two", &spec).unwrap();
    assert_eq!(v2.record().version, 2);
    let info = store.function("hello").unwrap().unwrap();
    assert_eq!(info.current_version, 2);
    assert_eq!(info.versions.len(), 2);
}

pub(crate) fn same_bytes_with_other_settings_is_a_new_version(b: &impl Backend) {
    let store = b.open(DEFAULT_EVENT_RETENTION);
    store.deploy("f", b"x", &DeploySpec::default()).unwrap();
    let spec = DeploySpec {
        kind: FunctionKind::Command,
        allowed_outbound_hosts: Vec::new(),
        args: vec!["--v".into()],
        env: BTreeMap::from([("K".into(), "V".into())]),
        limits: LimitsSpec {
            timeout: Some("1s".into()),
            memory: None,
        },
    };
    let out = store.deploy("f", b"x", &spec).unwrap();
    assert!(out.created());
    assert_eq!(out.record().version, 2);
    assert_eq!(out.record().spec, spec);
}

pub(crate) fn rollback_makes_an_old_version_current_and_refuses_unknown_ones(b: &impl Backend) {
    let store = b.open(DEFAULT_EVENT_RETENTION);
    store.deploy("f", b"a", &DeploySpec::default()).unwrap();
    store.deploy("f", b"b", &DeploySpec::default()).unwrap();
    let r = store.rollback("f", 1).unwrap();
    assert_eq!(r.sha256, sha256_hex(b"a"));
    assert_eq!(store.version("f", None).unwrap().version, 1);
    assert!(matches!(
        store.rollback("f", 7),
        Err(StoreError::VersionNotFound { version: 7, .. })
    ));
    assert!(matches!(
        store.rollback("nope", 1),
        Err(StoreError::FunctionNotFound { .. })
    ));
    // The next deploy continues after the highest version.
    let v3 = store.deploy("f", b"c", &DeploySpec::default()).unwrap();
    assert_eq!(v3.record().version, 3);
}

pub(crate) fn delete_removes_only_blobs_no_other_version_references(b: &impl Backend) {
    let store = b.open(DEFAULT_EVENT_RETENTION);
    store
        .deploy("a", b"shared", &DeploySpec::default())
        .unwrap();
    store
        .deploy("a", b"only-a", &DeploySpec::default())
        .unwrap();
    store
        .deploy("b", b"shared", &DeploySpec::default())
        .unwrap();
    let deleted = store.delete("a").unwrap();
    assert_eq!(deleted.versions.len(), 2);
    assert!(store.function("a").unwrap().is_none());
    assert_eq!(store.read_blob(&sha256_hex(b"shared")).unwrap(), b"shared");
    assert!(matches!(
        store.read_blob(&sha256_hex(b"only-a")),
        Err(StoreError::BlobMissing { .. })
    ));
    assert!(matches!(
        store.delete("a"),
        Err(StoreError::FunctionNotFound { .. })
    ));
}

pub(crate) fn reopening_keeps_functions_versions_nodes_and_events(b: &impl Backend) {
    {
        let store = b.open(DEFAULT_EVENT_RETENTION);
        store.deploy("f", b"1", &DeploySpec::default()).unwrap();
        store.deploy("f", b"2", &DeploySpec::default()).unwrap();
        store.rollback("f", 1).unwrap();
        store
            .upsert_node(NodeHeartbeat {
                node_id: "edge-1".into(),
                url: "http://127.0.0.1:9091".into(),
                functions: BTreeMap::new(),
            })
            .unwrap();
        store
            .append_events(vec![event("node_started", None)])
            .unwrap();
    }
    let store = b.open(DEFAULT_EVENT_RETENTION);
    let info = store.function("f").unwrap().unwrap();
    assert_eq!((info.current_version, info.versions.len()), (1, 2));
    assert_eq!(store.nodes().unwrap().len(), 1);
    let events = store
        .events(&EventQuery {
            since: 0,
            limit: 10,
            function: None,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(events.len(), 1);
    // Ids keep increasing across a reopen.
    let more = store.append_events(vec![event("x", None)]).unwrap();
    assert_eq!(more[0].id, 2);
}

pub(crate) fn a_node_joins_once_keeps_its_credential_through_heartbeats_and_is_removed(
    b: &impl Backend,
) {
    let store = b.open(DEFAULT_EVENT_RETENTION);
    let join = NodeJoin {
        node_id: "n".into(),
        url: "http://a".into(),
        credential_sha256: "ab".repeat(32),
        notify_secret: "s".into(),
    };
    // Registered before credentials existed: it may still join.
    store
        .upsert_node(NodeHeartbeat {
            node_id: "n".into(),
            url: "http://a".into(),
            functions: BTreeMap::new(),
        })
        .unwrap();
    store.join_node(join.clone()).unwrap();
    let again = store.join_node(NodeJoin {
        credential_sha256: "cd".repeat(32),
        ..join.clone()
    });
    assert!(
        matches!(again, Err(StoreError::NodeExists { .. })),
        "{again:?}"
    );
    let beat = store
        .upsert_node(NodeHeartbeat {
            node_id: "n".into(),
            url: "http://b".into(),
            functions: BTreeMap::new(),
        })
        .unwrap();
    assert_eq!(beat.credential_sha256.as_deref(), Some(&*"ab".repeat(32)));
    assert_eq!(beat.notify_secret.as_deref(), Some("s"));
    drop(store);
    let store = b.open(DEFAULT_EVENT_RETENTION);
    assert_eq!(store.remove_node("n").unwrap().node_id, "n");
    assert!(store.nodes().unwrap().is_empty());
    assert!(matches!(
        store.remove_node("n"),
        Err(StoreError::NodeNotFound { .. })
    ));
    store.join_node(join).unwrap();
}

pub(crate) fn heartbeat_keeps_registration_time_and_updates_last_seen(b: &impl Backend) {
    let store = b.open(DEFAULT_EVENT_RETENTION);
    let hb = NodeHeartbeat {
        node_id: "n".into(),
        url: "http://a".into(),
        functions: BTreeMap::new(),
    };
    let first = store.upsert_node(hb.clone()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let second = store
        .upsert_node(NodeHeartbeat {
            url: "http://b".into(),
            ..hb
        })
        .unwrap();
    assert_eq!(second.registered_at_ms, first.registered_at_ms);
    assert!(second.last_seen_ms > first.last_seen_ms);
    assert_eq!(store.nodes().unwrap(), vec![second]);
}

pub(crate) fn nodes_silent_since_before_the_cutoff_are_pruned_and_stopped_marks_only_known_ones(
    b: &impl Backend,
) {
    let store = b.open(DEFAULT_EVENT_RETENTION);
    let hb = |id: &str| NodeHeartbeat {
        node_id: id.into(),
        url: "http://a".into(),
        functions: BTreeMap::new(),
    };
    let old = store.upsert_node(hb("old")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let fresh = store.upsert_node(hb("fresh")).unwrap();
    assert!(store.mark_node_stopped("fresh").unwrap());
    assert!(!store.mark_node_stopped("never-seen").unwrap());
    assert_eq!(
        store.prune_nodes(old.last_seen_ms).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        store.prune_nodes(fresh.last_seen_ms).unwrap(),
        vec!["old".to_owned()]
    );
    let left = store.nodes().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].node_id, "fresh");
    assert!(left[0].stopped_at_ms.is_some());
    drop(store);
    assert_eq!(
        b.open(DEFAULT_EVENT_RETENTION).nodes().unwrap().len(),
        1,
        "the pruning is durable"
    );
}

pub(crate) fn events_page_in_order_filter_by_function_and_drop_the_oldest_beyond_retention(
    b: &impl Backend,
) {
    let store = b.open(5);
    for i in 0..8 {
        let function = if i % 2 == 0 { Some("even") } else { None };
        store.append_events(vec![event("e", function)]).unwrap();
    }
    let all = store
        .events(&EventQuery {
            since: 0,
            limit: 100,
            function: None,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        all.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![4, 5, 6, 7, 8]
    );
    let page = store
        .events(&EventQuery {
            since: 4,
            limit: 2,
            function: None,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), vec![5, 6]);
    let even = store
        .events(&EventQuery {
            since: 0,
            limit: 100,
            function: Some("even".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(even.iter().map(|e| e.id).collect::<Vec<_>>(), vec![5, 7]);
}

pub(crate) fn bad_names_are_refused_before_touching_storage(b: &impl Backend) {
    let store = b.open(DEFAULT_EVENT_RETENTION);
    for name in ["..", "A", "a/b", ""] {
        assert!(matches!(
            store.deploy(name, b"x", &DeploySpec::default()),
            Err(StoreError::InvalidName(_))
        ));
    }
    assert_eq!(store.collect_garbage().unwrap().blobs_removed, 0);
}

pub(crate) fn concurrent_deploys_and_deletes_never_lose_a_referenced_blob(b: &impl Backend) {
    let store = b.open(DEFAULT_EVENT_RETENTION);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..20 {
                    // Every thread deploys the same shared bytes under its own name,
                    // and deletes it every other round.
                    let name = format!("f{t}");
                    store
                        .deploy(&name, b"shared", &DeploySpec::default())
                        .unwrap();
                    store
                        .deploy(&name, format!("{t}-{i}").as_bytes(), &DeploySpec::default())
                        .unwrap();
                    if i % 2 == 0 {
                        store.delete(&name).unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for (name, version) in store.current_versions().unwrap() {
        let f = store.function(&name).unwrap().unwrap();
        for v in f.versions {
            let bytes = store.read_blob(&v.sha256).unwrap();
            assert_eq!(sha256_hex(&bytes), v.sha256);
        }
        assert!(store.read_blob(&version.sha256).is_ok());
    }
    assert_eq!(store.collect_garbage().unwrap().blobs_missing, 0);
}

pub(crate) fn garbage_collection_removes_only_unreferenced_blobs(b: &impl Backend) {
    let store = b.open(DEFAULT_EVENT_RETENTION);
    store.deploy("g", b"one", &DeploySpec::default()).unwrap();
    store.deploy("g", b"two", &DeploySpec::default()).unwrap();
    store.deploy("h", b"one", &DeploySpec::default()).unwrap();
    assert_eq!(store.collect_garbage().unwrap(), GcReport::default());
    store.delete("g").unwrap();
    for bytes in [&b"one"[..], b"two"] {
        let sha = sha256_hex(bytes);
        match store.read_blob(&sha) {
            Ok(found) => assert_eq!(found, bytes, "blob {sha} changed"),
            Err(StoreError::BlobMissing { .. }) => assert_eq!(bytes, b"two"),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(store.read_blob(&sha256_hex(b"one")).unwrap(), b"one");
    assert_eq!(store.node("edge-x").unwrap(), None);
}

pub(crate) fn events_filter_by_node_and_kind_together_with_the_function(b: &impl Backend) {
    let store = b.open(DEFAULT_EVENT_RETENTION);
    let made = |kind: &str, node: &str, function: Option<&str>| NewEvent {
        event: kind.to_owned(),
        node_id: Some(node.to_owned()),
        function: function.map(str::to_owned),
        data: serde_json::json!({}),
    };
    store
        .append_events(vec![
            made("execution_failed", "a", Some("f")),
            made("execution_failed", "b", Some("f")),
            made("function_stats", "a", Some("f")),
            made("execution_failed", "a", Some("g")),
            made("node_started", "a", None),
        ])
        .unwrap();
    let ids = |query: EventQuery| -> Vec<u64> {
        store
            .events(&EventQuery {
                limit: 100,
                ..query
            })
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect()
    };
    let node = |n: &str| Some(n.to_owned());
    assert_eq!(
        ids(EventQuery {
            node_id: node("a"),
            ..Default::default()
        }),
        vec![1, 3, 4, 5]
    );
    assert_eq!(
        ids(EventQuery {
            kind: node("execution_failed"),
            ..Default::default()
        }),
        vec![1, 2, 4]
    );
    assert_eq!(
        ids(EventQuery {
            kind: node("execution_failed"),
            function: node("f"),
            node_id: node("a"),
            ..Default::default()
        }),
        vec![1]
    );
    assert_eq!(
        ids(EventQuery {
            node_id: node("nobody"),
            ..Default::default()
        }),
        Vec::<u64>::new()
    );
    // The newest matching ones, still oldest first, after `since`.
    let newest = |limit: usize, since: u64, kind: Option<String>| -> Vec<u64> {
        store
            .events(&EventQuery {
                limit,
                since,
                kind,
                newest: true,
                ..Default::default()
            })
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect()
    };
    assert_eq!(newest(2, 0, None), vec![4, 5]);
    assert_eq!(newest(2, 0, node("execution_failed")), vec![2, 4]);
    assert_eq!(newest(10, 3, node("execution_failed")), vec![4]);
    assert_eq!(newest(10, 5, None), Vec::<u64>::new());
}

pub(crate) fn kind_and_outbound_hosts_round_trip_through_deploy_current_versions_and_rollback(
    b: &impl Backend,
) {
    let store = b.open(DEFAULT_EVENT_RETENTION);
    let http = DeploySpec {
        kind: FunctionKind::Http,
        allowed_outbound_hosts: vec![
            "https://api.example.com".into(),
            "https://*.example.com:8443".into(),
        ],
        env: BTreeMap::from([("K".into(), "V".into())]),
        ..DeploySpec::default()
    };
    let v1 = store.deploy("f", b"component", &http).unwrap();
    assert_eq!(v1.record().spec, http);
    // The same bytes with other hosts are a new version; with the same
    // ones, an identical redeploy.
    let fewer = DeploySpec {
        allowed_outbound_hosts: vec!["http://127.0.0.1:8080".into()],
        ..http.clone()
    };
    assert_eq!(
        store
            .deploy("f", b"component", &fewer)
            .unwrap()
            .record()
            .version,
        2
    );
    assert!(!store.deploy("f", b"component", &fewer).unwrap().created());
    // Another kind (a command module now) is a new version too.
    let command = DeploySpec::default();
    assert_eq!(
        store
            .deploy("f", b"module", &command)
            .unwrap()
            .record()
            .version,
        3
    );
    assert_eq!(store.version("f", None).unwrap().spec, command);
    let current = store.current_versions().unwrap();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].1.spec, command);
    let specs: Vec<DeploySpec> = store
        .function("f")
        .unwrap()
        .unwrap()
        .versions
        .into_iter()
        .map(|v| v.spec)
        .collect();
    assert_eq!(specs, vec![http.clone(), fewer, command]);
    assert_eq!(store.version("f", Some(1)).unwrap().spec, http);

    // A rollback brings the old version's kind and hosts back, also after
    // a reopen.
    assert_eq!(store.rollback("f", 1).unwrap().spec, http);
    drop(store);
    let store = b.open(DEFAULT_EVENT_RETENTION);
    assert_eq!(store.version("f", None).unwrap().spec, http);
    let current = store.current_versions().unwrap();
    assert_eq!(current[0].1.spec.kind, FunctionKind::Http);
    assert_eq!(
        current[0].1.spec.allowed_outbound_hosts,
        http.allowed_outbound_hosts
    );
    // Deploying it again over the rollback changes nothing.
    assert_eq!(
        store.deploy("f", b"component", &http).unwrap(),
        DeployOutcome::Unchanged(store.version("f", Some(1)).unwrap())
    );
}

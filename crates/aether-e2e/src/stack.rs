//! A control plane and an edge registered to it, both in this process.

use std::path::Path;
use std::time::Duration;

use aether_control::config::Secret;
use aether_engine::EngineConfig;
use reqwest::Method;
use serde_json::Value;
use tempfile::TempDir;

use crate::{NODE_TOKEN, TestControl, TestEdge, with_tokens};

/// How long [`TestStack`] waits for the edge to register or to pull a
/// function.
const CONVERGE_LIMIT: Duration = Duration::from_secs(10);

/// A control plane with tokens ([`crate::ADMIN_TOKEN`], [`NODE_TOKEN`])
/// and an edge registered to it, which pulls what the control plane holds
/// (notified, and reconciling every 200 ms).
pub struct TestStack {
    /// The control plane, over `<root>/control`.
    pub control: TestControl,
    /// The edge, over `<root>/edge`.
    pub edge: TestEdge,
    _dir: Option<TempDir>,
}

impl TestStack {
    /// Both in a fresh temporary directory.
    pub async fn start() -> TestStack {
        Self::start_with(|_| {}).await
    }

    /// [`TestStack::start`] after letting the test adjust the edge's
    /// configuration.
    pub async fn start_with(adjust_edge: impl FnOnce(&mut EngineConfig)) -> TestStack {
        let dir = TempDir::new().expect("temp dir");
        let mut stack = Self::start_in(dir.path(), adjust_edge).await;
        stack._dir = Some(dir);
        stack
    }

    /// Both over the directories under `root` (`control`, `edge`); returns
    /// once the edge has registered.
    pub async fn start_in(root: &Path, adjust_edge: impl FnOnce(&mut EngineConfig)) -> TestStack {
        let control = TestControl::start_in(&root.join("control"), with_tokens).await;
        let control_url = control.url.clone();
        let edge = TestEdge::start_in(&root.join("edge"), |c| {
            c.control_url = Some(control_url);
            c.node_token = Secret::new(NODE_TOKEN);
            // Converge quickly even when a notification is missed.
            c.reconcile_interval = Duration::from_millis(200);
            adjust_edge(c);
        })
        .await;
        let stack = TestStack {
            control,
            edge,
            _dir: None,
        };
        stack
            .converge("the edge to register", || async {
                let nodes: Value = stack
                    .control
                    .admin(Method::GET, "/api/nodes")
                    .send()
                    .await
                    .expect("control answers")
                    .json()
                    .await
                    .expect("nodes are JSON");
                nodes.as_array().is_some_and(|n| !n.is_empty())
            })
            .await;
        stack
    }

    /// Waits until the edge holds `name` (pulled from the control plane).
    ///
    /// A deploy is acknowledged before edges have pulled it: an invoke in
    /// the next instant can still get 404 while the edge's notified
    /// reconcile runs, so tests wait for the edge like a user would.
    pub async fn wait_on_edge(&self, name: &str) {
        self.converge(&format!("the edge to hold {name}"), || async {
            self.edge.state.registry().get(name).is_some()
        })
        .await;
    }

    /// Polls `ready` every 20 ms until it holds; panics after 10 s.
    async fn converge<Fut: Future<Output = bool>>(&self, what: &str, ready: impl FnMut() -> Fut) {
        if let Err(e) = crate::eventually(CONVERGE_LIMIT, what, ready).await {
            panic!("{e}");
        }
    }

    /// Stops the edge, then the control plane, gracefully.
    pub async fn stop(self) {
        self.edge.stop().await;
        self.control.stop().await;
    }
}

//! End-to-end tests against a real Kubernetes API server. Ignored by default: they need a
//! cluster (kind or k3d) with the CRD installed, and they create objects in it.
//!
//! ```sh
//! kind create cluster --name ebbflow          # or: k3d cluster create ebbflow
//! kubectl apply -f crds/scalepolicy.yaml
//! cargo test --test it controller_e2e:: -- --ignored --test-threads=1
//! ```
//!
//! They use the current kubeconfig context, create a namespace `ebbflow-e2e-<pid>` and delete it
//! at the end. Metrics come from an in-test fake (no Google project is needed); the target is a
//! real Deployment's `/scale` subresource.

use crate::controller_support;

use std::sync::Arc;
use std::time::Duration;

use controller_support::{Fake, now, trace};
use ebbflow::api::{ScalePolicy, ScalePolicyStatus};
use ebbflow::controller::backends::{BackendConfig, ProdBackends};
use ebbflow::controller::cluster::KubeStatus;
use ebbflow::controller::events::KubeEvents;
use ebbflow::controller::leader::{Leadership, Lease};
use ebbflow::controller::metrics::Metrics;
use ebbflow::controller::{Backends, Engine, StatusStore, StoreError};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

struct Cluster {
    client: Client,
    ns: String,
}

impl Cluster {
    async fn new() -> Cluster {
        let client = Client::try_default().await.expect("a kubeconfig for a test cluster");
        let ns = format!("ebbflow-e2e-{}", std::process::id());
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let body = serde_json::from_value(json!({"metadata": {"name": ns}})).expect("ns");
        namespaces.create(&PostParams::default(), &body).await.expect("create namespace");
        Cluster { client, ns }
    }

    async fn cleanup(self) {
        let namespaces: Api<Namespace> = Api::all(self.client);
        let _ = namespaces.delete(&self.ns, &DeleteParams::default()).await;
    }

    async fn policy(&self, name: &str, target: serde_json::Value) -> ScalePolicy {
        let api: Api<ScalePolicy> = Api::namespaced(self.client.clone(), &self.ns);
        let sp: ScalePolicy = serde_json::from_value(json!({
            "apiVersion": "ebbflow.dev/v1alpha1", "kind": "ScalePolicy",
            "metadata": {"name": name},
            "spec": {"target": target, "minSize": 1, "maxSize": 6,
                     "metrics": [{"name": "cpu", "target": 0.5, "query": {"project": "p1", "filter": "x"}}]}
        }))
        .expect("policy");
        api.create(&PostParams::default(), &sp).await.expect("create policy")
    }
}

/// Server-side apply with a stale `metadata.resourceVersion` is refused with 409: the write
/// fence relies on this.
#[tokio::test]
#[ignore = "needs a Kubernetes cluster with the CRD installed"]
async fn e2e_status_apply_honours_resource_version() {
    let c = Cluster::new().await;
    let sp = c.policy("fence", json!({"bigtableCluster": {"project": "p", "instance": "i", "cluster": "c"}})).await;
    let store = KubeStatus::new(c.client.clone());
    let status = Arc::new(ScalePolicyStatus { current_size: Some(3), ..Default::default() });
    let rv = sp.resource_version().expect("rv");
    let new_rv = store.write(&sp, &status, Some(&rv)).await.expect("first write");
    assert_ne!(new_rv.as_deref(), Some(rv.as_str()));
    assert_eq!(store.write(&sp, &status, Some(&rv)).await, Err(StoreError::Conflict));
    c.cleanup().await;
}

/// A workload policy scales a real Deployment through `/scale`, writes its status and an Event.
#[tokio::test]
#[ignore = "needs a Kubernetes cluster with the CRD installed"]
async fn e2e_workload_policy_scales_a_deployment() {
    let c = Cluster::new().await;
    let deployments: Api<Deployment> = Api::namespaced(c.client.clone(), &c.ns);
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.9"}]}}}
    }))
    .expect("deployment");
    deployments.create(&PostParams::default(), &d).await.expect("create deployment");
    let sp = c.policy("web", json!({"workload": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}})).await;

    struct Mixed(ProdBackends, Fake);
    impl Backends for Mixed {
        type Source = Fake;
        type Target = <ProdBackends as Backends>::Target;
        fn source(&self) -> &Fake {
            &self.1
        }
        fn target(
            &self,
            ns: &str,
            t: &ebbflow::api::TargetRef,
        ) -> Result<Self::Target, ebbflow::adapters::AdapterError> {
            self.0.target(ns, t)
        }
    }
    let fake = Fake::default();
    fake.world().samples = trace(0.5, 1.6, 3);
    let prod = ProdBackends::connect(
        Some(c.client.clone()),
        &BackendConfig { gcp_endpoint: Some("http://127.0.0.1:9".into()), ..Default::default() },
    )
    .await;
    let engine = Engine::new(
        Mixed(prod, fake),
        KubeStatus::new(c.client.clone()),
        KubeEvents::new(c.client.clone(), Some("e2e".into())),
        Leadership::always(),
        Arc::new(Metrics::default()),
    )
    .with_clock(Arc::new(now));
    engine.evaluate(Arc::new(sp.clone()), &[]).await.expect("evaluate");

    let scale = deployments.get_scale("web").await.expect("scale");
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(4), "2 -> 4: the default step of 100%");
    let api: Api<ScalePolicy> = Api::namespaced(c.client.clone(), &c.ns);
    let stored = api.get("web").await.expect("policy");
    let status = stored.status.expect("status");
    assert_eq!(status.desired_size, Some(4));
    assert!(status.state.is_some_and(|s| s.in_flight.is_none()));
    c.cleanup().await;
}

/// Two lease managers: one leads; when it releases, the other takes over.
#[tokio::test]
#[ignore = "needs a Kubernetes cluster"]
async fn e2e_leader_election_fails_over() {
    let c = Cluster::new().await;
    let (lease_a, mut a) = Lease::start(c.client.clone(), &c.ns, "ebbflow-leader", "a").await.expect("lease a");
    let deadline = Duration::from_secs(30);
    tokio::time::timeout(deadline, async {
        while !a.is_leader() {
            a.changed().await;
        }
    })
    .await
    .expect("a leads");
    let (lease_b, mut b) = Lease::start(c.client.clone(), &c.ns, "ebbflow-leader", "b").await.expect("lease b");
    assert!(!b.is_leader());
    drop(a);
    lease_a.release().await;
    tokio::time::timeout(deadline, async {
        while !b.is_leader() {
            b.changed().await;
        }
    })
    .await
    .expect("b takes over");
    drop(b);
    lease_b.release().await;
    c.cleanup().await;
}

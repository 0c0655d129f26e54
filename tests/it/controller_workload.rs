//! The `workload` target (a `/scale` subresource through kube's dynamic API), against the mock
//! API server: the exact requests, and a whole reconcile through the production backends.

use crate::controller_support;

use std::sync::Arc;
use std::time::Duration;

use controller_support::*;
use ebbflow::adapters::{ErrorKind, ScaleTarget};
use ebbflow::api::WorkloadRef;
use ebbflow::controller::Engine;
use ebbflow::controller::backends::{BackendConfig, ProdBackends};
use ebbflow::controller::cluster::{Context, KubeStatus, reconcile};
use ebbflow::controller::events::KubeEvents;
use ebbflow::controller::leader::Leadership;
use ebbflow::controller::metrics::Metrics;
use ebbflow::controller::workload::WorkloadTarget;
use http::Method;
use serde_json::{Value, json};

fn scale(ns: &str, name: &str, kind: &str, replicas: u32) -> Value {
    json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
           "metadata": {"name": name, "namespace": ns, "resourceVersion": "7"},
           "spec": {"replicas": replicas}, "status": {"replicas": replicas, "selector": "app=web"},
           "_kind": kind})
}

fn workload(kind: &str, name: &str) -> WorkloadRef {
    WorkloadRef { api_version: "apps/v1".into(), kind: kind.into(), name: name.into() }
}

/// observe reads `GET .../deployments/web/scale`; resize merge-patches an absolute replica count.
#[tokio::test]
async fn deployment_scale_subresource_is_read_and_patched() {
    let (client, handle) = mock_client();
    let target = WorkloadTarget::new(client, "shop", &workload("Deployment", "web"));
    let steps: Vec<Step> = vec![
        Box::new(|r: &Req| {
            assert_eq!(r.method, Method::GET);
            assert_eq!(r.uri, "/apis/apps/v1/namespaces/shop/deployments/web/scale");
            (200, scale("shop", "web", "Deployment", 3))
        }),
        Box::new(|r: &Req| {
            assert_eq!(r.method, Method::PATCH);
            assert!(r.uri.starts_with("/apis/apps/v1/namespaces/shop/deployments/web/scale"), "{}", r.uri);
            assert_eq!(r.body, json!({"spec": {"replicas": 5}}), "an absolute size, never a delta");
            (200, scale("shop", "web", "Deployment", 5))
        }),
    ];
    let server = tokio::spawn(serve(handle, steps));
    let seen = target.observe().await.expect("observe");
    assert_eq!((seen.size, seen.busy), (3, false));
    assert_eq!(target.resize(5).await.expect("resize"), ebbflow::adapters::ResizeStarted::Done);
    let (_, mut handle) = server.await.expect("server");
    assert_no_more_requests(&mut handle).await;
}

/// StatefulSets use the same path shape; a 403 becomes PermissionDenied with the API's message.
#[tokio::test]
async fn statefulset_permission_error_is_classified() {
    let (client, handle) = mock_client();
    let target = WorkloadTarget::new(client, "db", &workload("StatefulSet", "pg"));
    let steps: Vec<Step> = vec![Box::new(|r: &Req| {
        assert_eq!(r.uri, "/apis/apps/v1/namespaces/db/statefulsets/pg/scale");
        (
            403,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 403, "reason": "Forbidden",
                   "message": "statefulsets.apps \"pg\" is forbidden: cannot get resource \"statefulsets/scale\""}),
        )
    })];
    let server = tokio::spawn(serve(handle, steps));
    let err = target.observe().await.expect_err("forbidden");
    assert_eq!((err.kind, err.code, err.backend), (ErrorKind::PermissionDenied, Some(403), "kubernetes"));
    assert!(err.message.contains("statefulsets/scale"), "{}", err.message);
    server.await.expect("server");
}

/// A whole reconcile of a workload policy through the production backends: read the scale,
/// record the intent, patch the scale, record the outcome, publish ScaledOut. The metrics come
/// from the in-test fake (the production Monitoring adapter is covered by the gcp tests).
#[tokio::test]
async fn workload_policy_reconciles_end_to_end() {
    struct Mixed {
        prod: ProdBackends,
        source: Fake,
    }
    impl ebbflow::controller::Backends for Mixed {
        type Source = Fake;
        type Target = <ProdBackends as ebbflow::controller::Backends>::Target;
        fn source(&self) -> &Fake {
            &self.source
        }
        fn target(
            &self,
            ns: &str,
            t: &ebbflow::api::TargetRef,
        ) -> Result<Self::Target, ebbflow::adapters::AdapterError> {
            self.prod.target(ns, t)
        }
    }

    let (client, handle) = mock_client();
    let source = Fake::default();
    source.world().samples = trace(0.5, 1.6, 3);
    let mut sp = policy("shop", "web", "Enforce", Value::Null);
    sp.spec.target = ebbflow::api::TargetRef::Workload(workload("Deployment", "web"));
    sp.spec.metrics[0].source.query.as_mut().expect("query").project = Some("p1".into());
    let (store, _w) = kube::runtime::reflector::store();
    let engine = Engine::new(
        Mixed {
            // The Google clients point at a closed local port: nothing may leave the machine.
            prod: ProdBackends::connect(
                Some(client.clone()),
                &BackendConfig { gcp_endpoint: Some("http://127.0.0.1:9".into()), ..Default::default() },
            )
            .await,
            source,
        },
        KubeStatus::new(client.clone()),
        KubeEvents::new(client, Some("test-pod".into())),
        Leadership::manual(true),
        Arc::new(Metrics::default()),
    )
    .with_clock(Arc::new(now));
    let ctx = Arc::new(Context { engine, store });

    let steps: Vec<Step> = vec![
        Box::new(|r: &Req| {
            assert_eq!(
                (r.method.clone(), r.uri.as_str()),
                (Method::GET, "/apis/apps/v1/namespaces/shop/deployments/web/scale")
            );
            (200, scale("shop", "web", "Deployment", 4))
        }),
        expect_status_patch(&sp, "101", |b| {
            assert_eq!(b["metadata"]["resourceVersion"], "100");
            assert_eq!(b["status"]["state"]["inFlight"]["to"], 8);
            assert_eq!(b["status"]["target"], "deployment web");
        }),
        Box::new(|r: &Req| {
            assert_eq!(r.method, Method::PATCH);
            assert!(r.uri.starts_with("/apis/apps/v1/namespaces/shop/deployments/web/scale"), "{}", r.uri);
            assert_eq!(r.body, json!({"spec": {"replicas": 8}}));
            (200, scale("shop", "web", "Deployment", 8))
        }),
        expect_status_patch(&sp, "102", |b| {
            assert_eq!(b["status"]["currentSize"], 4);
            assert_eq!(b["status"]["desiredSize"], 8);
            assert!(b["status"]["state"].get("inFlight").is_none());
        }),
        expect_event("shop", "ScaledOut"),
    ];
    let server = tokio::spawn(serve(handle, steps));
    reconcile(Arc::new(sp), ctx).await.expect("reconcile");
    let (_, mut handle) =
        tokio::time::timeout(Duration::from_secs(2), server).await.expect("all requests").expect("server");
    assert_no_more_requests(&mut handle).await;
}

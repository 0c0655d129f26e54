//! Cloud Monitoring through the real Rust client against the local fake: request shape, paging,
//! value types, the missing-data rules, query sharing, `ebbflow record`, and the three ways
//! access fails (no credentials, refused credentials, a missing permission), each told as itself.

use crate::gcp_support;

use std::sync::Arc;

use ebbflow::adapters::SharedSource;
use ebbflow::adapters::{ErrorKind, MetricSource};
use ebbflow::core::{DataProblem, Dur, Ts};
use ebbflow::gcp::CloudMonitoring;
use ebbflow::gcp::fake::{Endpoint, FakeSeries, FakeValue, Fault, Script};
use ebbflow::gcp::monitoring::{MAX_PAGES, QueryBound};
use gcp_support::*;

#[tokio::test]
async fn list_time_series_sends_the_query_and_returns_points_oldest_first() {
    let (fake, cfg) = fake().await;
    fake.set_time_series(CPU, cpu_script(0.4));
    let source = CloudMonitoring::new(&cfg).await.unwrap();
    let (_, queries) = policy();
    let after = now() - Dur::mins(10);
    let series = source.fetch(&queries[0], after, now()).await.unwrap();

    let reqs = fake.requests_to(Endpoint::ListTimeSeries);
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.path, "/v3/projects/p1/timeSeries");
    assert_eq!(r.param("filter"), Some(CPU));
    assert_eq!(r.param("interval.startTime"), Some("2026-11-23T03:50:30Z"));
    assert_eq!(r.param("interval.endTime"), Some("2026-11-23T04:00:30Z"));
    assert_eq!(r.param("aggregation.alignmentPeriod"), Some("60s"));
    assert_eq!(r.param("aggregation.perSeriesAligner"), Some("12"), "ALIGN_MEAN as an int enum");
    assert_eq!(r.param("aggregation.crossSeriesReducer"), Some("1"), "REDUCE_MEAN");
    assert_eq!(r.param("aggregation.groupByFields"), Some("resource.labels.cluster"));

    // Samples at 03:51:30 … 03:59:30: the one at 04:00:30 ends inside the last alignment period
    // before `until` (after 03:59:30) and is dropped as still filling.
    assert_eq!(series.problem, None);
    assert_eq!(series.samples.len(), 9);
    assert_eq!(series.samples.first().unwrap().at, Ts::parse_rfc3339("2026-11-23T03:51:30Z").unwrap());
    assert_eq!(series.samples.last().unwrap().at, Ts::parse_rfc3339("2026-11-23T03:59:30Z").unwrap());
    assert!(series.samples.windows(2).all(|w| w[0].at < w[1].at));
    assert!(series.samples.iter().all(|s| s.value == 0.4));
}

#[tokio::test]
async fn every_page_is_followed_and_a_series_split_over_pages_stays_one_series() {
    let (fake, cfg) = fake().await;
    let values: Vec<f64> = (0..31).map(f64::from).collect();
    fake.set_time_series(CPU, Script::regular(now() - Dur::mins(30), Dur::mins(1), &values));
    fake.set_points_per_page(7);
    let source = CloudMonitoring::new(&cfg).await.unwrap();
    let (_, queries) = policy();
    let series = source.fetch(&queries[0], now() - Dur::mins(31), now()).await.unwrap();

    let reqs = fake.requests_to(Endpoint::ListTimeSeries);
    assert_eq!(reqs.len(), 5, "31 points at 7 per page");
    assert_eq!(reqs[0].param("pageToken"), Some(""));
    assert_eq!(reqs[1].param("pageToken"), Some("offset-7"));
    assert_eq!(source.requests_sent(), 5);
    assert_eq!(series.problem, None, "one series split over pages is not several series");
    let got: Vec<f64> = series.samples.iter().map(|s| s.value).collect();
    assert_eq!(got, (0..30).map(f64::from).collect::<Vec<_>>(), "oldest first, newest period dropped");
}

/// A Monitoring server whose answers never end paging (each page has one point and a
/// `nextPageToken`): the query is given up on after [`MAX_PAGES`] pages, the bound for a policy's
/// query, with an error that names the bound; before, it took 10,000 pages (about 250 s and
/// 66 MB against the service) while the policy made no decision.
#[tokio::test]
async fn a_next_page_token_that_never_ends_is_given_up_on_after_the_page_bound() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    let app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let page = serde_json::json!({
                "timeSeries": [{"metric": {"type": "bigtable.googleapis.com/cluster/cpu_load"},
                                "resource": {"type": "bigtable_cluster", "labels": {"cluster": "c1"}},
                                "points": [{"interval": {"endTime": "2026-11-23T03:59:30Z"},
                                            "value": {"doubleValue": 0.5}}]}],
                "nextPageToken": format!("page-{}", n + 1)
            });
            ([("content-type", "application/json")], page.to_string())
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let source = CloudMonitoring::new(&ebbflow::gcp::GcpConfig::for_fake(format!("http://{addr}"))).await.unwrap();
    let (_, queries) = policy();

    let e = source.fetch(&queries[0], now() - Dur::mins(30), now()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Malformed, "{e}");
    assert!(e.message.contains(&format!("gave up after {MAX_PAGES} pages")), "{e}");
    assert!(e.message.contains("nextPageToken never ended"), "{e}");
    assert_eq!(served.load(Ordering::SeqCst), MAX_PAGES, "no page asked for past the bound");
    assert_eq!(source.requests_sent(), MAX_PAGES as u64);
    server.abort();
}

/// An answer far larger than the query can hold (100 series where one is expected, 10 points
/// each over 10 minutes) is refused once it passes the bound on points (16 series' worth), after
/// 4 of its 20 pages, not read to the end; the error says what to change.
#[tokio::test]
async fn an_answer_larger_than_the_query_can_hold_is_refused_at_the_point_bound() {
    let (fake, cfg) = fake().await;
    let clusters: Vec<String> = (0..100).map(|i| format!("c{i}")).collect();
    let names: Vec<&str> = clusters.iter().map(String::as_str).collect();
    fake.set_time_series(CPU, cpu_script(0.3).duplicated("cluster", &names));
    fake.set_points_per_page(50);
    let source = CloudMonitoring::new(&cfg).await.unwrap();
    let (_, queries) = policy();
    let (after, until) = (now() - Dur::mins(10), now());
    let bound = QueryBound::new(queries[0].monitoring().unwrap(), until - after);
    assert_eq!(bound.points, 16 * 12, "16 series of one point a minute over 10 minutes, plus the two ends");

    let e = source.fetch(&queries[0], after, until).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Malformed, "{e}");
    assert!(e.message.contains("over the bound of 192"), "{e}");
    assert!(e.message.contains("crossSeriesReducer"), "{e}");
    assert_eq!(fake.requests_to(Endpoint::ListTimeSeries).len(), 4, "200 points in 4 pages of 50, then no more");
}

#[tokio::test]
async fn int64_values_nan_and_missing_series_are_reported_as_such() {
    let (fake, cfg) = fake().await;
    let source = CloudMonitoring::new(&cfg).await.unwrap();
    let (_, queries) = policy();
    let q = &queries[0];
    let t = |m: i64| now() - Dur::mins(m);

    // int64Value travels as a JSON string
    let ints = Script {
        series: vec![FakeSeries { labels: vec![], points: vec![(t(3), FakeValue::Int(7)), (t(2), FakeValue::Int(9))] }],
        execution_errors: vec![],
    };
    fake.set_time_series(CPU, ints);
    let s = source.fetch(q, t(10), now()).await.unwrap();
    assert_eq!(s.samples.iter().map(|s| s.value).collect::<Vec<_>>(), vec![7.0, 9.0]);

    // NaN stays NaN (the core marks it invalid), never 0
    fake.set_time_series(CPU, Script::regular(t(3), Dur::mins(1), &[0.3, f64::NAN]));
    let s = source.fetch(q, t(10), now()).await.unwrap();
    assert_eq!(s.samples.len(), 2);
    assert!(s.samples[1].value.is_nan());

    // no series: no samples, no zeros
    fake.set_time_series(CPU, Script::default());
    let s = source.fetch(q, t(10), now()).await.unwrap();
    assert!(s.samples.is_empty());
    assert_eq!(s.problem, None);

    // executionErrors: partial
    fake.set_time_series(CPU, cpu_script(0.3).partial("some points could not be read"));
    let s = source.fetch(q, t(10), now()).await.unwrap();
    assert_eq!(s.problem, Some(DataProblem::Partial));

    // several series where one was expected
    fake.set_time_series(CPU, cpu_script(0.3).duplicated("cluster", &["c1", "c2", "c3"]));
    let s = source.fetch(q, t(10), now()).await.unwrap();
    assert_eq!(s.problem, Some(DataProblem::MultipleSeries(3)));
    assert!(s.samples.is_empty());
}

#[tokio::test]
async fn faults_map_to_error_kinds_and_transient_ones_are_retried() {
    let (fake, cfg) = fake().await;
    fake.set_time_series(CPU, cpu_script(0.3));
    let source = CloudMonitoring::new(&cfg).await.unwrap();
    let (_, queries) = policy();
    let q = &queries[0];
    let fetch = || source.fetch(q, now() - Dur::mins(10), now());

    // one 503 then success: retried
    fake.inject(Endpoint::ListTimeSeries, Fault::Unavailable, 1);
    assert_eq!(fetch().await.unwrap().samples.len(), 9);
    assert_eq!(fake.requests_to(Endpoint::ListTimeSeries).len(), 2);

    let cases = [
        (Fault::TooManyRequests, ErrorKind::Transient, Some(429), 3),
        (Fault::Unavailable, ErrorKind::Transient, Some(503), 3),
        (Fault::Delay(std::time::Duration::from_millis(600)), ErrorKind::Transient, None, 3),
        (Fault::MalformedJson, ErrorKind::Malformed, None, 1),
        (Fault::PermissionDenied, ErrorKind::PermissionDenied, Some(403), 1),
        (Fault::NotFound, ErrorKind::NotFound, Some(404), 1),
    ];
    for (fault, kind, code, attempts) in cases {
        fake.clear_faults();
        fake.clear_log();
        fake.inject(Endpoint::ListTimeSeries, fault.clone(), u32::MAX);
        let e = fetch().await.unwrap_err();
        assert_eq!((e.kind, e.code), (kind, code), "{fault:?}: {e}");
        assert_eq!(fake.requests_to(Endpoint::ListTimeSeries).len(), attempts, "{fault:?}");
        if kind == ErrorKind::PermissionDenied {
            assert!(e.message.contains("monitoring.timeSeries.list"), "{e}");
        }
        if kind == ErrorKind::Transient {
            assert!(e.message.contains("gave up after 3 attempts"), "{e}");
        }
    }
}

/// A config for a server on 127.0.0.1 at `addr`: fast retries, and an attempt timeout no slow
/// machine reaches, since these tests count attempts (a hang guard, not a measure of speed).
fn patient(addr: std::net::SocketAddr) -> ebbflow::gcp::GcpConfig {
    let mut cfg = ebbflow::gcp::GcpConfig::for_fake(format!("http://{addr}"));
    cfg.retry.attempt_timeout = std::time::Duration::from_secs(60);
    cfg
}

/// Serve `app` on 127.0.0.1: its address and the server's task.
async fn serve_local(app: axum::Router) -> (std::net::SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    (addr, tokio::spawn(async move { axum::serve(listener, app).await }))
}

/// A service that refuses the request's credentials (401 UNAUTHENTICATED, Google's answer to an
/// expired or revoked token) is "credentials refused", with the fix, asked once; it names no IAM
/// permission, since no role is missing. It used to read "lacks monitoring.timeSeries.list".
#[tokio::test]
async fn a_401_is_refused_credentials_not_a_missing_permission() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    let app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            let body = serde_json::json!({"error": {
                "code": 401,
                "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login \
                            cookie or other valid authentication credential. See \
                            https://developers.google.com/identity/sign-in/web/devconsole-project.",
                "status": "UNAUTHENTICATED"}});
            (
                axum::http::StatusCode::UNAUTHORIZED,
                [("content-type", "application/json; charset=UTF-8")],
                body.to_string(),
            )
        }
    });
    let (addr, server) = serve_local(app).await;
    let source = CloudMonitoring::new(&patient(addr)).await.unwrap();
    let (_, queries) = policy();

    let e = source.fetch(&queries[0], now() - Dur::mins(10), now()).await.unwrap_err();
    assert_eq!((e.kind, e.code), (ErrorKind::CredentialsRefused, Some(401)), "{e}");
    assert!(e.message.starts_with("the Google credentials were refused (expired or revoked): "), "{e}");
    assert!(e.message.contains("run `gcloud auth application-default login` again"), "the fix: {e}");
    assert!(e.message.contains("Request had invalid authentication credentials"), "what the service said: {e}");
    assert!(!e.message.contains("monitoring.timeSeries.list") && !e.message.contains("IAM permission"), "{e}");
    assert_eq!(served.load(Ordering::SeqCst), 1, "refused credentials are not retried");
    server.abort();
}

/// User credentials whose refresh token was revoked or expired (the token endpoint answers
/// `invalid_grant`, as Google's does): "credentials refused", with what the token endpoint said
/// and the fix, and the query is never sent without a token. Token endpoint and service are one
/// server on 127.0.0.1.
#[tokio::test]
async fn credentials_the_token_endpoint_refuses_are_refused_and_no_query_is_sent() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(uri.path().to_string());
            if uri.path() == "/token" {
                let body = r#"{"error": "invalid_grant", "error_description": "Token has been expired or revoked."}"#;
                (axum::http::StatusCode::BAD_REQUEST, [("content-type", "application/json")], body.to_string())
            } else {
                (axum::http::StatusCode::OK, [("content-type", "application/json")], "{}".to_string())
            }
        }
    });
    let (addr, server) = serve_local(app).await;
    let credentials = google_cloud_auth::credentials::user_account::Builder::new(serde_json::json!({
        "type": "authorized_user", "client_id": "id", "client_secret": "secret", "refresh_token": "revoked"
    }))
    .with_token_uri(format!("http://{addr}/token"))
    .build()
    .unwrap();
    let client = google_cloud_monitoring_v3::client::MetricService::builder()
        .with_endpoint(format!("http://{addr}"))
        .with_credentials(credentials)
        .with_retry_policy(google_cloud_gax::retry_policy::NeverRetry)
        .build()
        .await
        .unwrap();
    let source = CloudMonitoring::from_client(client, &patient(addr));
    let (_, queries) = policy();

    let e = source.fetch(&queries[0], now() - Dur::mins(10), now()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::CredentialsRefused, "{e}");
    assert!(e.message.starts_with("the Google credentials were refused (expired or revoked): "), "{e}");
    assert!(e.message.contains("run `gcloud auth application-default login` again"), "the fix: {e}");
    assert!(e.message.contains("invalid_grant"), "what the token endpoint said: {e}");
    assert!(!e.message.contains("monitoring.timeSeries.list"), "{e}");
    let paths = seen.lock().unwrap().clone();
    assert!(!paths.is_empty() && paths.iter().all(|p| p == "/token"), "only the token endpoint was asked: {paths:?}");
    server.abort();
}

/// `ebbflow record` where Application Default Credentials cannot be loaded: a
/// GOOGLE_APPLICATION_CREDENTIALS naming a deleted key file, or a file that is not a key. Each
/// says no (usable) credentials were found, names the file or the problem and the ways to
/// provide credentials, and blames no IAM permission (it used to say the service account lacked
/// monitoring.timeSeries.list). Nothing leaves the machine: the client is never built.
#[test]
fn record_without_usable_credentials_says_so_and_how_to_provide_them() {
    let dir = std::env::temp_dir().join(format!("ebbflow-no-credentials-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let deleted = dir.join("deleted-key.json");
    let not_a_key = dir.join("notes.json");
    std::fs::write(&not_a_key, "these are not credentials").unwrap();
    let out_file = dir.join("out.json");
    for (adc, says, names) in [
        (&deleted, "no Google credentials found", deleted.display().to_string()),
        (&not_a_key, "no usable Google credentials", "cannot parse the credentials file".to_string()),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ebbflow"))
            .args(["record", "--project", "p1", "--filter", CPU, "--from", "2026-11-23T03:30:00Z"])
            .args(["--to", "2026-11-23T04:00:30Z", "--out"])
            .arg(&out_file)
            .env_remove("EBBFLOW_GCP_ENDPOINT")
            .env("GOOGLE_APPLICATION_CREDENTIALS", adc)
            .env("HOME", &dir)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{}: {err}", adc.display());
        assert!(err.contains(says), "{}: {err}", adc.display());
        assert!(err.contains(&names), "names the file or the problem: {err}");
        assert!(err.contains(ebbflow::gcp::NO_CREDENTIALS_FIX), "the fix: {err}");
        assert!(!err.contains("timeSeries.list") && !err.contains("IAM"), "no permission is missing: {err}");
        assert!(!out_file.exists(), "nothing recorded");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn shared_source_sends_one_query_for_many_policies_with_the_same_query() {
    let (fake, cfg) = fake().await;
    fake.set_time_series(CPU, cpu_script(0.3));
    let shared = Arc::new(SharedSource::new(CloudMonitoring::new(&cfg).await.unwrap(), Dur::secs(10)));
    let (_, queries) = policy();
    // the policy with the longest history asks first; the others, concurrently, ask for less
    shared.fetch(&queries[0], now() - Dur::mins(12), now()).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..19 {
        let (shared, q) = (shared.clone(), queries[0].clone());
        let until = now() + Dur::secs(i % 5);
        let task = tokio::spawn(async move { shared.fetch(&q, now() - Dur::mins(10 + i % 3), until).await });
        tasks.push((9 + i % 3, task));
    }
    for (expected, t) in tasks {
        let got = t.await.unwrap().unwrap().samples.len() as i64;
        assert_eq!(got, expected, "served as a subset of the cached range");
    }
    assert_eq!(shared.queries_issued(), 1);
    assert_eq!(fake.requests_to(Endpoint::ListTimeSeries).len(), 1);
    assert_eq!(shared.inner().requests_sent(), 1);
}

#[test]
fn record_writes_every_page_as_a_json_array() {
    let fake = ebbflow::gcp::fake::FakeGcp::start_on_thread().unwrap();
    let values: Vec<f64> = (0..31).map(|i| f64::from(i) / 10.0).collect();
    fake.set_time_series(CPU, Script::regular(now() - Dur::mins(30), Dur::mins(1), &values));
    fake.set_points_per_page(10);
    let out = std::env::temp_dir().join(format!("ebbflow-record-{}.json", std::process::id()));
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_ebbflow"))
        .args(["record", "--project", "p1", "--filter", CPU, "--from", "2026-11-23T03:30:00Z"])
        .args(["--to", "2026-11-23T04:00:30Z", "--out"])
        .arg(&out)
        .args(["--aligner", "ALIGN_MAX", "--reducer", "REDUCE_MAX"])
        .env("EBBFLOW_GCP_ENDPOINT", fake.endpoint())
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&out).unwrap();
    std::fs::remove_file(&out).ok();
    let pages: serde_json::Value = serde_json::from_str(&text).unwrap();
    let pages = pages.as_array().unwrap();
    assert_eq!(pages.len(), 4, "31 points at 10 per page");
    let points: Vec<&serde_json::Value> =
        pages.iter().flat_map(|p| p["timeSeries"][0]["points"].as_array().unwrap()).collect();
    assert_eq!(points.len(), 31, "the raw answer, nothing dropped");
    let newest = Ts::parse_rfc3339(points[0]["interval"]["endTime"].as_str().unwrap()).unwrap();
    assert_eq!(newest, now(), "newest first, as the API sends them");
    assert_eq!(points[0]["value"]["doubleValue"], 3.0);
    assert_eq!(pages[0]["nextPageToken"], "offset-10");
    let req = &fake.requests_to(Endpoint::ListTimeSeries)[0];
    assert_eq!(req.param("aggregation.perSeriesAligner"), Some("11"), "ALIGN_MAX");
    assert_eq!(req.param("aggregation.crossSeriesReducer"), Some("3"), "REDUCE_MAX");
    // and the library reads the recording back into one series
    let parsed: Vec<google_cloud_monitoring_v3::model::ListTimeSeriesResponse> = serde_json::from_str(&text).unwrap();
    let s = ebbflow::gcp::monitoring::series_from_responses(&parsed, Dur::secs(60), Ts(0), now());
    assert_eq!(s.samples.len(), 30);
}

/// A policy with the status the controller writes: sizes and one metric with an effective target.
fn exported_policy(i: usize, reason: &str, time: &str) -> ebbflow::api::ScalePolicy {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "ebbflow.dev/v1alpha1", "kind": "ScalePolicy",
        "metadata": {"name": format!("p{i:03}"), "namespace": "data"},
        "spec": {"target": {"bigtableCluster": {"project": "p1", "instance": "i1", "cluster": format!("c{i}")}},
                 "minSize": 1, "maxSize": 20,
                 "metrics": [{"name": "cpu", "target": 0.6, "query": {"filter": "x"}}]},
        "status": {"currentSize": 5, "desiredSize": 7,
                   "lastDecision": {"time": time, "direction": "Up", "reason": reason, "message": "m", "from": 5, "to": 7,
                                    "metrics": {"cpu": {"raw": 0.9, "smoothed": 0.8, "target": 0.6, "effectiveTarget": 0.52}}}}
    }))
    .expect("policy")
}

/// The opt-in export writes custom metrics with `projects.timeSeries.create` in the shape the
/// API takes: 120 policies make 600 series, sent as 3 requests of at most 200, every series once
/// per request with one point; sizes are INT64 gauges, targets DOUBLE gauges, decision counts
/// cumulative from the exporter's start; a refused write names the IAM permission.
#[tokio::test]
async fn export_writes_custom_metrics_within_the_api_limits() {
    use ebbflow::gcp::export::Exporter;
    let (fake, cfg) = fake().await;
    let client = ebbflow::gcp::monitoring_client(&cfg).await.unwrap();
    let start = now() - Dur::mins(5);
    let mut exporter = Exporter::new(client, "ops-project", start);
    let policies: Vec<_> = (0..120).map(|i| exported_policy(i, "ScaleOut", "2026-11-23T04:00:00Z")).collect();
    let sent = exporter.export(&policies, now()).await.unwrap();
    assert_eq!(sent, 3);

    let reqs = fake.requests_to(Endpoint::CreateTimeSeries);
    assert_eq!(reqs.len(), 3);
    for r in &reqs {
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v3/projects/ops-project/timeSeries"));
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        let n = body["timeSeries"].as_array().unwrap().len();
        assert!((1..=200).contains(&n), "{n} series in one request");
    }
    let written = fake.written_series();
    assert_eq!(written.len(), 120 * 5, "current, desired, target, effective target, decisions per policy");
    let find = |kind: &str, policy: &str| {
        written
            .iter()
            .find(|s| s["metric"]["type"] == kind && s["metric"]["labels"]["policy"] == policy)
            .unwrap_or_else(|| panic!("no {kind} for {policy}"))
            .clone()
    };
    let desired = find("custom.googleapis.com/ebbflow/desired_size", "p007");
    assert_eq!(desired["metric"]["labels"]["namespace"], "data");
    assert_eq!(desired["resource"]["type"], "global");
    assert_eq!(desired["resource"]["labels"]["project_id"], "ops-project");
    // Enums travel as their numbers (as the client sends aggregation enums): GAUGE = 1, INT64 = 2.
    assert_eq!(desired["metricKind"], 1);
    assert_eq!(desired["valueType"], 2);
    assert_eq!(desired["points"][0]["value"]["int64Value"], "7", "int64 travels as a string");
    assert_eq!(desired["points"][0]["interval"]["endTime"], "2026-11-23T04:00:30Z");
    let eff = find("custom.googleapis.com/ebbflow/effective_target", "p007");
    assert_eq!(
        (eff["valueType"].as_i64(), eff["points"][0]["value"]["doubleValue"].as_f64()),
        (Some(3), Some(0.52)),
        "DOUBLE = 3"
    );
    assert_eq!(eff["metric"]["labels"]["metric"], "cpu");
    let dec = find("custom.googleapis.com/ebbflow/decisions", "p007");
    assert_eq!(
        (dec["metricKind"].as_i64(), dec["metric"]["labels"]["reason"].as_str()),
        (Some(3), Some("ScaleOut")),
        "CUMULATIVE = 3"
    );
    assert_eq!(dec["points"][0]["interval"]["startTime"], "2026-11-23T03:55:30Z");

    // A decision already counted is not counted again; a new one is.
    let mut later: Vec<_> = policies.clone();
    later[7] = exported_policy(7, "ScaleOut", "2026-11-23T04:01:30Z");
    exporter.export(&later, now() + Dur::mins(1)).await.unwrap();
    let written = fake.written_series();
    let counts: Vec<&str> = written
        .iter()
        .filter(|s| s["metric"]["type"] == "custom.googleapis.com/ebbflow/decisions")
        .filter(|s| s["metric"]["labels"]["policy"] == "p007" || s["metric"]["labels"]["policy"] == "p008")
        .map(|s| s["points"][0]["value"]["int64Value"].as_str().unwrap())
        .collect();
    assert_eq!(counts, ["1", "1", "2", "1"]);

    fake.inject(Endpoint::CreateTimeSeries, Fault::PermissionDenied, 1);
    let err = exporter.export(&policies, now() + Dur::mins(2)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::PermissionDenied);
    assert!(err.to_string().contains("monitoring.timeSeries.create"), "{err}");
}

//! The dashboard in a real browser: `ebbflow run` in standalone mode (the built binary, as an
//! operator starts it) against the fake Google servers with a scripted CPU spike, the page opened
//! in headless Chromium, and assertions on the DOM after the page's script ran.
//!
//! Needs the Debian `chromium` package (`apt-get install -y chromium`); without /usr/bin/chromium
//! the test fails when EBBFLOW_REQUIRE_BROWSER is set (as `.ci/run` sets it), and otherwise
//! prints a SKIP banner to the real stderr (not captured) and checks nothing. Chromium runs with networking features
//! off and talks only to 127.0.0.1. The screenshot is left in the target directory to look at.

use crate::browser_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ebbflow::core::{Dur, Ts};
use ebbflow::gcp::fake::{FakeGcp, FakeSeries, FakeValue, Script};

/// Virtual time the page's script gets before the DOM is read.
const BUDGET_MS: u32 = 4000;
const CPU: &str = r#"metric.type="bigtable.googleapis.com/cluster/cpu_load" AND resource.labels.cluster="c1""#;

const ORDERS: &str = r#"
apiVersion: ebbflow.dev/v1alpha1
kind: ScalePolicy
metadata:
  name: orders
  namespace: data
spec:
  target:
    bigtableCluster: {project: p1, instance: i1, cluster: c1}
  minSize: 3
  maxSize: 7
  interval: 10s
  metrics:
    - name: cpu
      target: 0.5
      query:
        filter: 'metric.type="bigtable.googleapis.com/cluster/cpu_load" AND resource.labels.cluster="c1"'
"#;

// Its cluster does not exist: the target cannot be read, so there is never a decision to chart.
const GHOST: &str = r#"
apiVersion: ebbflow.dev/v1alpha1
kind: ScalePolicy
metadata:
  name: ghost
  namespace: data
spec:
  target:
    bigtableCluster: {project: p1, instance: i1, cluster: gone}
  minSize: 1
  maxSize: 4
  interval: 10s
  metrics:
    - name: cpu
      target: 0.5
      query:
        filter: 'metric.type="bigtable.googleapis.com/cluster/cpu_load" AND resource.labels.cluster="gone"'
"#;

/// Kills the controller when the test ends, however it ends.
struct Controller(Child);

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// The fake's CPU: calm at 0.3 on 3 nodes for half an hour, then a sustained spike to 1.2 in the
/// last minute and a half, so the first evaluation scales out on the spike; afterwards the load
/// is spread over the new nodes.
fn script(now: Ts) -> Script {
    let mut points = Vec::new();
    for i in 0..28 {
        let wobble = [0.0, 0.01, -0.01, 0.02][i % 4];
        points.push((now - Dur::mins(30 - i as i64), FakeValue::Double(0.3 + wobble)));
    }
    for s in [-90, -60, -30] {
        points.push((now + Dur::secs(s), FakeValue::Double(1.2)));
    }
    // The fake does not model load: script the per-node CPU the new 7 nodes would see.
    for s in [5, 15, 25, 35, 45, 55] {
        points.push((now + Dur::secs(s), FakeValue::Double(0.48)));
    }
    Script { series: vec![FakeSeries { labels: Vec::new(), points }], execution_errors: Vec::new() }
}

#[test]
fn dashboard_shows_the_scale_out_in_a_real_browser() {
    if !browser_support::available("dashboard_shows_the_scale_out_in_a_real_browser") {
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("dashboard-browser-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("policies")).expect("mkdir");
    std::fs::write(dir.join("policies/orders.yaml"), ORDERS).expect("write");
    std::fs::write(dir.join("policies/ghost.yaml"), GHOST).expect("write");

    let fake = FakeGcp::start_on_thread().expect("fake");
    fake.add_bigtable_cluster("p1", "i1", "c1", "us-central1-b", 3);
    fake.set_time_series(CPU, script(ebbflow::clock::now()));

    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let _controller = Controller(
        Command::new(env!("CARGO_BIN_EXE_ebbflow"))
            .args(["run", "--policies"])
            .arg(dir.join("policies"))
            .arg("--state")
            .arg(dir.join("state.json"))
            .args(["--listen", &addr.to_string(), "--gcp-endpoint", &fake.endpoint()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ebbflow run"),
    );
    // Hang guards, not speed checks: generous on purpose.
    let deadline = Instant::now() + Duration::from_secs(60);
    while http_get(addr, "/healthz").as_deref() != Some("ok") {
        assert!(Instant::now() < deadline, "the controller did not start serving");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Wait until the page, as the browser renders it, shows the scale-out and the resize has
    // finished (the next evaluation sees 7 nodes serving).
    let url = format!("http://{addr}/");
    let profile = dir.join("chromium-profile");
    let deadline = Instant::now() + Duration::from_secs(120);
    let dom = loop {
        let out = browser_support::chromium(&profile, BUDGET_MS, &["--dump-dom"], &url);
        let dom = String::from_utf8_lossy(&out.stdout).into_owned();
        let resized = fake.bigtable_nodes("projects/p1/instances/i1/clusters/c1") == Some(7);
        // The evaluation after the resize shows 7 nodes serving.
        if dom.contains("ScaleOutOnSpike") && resized && dom.contains("<div class=\"v \">7</div>") {
            break dom;
        }
        if Instant::now() > deadline {
            let api = http_get(addr, "/api/policies").unwrap_or_default();
            let err = String::from_utf8_lossy(&out.stderr);
            let err: String = err.lines().filter(|l| !l.contains("dbus")).collect::<Vec<_>>().join("\n");
            panic!("the page never showed the finished scale-out; last DOM:\n{dom}\nAPI: {api}\nchromium: {err}");
        }
        std::thread::sleep(Duration::from_millis(500));
    };

    let screenshot = dir.join("dashboard.png");
    let out = browser_support::chromium(
        &profile,
        BUDGET_MS,
        &[&format!("--screenshot={}", screenshot.display()), "--window-size=1280,1900"],
        &url,
    );
    assert!(screenshot.exists(), "no screenshot: {}", String::from_utf8_lossy(&out.stderr));
    eprintln!("screenshot: {}", screenshot.display());

    // The script ran and drew a card per policy (the served HTML has none: it says "Loading…").
    let card = |key: &str| -> &str {
        let start = dom.find(&format!("data-policy=\"{key}\"")).unwrap_or_else(|| panic!("no card for {key}:\n{dom}"));
        let rest = &dom[start..];
        let end = rest[1..].find("<section").map_or(rest.len(), |i| i + 1);
        &rest[..end]
    };
    assert!(!dom.contains("Loading…"), "the script did not replace the placeholder");
    let orders = card("data/orders");
    assert!(orders.contains("bigtable p1/i1/c1"), "{orders}");
    assert!(orders.contains("Enforce"), "{orders}");
    assert!(orders.contains("scale out 3 -&gt; 7 at once: sustained spike"), "the decision table: {orders}");
    assert!(orders.contains("3 → 7"), "{orders}");
    assert!(orders.contains("<img src=\"/api/policies/data/orders/chart.svg?v="), "{orders}");
    assert!(orders.contains("Conditions") && orders.contains("AbleToScale"), "{orders}");
    let ghost = card("data/ghost");
    assert!(ghost.contains("No data yet"), "{ghost}");
    assert!(ghost.contains("NotFound"), "the reason is on the card: {ghost}");
    // The chart the image points at has the scale-out marked.
    let svg = http_get(addr, "/api/policies/data/orders/chart.svg").expect("chart");
    assert!(svg.contains("3-&gt;7 ScaleOutOnSpike") || svg.contains("3->7 ScaleOutOnSpike"), "{svg}");
    // Every figure says what it is.
    assert!(orders.contains("newest sample, per"), "{orders}");
    assert!(orders.contains("the size is computed from this"), "{orders}");
    assert!(orders.contains("target → effective"), "{orders}");
    // The timeline tells the resize with its reason in words.
    let events = http_get(addr, "/api/policies/data/orders/events").expect("events");
    assert!(events.contains("\"kind\":\"Resize\"") && events.contains("a sustained spike"), "{events}");
    let fleet = http_get(addr, "/api/events").expect("fleet events");
    assert!(fleet.contains("data/orders") && fleet.contains("data/ghost"), "{fleet}");
    // The fleet timeline on the page tells the resize in words.
    assert!(dom.contains("<li class=\"Resize\">") && dom.contains("a sustained spike"), "timeline: {dom}");

    // Filters live in the URL: the page applies them when it loads (health, search, range).
    let shown = |hash: &str| -> String {
        let out = browser_support::chromium(&profile, BUDGET_MS, &["--dump-dom"], &format!("{url}#{hash}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let errors = shown("health=Error");
    assert!(
        errors.contains("data-policy=\"data/ghost\"") && !errors.contains("data-policy=\"data/orders\""),
        "{errors}"
    );
    assert!(errors.contains("showing 1 of 1 matching, 2 in all"), "{errors}");
    let hour = shown("q=orders%20bigtable&range=1h");
    assert!(hour.contains("data-policy=\"data/orders\"") && !hour.contains("data-policy=\"data/ghost\""), "{hour}");
    assert!(hour.contains("&amp;range=1h\""), "the chart follows the time range: {hour}");
    let none = shown("q=no-such-policy");
    assert!(none.contains("No policy matches the filters."), "{none}");
    let svg = http_get(addr, "/api/policies/data/orders/chart.svg?range=1h").expect("chart");
    assert!(svg.starts_with("<svg") || svg.contains("<svg"), "{svg}");
    let bad = http_get(addr, "/api/policies/data/orders/chart.svg?range=1y").expect("answer");
    assert!(bad.contains("use 1h, 6h or 24h"), "{bad}");

    // No secrets: nothing from the environment or credentials on the page.
    assert!(!dom.contains("RUST_LOG") && !dom.to_lowercase().contains("token"));

    assert_eq!(fake.resize_requests().len(), 1, "one resize for one spike");
}

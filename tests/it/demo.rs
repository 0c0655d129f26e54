//! `ebbflow demo`: the standalone engine and the dashboard against the simulated world of
//! `simulate`, on a clock faster than real time. What a newcomer is promised: the controller acts
//! (resizes) soon after the start, the dashboard shows it on the demo's clock, and `ebbflow
//! status --state` reads the demo's state file.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use ebbflow::core::Ts;
use ebbflow::demo::{DemoArgs, MAX_SPEED};

fn get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (head.to_string(), body.to_string())
}

fn args(dir: &std::path::Path, speed: f64, length: &str) -> DemoArgs {
    DemoArgs {
        scenario: None,
        speed,
        listen: "127.0.0.1:0".parse().expect("addr"),
        dir: Some(dir.to_path_buf()),
        for_: Some(length.into()),
    }
}

/// The embedded scenario for three simulated hours: the policy resizes within them (the demo
/// starts shortly before its first action), the dashboard answers on the demo's clock (hours
/// ahead of the wall clock by the end) with the size the engine set, and the state file holds
/// the policy's status for `ebbflow status`.
#[tokio::test(flavor = "multi_thread")]
async fn the_demo_acts_within_hours_and_the_dashboard_and_status_show_it() {
    let dir = std::env::temp_dir().join(format!("ebbflow-demo-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let opts = args(&dir, 3000.0, "3h").options().expect("options");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let started = ebbflow::clock::now();
    let (lines_tx, mut lines_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let run = tokio::spawn(ebbflow::demo::run(opts, listener, Arc::new(AtomicBool::new(false)), move |l| {
        let _ = lines_tx.send(l);
    }));
    // The first resize the demo reports; the dashboard is asked while the demo runs.
    let mut seen = Vec::new();
    let mut served = None;
    while let Some(line) = lines_rx.recv().await {
        seen.push(line.clone());
        if served.is_none() && line.contains(" -> ") && !line.contains("evaluation failed") {
            let (head, body) = tokio::task::spawn_blocking(move || get(addr, "/api/policies")).await.expect("get");
            served = Some((head, body));
        }
    }
    let summary = run.await.expect("task").expect("demo");
    assert!(summary.resizes >= 1, "no resize in three simulated hours: {seen:#?}");
    assert!(summary.evaluations >= 170, "{summary:?}");
    assert!(seen.iter().any(|l| l.contains("dashboard:  http://")), "{seen:#?}");
    let (head, body) = served.expect("the dashboard was asked during the run");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let overview: serde_json::Value = serde_json::from_str(&body).expect("json");
    let policy = &overview["policies"][0];
    assert_eq!(policy["policy"], "default/bigtable-cpu", "{overview}");
    // The page's "now" is the demo's: ahead of the wall clock once simulated time has run.
    let now = Ts::parse_rfc3339(overview["now"].as_str().expect("now")).expect("time");
    assert!(now > started + ebbflow::core::Dur::mins(20), "dashboard now {now} vs start {started}");

    // The state file is what `ebbflow status --state` reads.
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ebbflow::demo::state_file(&dir)).expect("state")).expect("json");
    let status = &state["policies"]["default/bigtable-cpu"]["status"];
    assert_eq!(status["currentSize"], summary.size, "{status}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ebbflow"))
        .args(["status", "--state"])
        .arg(ebbflow::demo::state_file(&dir))
        .arg("--policies")
        .arg(dir.join("policies"))
        .output()
        .expect("status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("bigtable-cpu"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bad flags are refused naming the flag.
#[test]
fn demo_flags_are_checked() {
    let dir = std::env::temp_dir();
    for (speed, length, needle) in [
        (0.0, "1h", "--speed"),
        (0.5, "1h", "--speed"),
        (MAX_SPEED * 2.0, "1h", "--speed"),
        (f64::NAN, "1h", "--speed"),
        (60.0, "0s", "--for"),
        (60.0, "soon", "--for"),
    ] {
        let err = args(&dir, speed, length).options().expect_err("refused");
        assert!(err.starts_with(needle), "{speed} {length}: {err}");
    }
    // A directory with someone else's files (a controller's state, say) is not the demo's to
    // overwrite.
    let busy = std::env::temp_dir().join(format!("ebbflow-demo-busy-{}", std::process::id()));
    std::fs::create_dir_all(&busy).expect("dir");
    std::fs::write(busy.join("state.json"), "{}").expect("write");
    let err = args(&busy, 60.0, "1h").options().expect_err("refused");
    assert!(err.starts_with("--dir") && err.contains("state.json"), "{err}");
    assert_eq!(std::fs::read_to_string(busy.join("state.json")).expect("kept"), "{}");
    let _ = std::fs::remove_dir_all(&busy);
}

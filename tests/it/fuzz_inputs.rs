//! Fuzzing the input parsers with property tests (issue #10): arbitrary text and mutated copies of
//! the bundled files go into trace parsing (CSV and Cloud Monitoring JSON), policy and scenario
//! loading, and the status state file. Each must return a result or an error, never panic, and
//! every error line must stay short whatever the input. Small random traces then go through the
//! whole `simulate` path (replay, baselines, chart, HTML report).
//!
//! Runs 256 cases per property by default, in seconds; for a longer local run set
//! `PROPTEST_CASES`, e.g. `PROPTEST_CASES=20000 cargo test --release --test it fuzz_inputs::`.
//!
//! `decide` with arbitrary f64s, and the property that no input puts a non-finite number in the
//! policy state, are covered by the decision core's own property tests.

use std::path::PathBuf;

use ebbflow::sim::Trace;
use proptest::prelude::*;

/// Longest error line any input may produce: a file name, a field path, a short excerpt of the
/// input and the fix.
const MAX_LINE: usize = 600;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// `PROPTEST_CASES` (default 256) scaled by `per_mille`, at least 8: slow properties run fewer.
fn config(per_mille: u32) -> ProptestConfig {
    let base = ProptestConfig::default();
    ProptestConfig {
        cases: (base.cases * per_mille / 1000).max(8),
        // Integration tests have no lib.rs beside them for the default location.
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::Direct(
            "proptest-regressions/fuzz_inputs.txt",
        ))),
        ..base
    }
}

/// The first lines of each bundled CSV trace: enough to carry every shape of row, small enough to
/// parse thousands of times.
fn csv_seeds() -> Vec<String> {
    ["ec2_cpu_utilization_ac20cd.csv", "nyc_taxi.csv", "Twitter_volume_AAPL.csv", "elb_request_count_8c0756.csv"]
        .iter()
        .map(|f| read(&format!("simulations/traces/{f}")).lines().take(200).collect::<Vec<_>>().join("\n"))
        .collect()
}

/// A Cloud Monitoring ListTimeSeries response (newest first, as the API returns it) holding the
/// first rows of a bundled trace, with both value encodings.
fn json_seed() -> String {
    let text = read("simulations/traces/ec2_cpu_utilization_ac20cd.csv");
    let mut points = Vec::new();
    for (i, line) in text.lines().skip(1).take(60).enumerate() {
        let (ts, v) = line.split_once(',').expect("timestamp,value");
        let ts = ebbflow::sim::trace::parse_time(ts).expect("time");
        let value =
            if i % 2 == 0 { format!("{{\"doubleValue\":{v}}}") } else { format!("{{\"doubleValue\":\"{v}\"}}") };
        points.push(format!("{{\"interval\":{{\"endTime\":\"{ts}\"}},\"value\":{value}}}"));
    }
    points.reverse();
    format!(
        "{{\"timeSeries\":[{{\"metric\":{{\"type\":\"x\"}},\"points\":[{}]}}],\"nextPageToken\":\"\"}}",
        points.join(",")
    )
}

fn policy_seeds() -> Vec<String> {
    let mut out = Vec::new();
    for dir in ["simulations/policies", "deploy/examples"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        out.extend(files.iter().map(|f| std::fs::read_to_string(f).expect("policy")));
    }
    out
}

fn state_seed() -> String {
    serde_json::json!({"policies": {"default/web": {"status": {
        "observedGeneration": 3,
        "currentSize": 4,
        "desiredSize": 5,
        "lastDecision": {"time": "2026-11-23T14:00:00Z", "direction": "Up", "reason": "ScaleOut",
                         "message": "cpu 0.8 over 0.6", "from": 4, "to": 5,
                         "metrics": {"cpu": {"raw": 0.8, "smoothed": 0.75, "target": 0.6}}},
        "conditions": [{"type": "Ready", "status": "True", "reason": "Reconciled", "message": "ok",
                        "lastTransitionTime": "2026-11-23T13:00:00Z", "observedGeneration": 3}]
    }}}})
    .to_string()
}

/// One edit of a file's bytes; positions wrap around the file's length.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    /// A long run of one byte: the case that used to put megabytes into error messages.
    Repeat(usize, u8, usize),
    /// A copy of a stretch of the file elsewhere (duplicated rows, keys, pages).
    Copy(usize, usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Bytes that matter to the formats more often than chance would pick them.
    let special = prop_oneof![
        Just(b','),
        Just(b'\n'),
        Just(b':'),
        Just(b'"'),
        Just(b'{'),
        Just(b'}'),
        Just(b'['),
        Just(b'-'),
        Just(b' '),
        Just(b'9'),
        any::<u8>(),
    ];
    let text = prop_oneof![
        Just(b"NaN".to_vec()),
        Just(b"\"Infinity\"".to_vec()),
        Just(b"-inf".to_vec()),
        Just(b"1e308".to_vec()),
        Just(b"-1e308".to_vec()),
        Just(b"5e-324".to_vec()),
        Just(b"0001-01-01 00:00:00".to_vec()),
        Just(b"9999-12-31T23:59:59Z".to_vec()),
        Just(b"\n  spec: [".to_vec()),
        Just(b"&a *a <<".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..16),
    ];
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(p, b)| Edit::Flip(p, b)),
        (any::<usize>(), text).prop_map(|(p, t)| Edit::Insert(p, t)),
        (any::<usize>(), 1usize..64).prop_map(|(p, n)| Edit::Delete(p, n)),
        (any::<usize>(), special, 100usize..20_000).prop_map(|(p, b, n)| Edit::Repeat(p, b, n)),
        (any::<usize>(), any::<usize>(), 1usize..400).prop_map(|(a, b, n)| Edit::Copy(a, b, n)),
    ]
}

fn apply(seed: &str, edits: &[Edit]) -> String {
    let mut b = seed.as_bytes().to_vec();
    for e in edits {
        let at = |p: usize, len: usize| if len == 0 { 0 } else { p % (len + 1) };
        match e {
            Edit::Flip(p, bit) if !b.is_empty() => {
                let i = p % b.len();
                b[i] ^= 1 << bit;
            }
            Edit::Flip(..) => {}
            Edit::Insert(p, t) => {
                let i = at(*p, b.len());
                b.splice(i..i, t.iter().copied());
            }
            Edit::Delete(p, n) => {
                let i = at(*p, b.len());
                let end = (i + n).min(b.len());
                b.drain(i..end);
            }
            Edit::Repeat(p, byte, n) => {
                let i = at(*p, b.len());
                b.splice(i..i, std::iter::repeat_n(*byte, *n));
            }
            Edit::Copy(from, to, n) => {
                let i = at(*from, b.len());
                let piece: Vec<u8> = b[i..(i + n).min(b.len())].to_vec();
                let j = at(*to, b.len());
                b.splice(j..j, piece);
            }
        }
    }
    // The parsers take text; invalid UTF-8 is refused before them when reading a file.
    String::from_utf8_lossy(&b).into_owned()
}

#[track_caller]
fn short_lines(what: &str, message: &str) {
    for line in message.lines() {
        assert!(
            line.chars().count() <= MAX_LINE,
            "{what}: an error line of {} chars: {}…",
            line.chars().count(),
            line.chars().take(300).collect::<String>()
        );
    }
}

/// Parse a trace and check what a user of `simulate` relies on.
fn check_trace(text: &str) {
    match Trace::parse("t.csv", text) {
        Ok(t) => {
            assert!(!t.points.is_empty());
            assert!(t.points.iter().all(|p| p.1.is_finite()), "a non-finite value in a parsed trace");
            assert!(t.points.windows(2).all(|w| w[0].0 < w[1].0), "times not strictly increasing");
        }
        Err(e) => short_lines("trace", &e.to_string()),
    }
}

fn check_policy(text: &str) {
    if let Err(e) = ebbflow::crd::check_policy("p.yaml", text) {
        for line in e.lines() {
            short_lines("policy", &line);
        }
    }
    if let Err(e) = ebbflow::crd::parse_policy("p.yaml", text) {
        for line in e.lines() {
            short_lines("policy", &line);
        }
    }
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn any_text_is_a_trace_or_a_short_error(text in "[0-9a-zA-Z:,. \\-\\n\"{}\\[\\]]{0,400}") {
        check_trace(&text);
    }

    #[test]
    fn mutated_csv_traces_parse_or_fail_briefly(seed in 0usize..4, edits in proptest::collection::vec(edit(), 1..6)) {
        let seeds = csv_seeds();
        check_trace(&apply(&seeds[seed % seeds.len()], &edits));
    }

    #[test]
    fn mutated_monitoring_json_parses_or_fails_briefly(edits in proptest::collection::vec(edit(), 1..6)) {
        check_trace(&apply(&json_seed(), &edits));
    }

    #[test]
    fn monitoring_values_of_any_encoding_are_numbers_or_gaps(
        values in proptest::collection::vec(prop_oneof![
            any::<f64>().prop_map(|v| if v.is_finite() { format!("{v}") } else { "0".into() }),
            any::<f64>().prop_map(|v| format!("\"{v}\"")),
            Just("\"NaN\"".to_string()),
            Just("\"Infinity\"".to_string()),
            Just("\"-Infinity\"".to_string()),
            Just("\"x\"".to_string()),
            Just("null".to_string()),
            Just("true".to_string()),
        ], 1..30)
    ) {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{{\"interval\":{{\"endTime\":\"2026-01-01T00:{:02}:00Z\"}},\"value\":{{\"doubleValue\":{v}}}}}", i))
            .collect();
        let text = format!("{{\"timeSeries\":[{{\"points\":[{}]}}]}}", points.join(","));
        check_trace(&text);
    }

    #[test]
    fn any_text_is_a_policy_or_a_short_error(text in "[a-zA-Z0-9:\\- \\n\\[\\]{}\"'#&*!|>.]{0,400}") {
        check_policy(&text);
    }

    #[test]
    fn mutated_policies_load_or_fail_briefly(seed in 0usize..16, edits in proptest::collection::vec(edit(), 1..6)) {
        let seeds = policy_seeds();
        check_policy(&apply(&seeds[seed % seeds.len()], &edits));
    }

    #[test]
    fn mutated_state_files_read_or_fail_briefly(edits in proptest::collection::vec(edit(), 1..6)) {
        let text = apply(&state_seed(), &edits);
        if let Err(e) = ebbflow::readout::cli::parse_state_file(text.as_bytes(), &[]) {
            short_lines("state file", &e);
        }
    }
}

proptest! {
    #![proptest_config(config(250))]

    #[test]
    fn mutated_scenarios_load_or_fail_briefly(edits in proptest::collection::vec(edit(), 1..6)) {
        let dir = std::env::temp_dir().join(format!("ebbflow-fuzz-scenario-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        // One file per thread: proptest runs a property's cases one after another.
        let path = dir.join(format!("{:?}.yaml", std::thread::current().id()).replace(['(', ')'], ""));
        let seed = read("simulations/scenarios/ec2-batch-on-off.yaml");
        std::fs::write(&path, apply(&seed, &edits)).expect("write");
        if let Err(e) = ebbflow::sim::scenario::ScenarioFile::load(&path) {
            short_lines("scenario", &e);
        }
    }

    /// Any trace that parses goes through the whole of `simulate` (replay, baselines, chart,
    /// report) without a panic, and the policy never sees an infinite value.
    #[test]
    fn any_parsed_trace_simulates_and_renders(
        rows in proptest::collection::vec((1i64..7_200, prop_oneof![
            any::<f64>().prop_map(|v| format!("{v:e}")),
            (-1e6f64..1e6).prop_map(|v| format!("{v}")),
            Just("NaN".to_string()),
            Just("inf".to_string()),
            Just(String::new()),
            Just("1e308".to_string()),
            Just("-1e308".to_string()),
            Just("-1.7e308".to_string()),
            Just("5e-324".to_string()),
        ]), 1..40),
        per_node in any::<bool>(),
        // Per-node targets: percent, a fraction (live Bigtable CPU), a tiny one.
        target in prop_oneof![Just("1"), Just("0.6"), Just("0.001")],
        recorded in prop_oneof![Just(1u32), Just(3)],
    ) {
        let mut csv = String::from("timestamp,value\n");
        let mut t = 1_700_000_000i64;
        for (gap, v) in &rows {
            t += gap;
            csv.push_str(&format!("{},{v}\n", jiff::Timestamp::from_second(t).expect("time")));
        }
        let Ok(trace) = Trace::parse("t.csv", &csv) else { return Ok(()) };
        let dir = std::env::temp_dir().join(format!("ebbflow-fuzz-sim-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let trace_path = dir.join(format!("{:?}.csv", std::thread::current().id()).replace(['(', ')'], ""));
        std::fs::write(&trace_path, &csv).expect("write");
        let policy = if per_node {
            let text = read("simulations/policies/bigtable-cpu.yaml").replace("target: 0.6", &format!("target: {target}"));
            let path = dir.join(format!("{:?}.yaml", std::thread::current().id()).replace(['(', ')'], ""));
            std::fs::write(&path, text).expect("write");
            path
        } else {
            root().join("simulations/policies/requests-total.yaml")
        };
        let file = ebbflow::sim::scenario::ScenarioFile {
            trace: Some(trace_path),
            policy: Some(policy),
            recorded_size: Some(recorded),
            trace_scale: per_node.then_some(ebbflow::sim::trace::TraceScale::Fraction),
            ..Default::default()
        };
        let sc = ebbflow::sim::Scenario::build(file).expect("a parsed trace makes a scenario");
        prop_assert_eq!(sc.trace.points.len(), trace.points.len());
        let runs = ebbflow::sim::compare(&sc);
        for s in &runs[0].steps {
            prop_assert!(!s.observed.is_infinite() && !s.smoothed.is_infinite(), "{:?}", s);
        }
        let data = ebbflow::sim::chart::chart_data(&sc, &runs);
        let svg = ebbflow::chart::render_svg(&data, 900, 500);
        prop_assert!(svg.contains("<svg") && !svg.contains("NaN"));
        let html = ebbflow::sim::html::html(&sc, &runs);
        prop_assert!(html.contains("</html>"));
    }
}

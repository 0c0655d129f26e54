//! Hostile input (issue #10, items 13 and 14): huge lines, non-finite numbers, degenerate
//! traces, absurd time spans and flags. Each test feeds what a real user or a broken exporter
//! can produce and checks what the user sees: a short, specific error or a result, never a
//! panic, a backtrace, a hang or an allocation that scales with the input's time span.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ebbflow::sim::Trace;
use ebbflow::sim::cli::SimulateArgs;
use ebbflow::sim::scenario::{Scenario, ScenarioFile};

/// Longest error message a user should ever see for one bad value or line.
const SHORT: usize = 400;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh folder per call: tests run in parallel.
fn tmp() -> PathBuf {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ebbflow-hostile-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

fn bigtable_policy() -> PathBuf {
    root().join("simulations/policies/bigtable-cpu.yaml")
}

/// How long a command may run before it counts as hung. A hang guard, not a measure of speed:
/// every command here ends in well under a second, and a slow machine must not fail them; only a
/// command that would never end is stopped, so the run reports it instead of getting stuck.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// Run the built binary; a hang is a failure, not a stuck test run.
fn ebbflow(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_ebbflow"))
        .args(args)
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ebbflow");
    finish(child, &format!("ebbflow {args:?}"))
}

/// Wait for `child`; killed and a failure once [`HANG_GUARD`] has passed.
fn finish(mut child: Child, what: &str) -> Output {
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if started.elapsed() > HANG_GUARD {
            child.kill().ok();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{what} still running after {HANG_GUARD:?}; stderr so far: {}",
                String::from_utf8_lossy(&out.stderr).chars().take(2000).collect::<String>()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The message is short, and quotes no more than 80 characters of the (repetitive) bad input.
#[track_caller]
fn short(msg: &str) {
    assert!(msg.chars().count() <= SHORT, "message of {} chars: {}...", msg.len(), &msg[..msg.len().min(300)]);
    let mut run = (' ', 0);
    for c in msg.chars() {
        run = if c == run.0 { (c, run.1 + 1) } else { (c, 1) };
        assert!(run.1 <= 80, "quotes more than 80 characters of input: {msg}");
    }
}

// --- item 13: short excerpts -------------------------------------------------------------------

#[test]
fn trace_csv_errors_quote_a_short_excerpt_with_the_line() {
    let long = "7".repeat(1_000_000);
    let cases = [
        (format!("timestamp,value\n2014-02-14 14:30:00,1\n{long}x,2\n"), 3, "is not a timestamp"),
        (format!("timestamp,value\n2014-02-14 14:30:00,1\n2014-02-14 14:35:00,{long}x\n"), 3, "is not a number"),
        (format!("timestamp,value\n2014-02-14 14:30:00,1,{long}\n"), 2, "two columns"),
        (format!("timestamp,value\n2014-02-14 14:30:00,1\n{long}\n"), 3, "timestamp,value"),
    ];
    for (text, line, what) in cases {
        let e = Trace::parse("t.csv", &text).expect_err("refused").to_string();
        short(&e);
        assert!(e.contains('…'), "a cut value is marked with …: {e}");
        assert!(e.starts_with(&format!("t.csv:{line}: ")), "names the line: {e}");
        assert!(e.contains(what), "says {what:?}: {e}");
    }
}

#[test]
fn monitoring_json_errors_quote_a_short_excerpt() {
    let long = "A".repeat(1_000_000);
    let point = |v: &str| {
        format!(r#"{{"timeSeries":[{{"points":[{{"interval":{{"endTime":"2026-01-01T00:00:00Z"}},"value":{v}}}]}}]}}"#)
    };
    let cases = [
        point(&format!(r#"{{"doubleValue":"{long}"}}"#)),
        point(&format!(r#"{{"int64Value":"{long}"}}"#)),
        format!(r#"{{"timeSeries":"{long}"}}"#),
        format!(
            r#"{{"timeSeries":[{{"points":[{{"interval":{{"endTime":"{long}"}},"value":{{"doubleValue":1}}}}]}}]}}"#
        ),
    ];
    for text in cases {
        let e = Trace::parse("r.json", &text).expect_err("refused").to_string();
        short(&e);
        assert!(e.starts_with("r.json"), "names the file: {e}");
    }
}

#[test]
fn policy_errors_quote_a_short_excerpt() {
    let long = "z".repeat(1_000_000);
    let base = std::fs::read_to_string(bigtable_policy()).expect("policy");
    let cases = [
        // A syntax error on a huge line: the parser's snippet would echo the whole line.
        base.replace("  minSize: 2\n", &format!("  minSize: 2\n   {long}: [\n")),
        base.replace("cooldown: 10m", &format!("cooldown: {long}")),
        base.replace("  minSize: 2\n", &format!("  minSize: 2\n  {long}: 1\n")),
        base.replace("  minSize: 2\n", &format!("  minSize: 2\n  mode: {long}\n")),
        base.replace("kind: ScalePolicy", &format!("kind: {long}")),
    ];
    for text in cases {
        let e = ebbflow::crd::parse_policy("p.yaml", &text).expect_err("refused").to_string();
        short(&e);
        assert!(e.starts_with("p.yaml"), "names the file: {e}");
    }
}

#[test]
fn state_file_errors_quote_a_short_excerpt() {
    let long = "s".repeat(1_000_000);
    for text in [
        format!(r#"{{"policies": "{long}"}}"#),
        format!(r#"{{"policies": {{"a/b": {{"status": {{"observedGeneration": "{long}"}}}}}}}}"#),
        format!(r#"{{"policies": {{"a/b": {{"status": {{"lastDecision": {{"{long}": 1}}}}}}}}}}"#),
        format!("{{\"policies\": {{\"a/b\": {long}"),
    ] {
        let e = ebbflow::readout::cli::parse_state_file(text.as_bytes(), &[]).expect_err("refused");
        short(&e);
    }
}

// --- item 13: non-finite values are missing samples --------------------------------------------

#[test]
fn monitoring_json_non_finite_doubles_are_missing_samples() {
    let p = |t: &str, v: &str| format!(r#"{{"interval":{{"endTime":"2026-01-01T00:0{t}:00Z"}},"value":{v}}}"#);
    let text = format!(
        r#"{{"timeSeries":[{{"points":[{},{},{},{},{},{}]}}]}}"#,
        p("5", r#"{"doubleValue":0.7}"#),
        p("4", r#"{"doubleValue":"-Infinity"}"#),
        p("3", r#"{"doubleValue":"Infinity"}"#),
        p("2", r#"{"doubleValue":"NaN"}"#),
        p("1", r#"{"doubleValue":"0.5"}"#),
        p("0", r#"{"doubleValue":1e3}"#),
    );
    let t = Trace::parse("r.json", &text).unwrap_or_else(|e| panic!("a recording with NaN is still usable: {e}"));
    let values: Vec<f64> = t.points.iter().map(|p| p.1).collect();
    assert_eq!(values, [1e3, 0.5, 0.7], "non-finite points are gaps, numeric strings are numbers");
    assert_eq!(t.missing(), 3);
}

/// A trace with NaN/inf values: a minute a sample, 60 minutes, some values not numbers.
fn csv_with_missing() -> String {
    let mut csv = String::from("timestamp,value\n");
    for i in 0..60 {
        let v = match i {
            10 => "NaN".to_string(),
            11 => "inf".to_string(),
            12 => "-inf".to_string(),
            13 => "infinity".to_string(),
            14 => String::new(),
            _ => format!("{}", 40 + (i % 7) * 5),
        };
        csv.push_str(&format!("2024-01-01 00:{i:02}:00,{v}\n"));
    }
    csv
}

#[test]
fn csv_nan_and_inf_are_missing_samples_and_never_reach_smoothing() {
    let t = Trace::parse("t.csv", &csv_with_missing()).unwrap_or_else(|e| panic!("{e}"));
    assert!(t.points.iter().all(|p| p.1.is_finite()), "no non-finite value stays in the trace");
    assert_eq!((t.points.len(), t.missing()), (55, 5));

    let dir = tmp();
    let trace = write(&dir, "t.csv", &csv_with_missing());
    let file = ScenarioFile {
        trace: Some(trace),
        policy: Some(bigtable_policy()),
        recorded_size: Some(4),
        trace_scale: Some(ebbflow::sim::trace::TraceScale::Percent),
        ..ScenarioFile::default()
    };
    let sc = Scenario::build(file).unwrap_or_else(|e| panic!("{e}"));
    assert!(sc.notes.iter().any(|n| n.contains("5 samples")), "the user is told: {:?}", sc.notes);
    let run = ebbflow::sim::run_policy(&sc);
    for s in &run.steps {
        assert!(!s.observed.is_infinite() && !s.smoothed.is_infinite(), "{s:?}");
    }
    // Had NaN entered an average, it would have stayed NaN to the end.
    let last = run.steps.last().expect("steps");
    assert!(last.smoothed.is_finite() && last.observed.is_finite(), "{last:?}");
    assert!(run.summary.minutes_without_data > 0.0, "the gap counts as no data");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn values_near_f64_max_never_reach_the_policy_as_infinity() {
    let dir = tmp();
    let mut csv = String::from("timestamp,value\n");
    for i in 0..30 {
        csv.push_str(&format!("2024-01-01 00:{i:02}:00,{}\n", if i % 2 == 0 { 1e308 } else { 50.0 }));
    }
    let file = ScenarioFile {
        trace: Some(write(&dir, "t.csv", &csv)),
        policy: Some(bigtable_policy()),
        recorded_size: Some(10),
        trace_scale: Some(ebbflow::sim::trace::TraceScale::Fraction),
        ..ScenarioFile::default()
    };
    let sc = Scenario::build(file).unwrap_or_else(|e| panic!("{e}"));
    // What the simulated Cloud Monitoring hands the policy: 1e308 × 10 nodes overflows, and
    // must arrive as no sample rather than as infinity.
    use ebbflow::adapters::MetricSource as _;
    let world = ebbflow::sim::model::World::new(&sc.trace, sc.policy.metrics[0].kind, sc.model);
    let query = ebbflow::spec::metric_query(&sc.spec.metrics[0], "simulated", "simulated");
    let series =
        futures::executor::block_on(world.fetch(&query, ebbflow::core::Ts(i64::MIN), ebbflow::core::Ts(i64::MAX)))
            .expect("fetch");
    assert_eq!(series.samples.len(), 15, "the 15 samples of 50 arrive");
    assert!(series.samples.iter().all(|s| s.value.is_finite()), "{:?}", series.samples);
    let run = ebbflow::sim::run_policy(&sc);
    for s in &run.steps {
        assert!(!s.observed.is_infinite() && !s.smoothed.is_infinite(), "{s:?}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

// --- item 13: YAML errors in the user's terms ---------------------------------------------------

#[track_caller]
fn user_terms(msg: &str) {
    for word in
        ["Option<", "Options", "DuplicateKeyPolicy", "serde", "saphyr", "struct ", "ScalePolicySpec", "-->", "u32"]
    {
        assert!(!msg.contains(word), "library words ({word}) in: {msg}");
    }
}

#[test]
fn yaml_errors_name_the_file_line_and_column_in_policy_terms() {
    let base = std::fs::read_to_string(bigtable_policy()).expect("policy");
    let bad_indent = base.replace("  maxSize: 40\n", "   maxSize: 40\n");
    let line = base.lines().position(|l| l == "  maxSize: 40").expect("maxSize line") + 1;
    let e = ebbflow::crd::parse_policy("p.yaml", &bad_indent).expect_err("refused").to_string();
    user_terms(&e);
    assert!(e.starts_with(&format!("p.yaml:{line}:")), "file:line:column first: {e}");

    let dup = base.replace("  maxSize: 40\n", "  maxSize: 40\n  minSize: 3\n");
    let e = ebbflow::crd::parse_policy("p.yaml", &dup).expect_err("refused").to_string();
    user_terms(&e);
    assert!(e.starts_with(&format!("p.yaml:{}:", line + 1)), "{e}");
    assert!(e.contains("minSize") && e.contains("more than once"), "{e}");

    let e = ebbflow::crd::parse_policy("p.yaml", "\t- : : [\n").expect_err("refused").to_string();
    user_terms(&e);
    assert!(e.starts_with("p.yaml:1:"), "{e}");

    // Scenario files are deserialized straight into a type: the library speaks of Rust types.
    let dir = tmp();
    for (text, field, hint) in [
        ("recordedSize: ten\n", "recordedSize", "whole number"),
        ("recordedSize: -3\n", "recordedSize", "whole number"),
        ("limit: [1]\n", "limit", "single value"),
        ("tracee: x.csv\n", "tracee", "trace"),
        ("trace: {a: 1}\n", "trace", "single value"),
    ] {
        let f = write(&dir, "s.yaml", text);
        let e = ScenarioFile::load(&f).expect_err("refused");
        user_terms(&e);
        assert!(e.contains(&format!("{}:1:", f.display())), "file:line: {e}");
        assert!(e.contains(field) && e.contains(hint), "names {field} and says {hint}: {e}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

// --- item 13: validate reports everything at once ----------------------------------------------

#[test]
fn validate_reports_schema_and_rule_problems_together() {
    let dir = tmp();
    let text = std::fs::read_to_string(root().join("deploy/examples/workload.yaml"))
        .expect("example")
        .replace("minSize: 1", "minSize: 100\n  mode: enforce")
        .replace("window: 4m", "window: 0s");
    let bad = write(&dir, "bad.yaml", &text);
    let e = ebbflow::crd::load_policy(&bad).expect_err("refused").to_string();
    for part in [
        "spec.mode: must be one of",
        "spec.minSize: minSize (100) is greater than maxSize (40)",
        "spec.metrics[0].smoothing.window: must be greater than 0",
    ] {
        assert!(e.contains(part), "reports {part:?}: {e}");
    }
    // A missing name is reported with the rest too.
    let nameless = write(&dir, "nameless.yaml", &text.replace("metadata:\n  name: worker\n", "metadata:\n"));
    let e = ebbflow::crd::load_policy(&nameless).expect_err("refused").to_string();
    assert!(e.contains("metadata.name: is required") && e.contains("spec.minSize"), "{e}");
    let out = ebbflow(&["validate", bad.to_str().expect("utf-8")], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("spec.mode") && err.contains("spec.minSize") && err.contains("smoothing.window"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

// --- item 13: status --interval ----------------------------------------------------------------

#[test]
fn status_watch_refuses_a_zero_negative_or_absurd_interval() {
    for interval in ["0s", "0ms", "-1s", "100years"] {
        let out = ebbflow(&["status", "--state", "/nonexistent/state.json", "-w", "--interval", interval], &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--interval {interval} accepted");
        assert!(err.contains("--interval"), "names the flag: {err}");
    }
}

// --- item 13: sweep keys -----------------------------------------------------------------------

#[test]
fn sweep_key_matching_no_policy_field_is_refused_with_the_valid_keys() {
    for key in ["scaleIn.cooldwn", "metrics[0].smoothing.windw", "spike.treshold", "minsize"] {
        let args = SimulateArgs {
            sweep: vec![format!("{key}=5,10")],
            rank_by: "over-limit".into(),
            no_progress: true,
            ..SimulateArgs::default()
        };
        let e = ebbflow::sim::cli::run(&args).expect_err("a sweep of nothing is refused");
        assert!(e.contains(key), "names the key: {e}");
        assert!(e.contains("scaleIn.cooldown") && e.contains("metrics[0].smoothing.window"), "lists keys: {e}");
    }
}

/// Charts are SVG only: `--chart x.png` (a format once written) is refused at once, before the
/// replay, with the flag and the fix, and no file is left behind. "Before the replay" is shown by
/// order, not by time: the trace named does not exist, so anything that read it first would have
/// failed on the trace instead.
#[test]
fn a_png_chart_is_refused_with_the_flag_and_the_fix() {
    let dir = tmp();
    let no_trace = dir.join("never-written.csv");
    for name in ["c.png", "c.PNG", "c.jpg", "chart"] {
        let path = dir.join(name);
        let args = SimulateArgs {
            trace: Some(no_trace.clone()),
            policy: Some(bigtable_policy()),
            chart: Some(path.clone()),
            rank_by: "over-limit".into(),
            no_progress: true,
            ..SimulateArgs::default()
        };
        let e = ebbflow::sim::cli::run(&args).expect_err("only .svg is written");
        assert!(e.starts_with("--chart: ") && e.contains(name) && e.contains(".svg"), "{name}: {e}");
        assert!(!e.contains("never-written.csv"), "{name}: refused before the trace was read: {e}");
        if name.to_ascii_lowercase().ends_with(".png") {
            assert!(e.contains("SVG only"), "{name}: says why: {e}");
        }
        short(&e);
        assert!(!path.exists(), "{name}: nothing written");
    }
    // The same arguments with an SVG chart do reach the trace: the refusal above came first.
    let args = SimulateArgs {
        trace: Some(no_trace.clone()),
        policy: Some(bigtable_policy()),
        chart: Some(dir.join("c.svg")),
        rank_by: "over-limit".into(),
        no_progress: true,
        ..SimulateArgs::default()
    };
    let e = ebbflow::sim::cli::run(&args).expect_err("no trace");
    assert!(e.contains("never-written.csv"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

// --- item 13: no backtrace ---------------------------------------------------------------------

#[test]
fn an_invalid_file_prints_no_backtrace_even_with_rust_backtrace() {
    let dir = tmp();
    let bad = write(&dir, "bad.yaml", "apiVersion: ebbflow.dev/v1alpha1\nkind: ScalePolicy\nspec: [1]\n");
    let trace = write(&dir, "t.csv", "timestamp,value\nyesterday,1\n");
    let policy = bigtable_policy();
    for args in [
        vec!["validate", bad.to_str().expect("utf-8")],
        vec!["simulate", "--trace", trace.to_str().expect("utf-8"), "--policy", policy.to_str().expect("utf-8")],
    ] {
        let out = ebbflow(&args, &[("RUST_BACKTRACE", "1"), ("RUST_LIB_BACKTRACE", "1")]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(!err.contains("acktrace") && !err.contains("anyhow"), "{args:?}: {err}");
        assert!(err.lines().any(|l| l.starts_with("error: ")), "{args:?}: {err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

// --- item 14: rendering is total ---------------------------------------------------------------

#[test]
fn rendering_is_total_on_degenerate_traces() {
    let series = |values: &[&str]| {
        let mut csv = String::from("timestamp,value\n");
        for (i, v) in values.iter().enumerate() {
            csv.push_str(&format!("2024-01-01 00:{i:02}:00,{v}\n"));
        }
        csv
    };
    let traces = [
        ("all-equal", series(&["50"; 30])),
        ("one-sample", series(&["50"])),
        ("all-nan", series(&["NaN"; 10])),
        ("max", series(&["1e308"; 10])),
        ("plus-minus-max", series(&["1e308", "-1e308", "1e308", "-1e308", "0"])),
        ("tiny", series(&["5e-324"; 10])),
        ("zero", series(&["0"; 10])),
        ("negative", series(&["-5", "-7", "-1e300"])),
    ];
    let dir = tmp();
    // Live Bigtable CPU is a fraction: target 0.6, so ±1e308 stay finite per node but their range
    // does not fit an f64.
    let fraction = std::fs::read_to_string(bigtable_policy()).expect("policy").replace("target: 60", "target: 0.6");
    let fraction = write(&dir, "fraction.yaml", &fraction);
    for (name, csv) in traces {
        let trace = write(&dir, &format!("{name}.csv"), &csv);
        for (chart, policy, recorded) in
            [("c.svg", bigtable_policy(), 10), ("c.SVG", bigtable_policy(), 10), ("c.svg", fraction.clone(), 1)]
        {
            let args = SimulateArgs {
                trace: Some(trace.clone()),
                policy: Some(policy),
                recorded_size: Some(recorded),
                chart: Some(dir.join(chart)),
                html: Some(dir.join("r.html")),
                steps_out: Some(dir.join("steps.csv")),
                json: true,
                rank_by: "over-limit".into(),
                no_progress: true,
                ..SimulateArgs::default()
            };
            let result = std::panic::catch_unwind(|| ebbflow::sim::cli::run(&args));
            match result {
                Err(_) => panic!("{name}: simulate --chart {chart} --html panicked"),
                Ok(Err(e)) => {
                    // Refusing is fine if it is a clear message about the trace.
                    assert!(e.contains(&format!("{name}.csv")) && e.len() <= SHORT, "{name}: {e}");
                }
                Ok(Ok(())) => {
                    let html = std::fs::read_to_string(dir.join("r.html")).expect("html");
                    let marker = "id=\"chart-data\">";
                    let at = html.find(marker).expect("the report embeds the chart's data") + marker.len();
                    let data = &html[at..at + html[at..].find("</script>").expect("end")];
                    let data: serde_json::Value = serde_json::from_str(data).expect("the chart's data are JSON");
                    assert!(data["panels"].as_array().is_some_and(|p| p.len() == 2), "{name}: {data}");
                    assert!(std::fs::metadata(dir.join(chart)).expect("chart").len() > 100, "{name}: {chart}");
                }
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_chart_renders_any_data() {
    use ebbflow::chart::{ChartData, Marker, MarkerKind, MetricPanel, Series, Style, render_svg};
    let pts = |v: &[(i64, f64)]| v.to_vec();
    // (start, end, points) of the chart.
    type Case = (i64, i64, Vec<(i64, f64)>);
    let cases: Vec<Case> = vec![
        (i64::MIN, i64::MAX, pts(&[(i64::MIN, 1.0), (0, f64::MAX), (i64::MAX, -f64::MAX)])),
        (0, 0, pts(&[(0, 1.0)])),
        (5, -5, pts(&[(0, f64::NAN), (1, f64::INFINITY)])),
        (0, 1000, pts(&[(0, 5e-324), (1000, 5e-324)])),
        (0, 1000, pts(&[(0, 1e300), (500, 1e300 + 1e285)])),
        (-62_135_596_800_000, 253_370_764_800_000, pts(&[(0, 1.0)])),
    ];
    for (start, end, points) in cases {
        let data = ChartData {
            title: "t".into(),
            start_ms: start,
            end_ms: end,
            load: vec![Series::new("demand", Style::Area, points.clone())],
            sizes: vec![Series::new("serving", Style::Step, points.clone())],
            markers: vec![Marker { at_ms: points[0].0, kind: MarkerKind::ScaleOut, label: "x".into() }],
            y_label: "nodes".into(),
            metrics: vec![MetricPanel::new("cpu", vec![Series::new("observed", Style::Line, points)])],
        };
        let svg = std::panic::catch_unwind(|| render_svg(&data, 800, 400))
            .unwrap_or_else(|_| panic!("render_svg panicked on {start}..{end}"));
        // Nothing drawn grows with the span (a tick per day over i64's range would be millions of
        // labels): the picture is its few points, a bounded number of ticks and its labels.
        let labels = svg.matches("<text").count();
        assert!(labels <= 300, "{start}..{end}: {labels} labels");
        assert!(svg.len() < 1 << 20, "{start}..{end}: {} bytes of SVG", svg.len());
    }
}

// --- item 14: no allocation scales with the time span ------------------------------------------

#[test]
fn a_trace_spanning_millennia_is_refused_quickly_in_bounded_memory() {
    let dir = tmp();
    let trace = write(
        &dir,
        "years.csv",
        "timestamp,value\n0001-01-01 00:00:00,1\n0001-01-01 00:05:00,2\n2024-06-01 00:00:00,3\n9998-12-31 00:00:00,4\n",
    );
    let policy = bigtable_policy();
    // 2 GB of address space: a replay that sized anything by the span would die here.
    let cmd = format!(
        "ulimit -v 2000000; exec '{}' simulate --trace '{}' --policy '{}' --recorded-size 10 --trace-scale percent --chart '{}' --html '{}'",
        env!("CARGO_BIN_EXE_ebbflow"),
        trace.display(),
        policy.display(),
        dir.join("c.svg").display(),
        dir.join("r.html").display()
    );
    let child =
        Command::new("sh").arg("-c").arg(&cmd).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("sh");
    // The refusal is decided from the count of evaluations (in the message below), before anything
    // is sized by the span; the address-space limit is what would catch an allocation that grows
    // with it. No time is measured.
    let out = finish(child, "simulate over millennia");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused");
    assert!(out.status.code().is_some(), "exited, not killed: {:?} {err}", out.status);
    for part in ["years.csv", "evaluations", "10,000,000", "0001-01-01", "9998-12-31"] {
        assert!(err.contains(part), "says {part:?}: {err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_long_policy_interval_does_not_overflow_the_hpa_baseline() {
    let dir = tmp();
    let text = std::fs::read_to_string(bigtable_policy())
        .expect("policy")
        .replace("  minSize: 2\n", "  minSize: 2\n  interval: 2000h\n");
    let policy = write(&dir, "p.yaml", &text);
    // A sample a day at 1000 against a target of 60: the HPA scales out at every evaluation.
    let mut csv = String::from("timestamp,value\n");
    let mut day = jiff::civil::date(2024, 1, 1);
    for _ in 0..200 {
        csv.push_str(&format!("{day} 00:00:00,1000\n"));
        day = day.tomorrow().expect("date");
    }
    let sc = Scenario::build(ScenarioFile {
        trace: Some(write(&dir, "t.csv", &csv)),
        policy: Some(policy),
        recorded_size: Some(1),
        trace_scale: Some(ebbflow::sim::trace::TraceScale::Fraction),
        ..ScenarioFile::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let runs = std::panic::catch_unwind(|| ebbflow::sim::compare(&sc));
    assert!(runs.is_ok(), "compare panicked with a 2000h interval");
    std::fs::remove_dir_all(&dir).ok();
}

// --- issue 29, item 11: a silence's time span costs nothing -------------------------------------

/// Three samples spanning 19 years (just under the span limit at a 1-minute interval): the replay
/// of the policy and of every baseline makes a few thousand rows, not ten million, still from the
/// first sample to the last with the size held through the silence billed; and the binary replays
/// it, with a chart and a report, under a 2 GB address-space limit (before: 4.9 GB and 29 s).
#[test]
fn a_three_line_trace_spanning_19_years_replays_in_rows_bounded_by_its_samples() {
    let dir = tmp();
    let trace = write(&dir, "decades.csv", "2005-01-01 00:00:00,50\n2005-01-01 00:05:00,70\n2023-12-31 00:00:00,60\n");
    let sc = Scenario::build(ScenarioFile {
        trace: Some(trace.clone()),
        policy: Some(bigtable_policy()),
        recorded_size: Some(10),
        trace_scale: Some(ebbflow::sim::trace::TraceScale::Percent),
        ..ScenarioFile::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let (start, end) = sc.trace.span();
    let span_minutes = (end - start).as_minutes();
    assert!(span_minutes > 9_900_000.0, "{span_minutes} minutes");
    // Counted before anything is replayed: the rows each algorithm will make.
    assert!(sc.evaluations() < 20_000, "{} evaluations for 3 samples", sc.evaluations());
    assert!(sc.notes.iter().any(|n| n.contains("skips")), "the report says so: {:?}", sc.notes);
    for run in ebbflow::sim::compare(&sc) {
        let (name, steps) = (&run.summary.algorithm, &run.steps);
        assert!(steps.len() < 20_000, "{name}: {} rows", steps.len());
        assert_eq!((steps[0].at, steps[steps.len() - 1].at), (start, end), "{name}: from the first sample to the last");
        let floor = f64::from(sc.policy.min_size) * span_minutes;
        assert!(run.summary.node_minutes >= floor, "{name}: {} node-minutes billed", run.summary.node_minutes);
    }

    let cmd = format!(
        "ulimit -v 2000000; exec '{}' simulate --trace '{}' --policy '{}' --recorded-size 10 --trace-scale percent --chart '{}' --html '{}'",
        env!("CARGO_BIN_EXE_ebbflow"),
        trace.display(),
        bigtable_policy().display(),
        dir.join("c.svg").display(),
        dir.join("r.html").display()
    );
    let out = Command::new("sh").arg("-c").arg(&cmd).output().expect("sh");
    assert!(out.status.success(), "{:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::metadata(dir.join("r.html")).is_ok_and(|m| m.len() > 0), "the report is written");
    std::fs::remove_dir_all(&dir).ok();
}

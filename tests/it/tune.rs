//! `ebbflow tune` on small hand-made traces whose answer is known: it finds a variant that meets
//! a constraint the starting policy misses, the YAML it writes validates and replays to the
//! scores it states, the held-back part is whole days, and bad flags say which flag and how to
//! fix it. Small traces and budgets keep these fast in a debug build; nothing here is timed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ebbflow::sim::tune::search::Config;
use ebbflow::sim::tune::{Problem, TuneArgs, Tuned, output, score_split, tune};

/// A fresh folder for one test's files.
fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ebbflow-tune-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

const POLICY: &str = r#"apiVersion: ebbflow.dev/v1alpha1
kind: ScalePolicy
metadata:
  name: web
  namespace: default
spec:
  target:
    gkeNodePool: {project: p, location: us-east1, cluster: c, nodePool: default}
  minSize: 1
  maxSize: 40
  metrics:
    - name: cpu
      query:
        filter: metric.type="kubernetes.io/node/cpu/allocatable_utilization"
      target: 0.65
      # Off, so that only spare capacity can carry the bursts of the trace below.
      headroom: {enabled: false}
  spike: {enabled: false}
"#;

/// Per-node CPU in the quiet minutes of [`bursty_csv`]: 4.8 nodes' worth of demand, which the
/// starting policy (target 0.65, dead band down to 0.585) holds on 8 nodes at 0.6 each.
const QUIET: f64 = 0.48;
/// The bursts: 1.4 × the quiet load, 6.72 nodes' worth: over the limit (0.8125) on 8 nodes
/// (0.84), under it on 9 (0.75).
const BURST: f64 = QUIET * 1.4;

/// `days` of per-node CPU one minute apart, recorded on 10 nodes: [`QUIET`] with a 2-minute
/// burst to [`BURST`] at the top of every hour. The bursts are too short for any policy to
/// follow with 10-minute provisioning, so only spare capacity (9 nodes serving when they come)
/// keeps them under the limit.
fn bursty_csv(days: usize) -> String {
    let mut csv = String::from("timestamp,value\n");
    for i in 0..days * 1440 {
        let v = if is_burst(i) { BURST } else { QUIET };
        let at = ebbflow::core::Ts(START_MS + i as i64 * 60_000);
        let _ = writeln!(csv, "{},{v}", at.to_rfc3339());
    }
    csv
}

const START_MS: i64 = 1_700_006_400_000;

fn is_burst(minute: usize) -> bool {
    minute % 60 < 2
}

/// Files for a tune run on the bursty trace: (trace, policy).
fn bursty_files(d: &Path, days: usize) -> (PathBuf, PathBuf) {
    let (trace, policy) = (d.join("bursty.csv"), d.join("web.yaml"));
    std::fs::write(&trace, bursty_csv(days)).expect("write trace");
    std::fs::write(&policy, POLICY).expect("write policy");
    (trace, policy)
}

fn args(trace: &Path, policy: &Path) -> TuneArgs {
    TuneArgs {
        traces: vec![trace.to_path_buf()],
        policy: Some(policy.to_path_buf()),
        recorded_size: Some(10),
        provision_delay: Some("10m".into()),
        budget: 60,
        no_progress: true,
        threads: Some(2),
        ..TuneArgs::default()
    }
}

fn run(a: &TuneArgs) -> (Problem, Tuned) {
    let problem = a.problem().expect("valid inputs");
    let cfg = Config { budget: a.budget, patience: a.patience, seed: a.seed, threads: a.threads.unwrap_or(2) };
    let tuned = tune(&problem, &cfg, |_| {}).expect("tune runs");
    (problem, tuned)
}

#[test]
fn tune_finds_a_variant_that_meets_a_constraint_the_starting_policy_misses() {
    let d = dir("constraint");
    let (trace, policy) = bursty_files(&d, 4);
    let mut a = args(&trace, &policy);
    a.max_over_limit_per_day = Some(0.0);
    let (problem, t) = run(&a);
    let per_day = t.start.split.tuning.over_limit / t.tune_days;
    assert!(per_day > 10.0, "the starting policy goes over the limit in the bursts: {per_day} min/day");
    let best = t.recommendation.as_ref().expect("a variant meets the constraint");
    assert_eq!(best.split.tuning.over_limit, 0.0, "{:?}", best.split);
    assert!(best.changes.len() <= t.front[t.recommended.expect("front member")].changes.len());
    assert!(best.split.tuning.node_minutes > t.start.split.tuning.node_minutes, "spare capacity costs more");
    // The known answer, checked on the replay itself: 9 nodes serve every burst of the tuning
    // days.
    let sc = ebbflow::sim::Scenario {
        spec: best.spec.clone(),
        policy: ebbflow::spec::policy_from_spec(&best.spec).expect("valid"),
        ..problem.cases[0].scenario.clone()
    };
    let run = ebbflow::sim::run_policy(&sc);
    let bursts: Vec<_> = run
        .steps
        .iter()
        .filter(|s| s.at <= problem.cases[0].cutoff && is_burst(((s.at.0 - START_MS) / 60_000) as usize))
        .collect();
    assert_eq!(bursts.len(), 2 * 24 * 3, "three tuning days of bursts");
    assert!(bursts.iter().all(|s| s.serving >= 9), "{:?}", bursts.iter().find(|s| s.serving < 9));
    // The report says how many variants ran to the end and how many the front stopped, and they
    // are every variant searched.
    let report = output::report(&problem, &t, &a);
    let line = report.lines().find(|l| l.starts_with("Searched ")).expect("a summary line");
    let number_before = |words: &str| -> usize {
        let head = &line[..line.find(words).unwrap_or_else(|| panic!("{words:?} in {line}"))];
        head.rsplit(|c: char| !c.is_ascii_digit()).next().and_then(|n| n.parse().ok()).expect(line)
    };
    let (to_end, stopped) = (number_before(" replayed to the end"), number_before(" stopped early"));
    let scored = t.found.evaluated.iter().filter(|e| e.scores().is_some()).count();
    assert_eq!((to_end, to_end + stopped), (scored, t.found.evaluated.len()), "{line}");
    // No front member that meets it is cheaper beyond the simplification's allowance.
    for m in t.front.iter().filter(|m| m.meets) {
        assert!(
            m.split.tuning.node_minutes * (1.0 + ebbflow::sim::tune::SIMPLER_COST) >= best.split.tuning.node_minutes
        );
    }
}

#[test]
fn the_written_yaml_validates_and_replays_to_the_scores_it_states() {
    let d = dir("yaml");
    let (trace, policy) = bursty_files(&d, 4);
    let mut a = args(&trace, &policy);
    a.max_over_limit_per_day = Some(0.0);
    a.max_resizes_per_day = Some(10.0);
    let (problem, t) = run(&a);
    let best = t.recommendation.as_ref().expect("a variant meets the constraints");
    let yaml = output::policy_yaml(&problem, &t, best, &a).expect("yaml");
    // What `ebbflow validate` checks: the CRD schema, then the rules.
    let (sp, _) = ebbflow::crd::check_policy("tuned.yaml", &yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert!(yaml.contains("bursty.csv") && yaml.contains("held back the last 1 "), "{yaml}");
    assert!(yaml.contains("at most 0.00 minutes over the limit per day") && yaml.contains("at most 10 scale actions"));

    // Replay the file just as written, on the same traces.
    let tuned_file = d.join("tuned.yaml");
    std::fs::write(&tuned_file, &yaml).expect("write");
    let mut again = args(&trace, &tuned_file);
    again.max_over_limit_per_day = Some(0.0);
    let replayed = again.problem().expect("the written policy loads");
    assert_eq!(replayed.spec, best.spec, "the file holds the recommended variant");
    let split = score_split(&replayed, &sp.spec).expect("replays");
    assert_eq!(split.tuning, best.split.tuning);
    assert_eq!(split.held, best.split.held);
    let claimed = format!(
        "Achieved on the tuning days:    {:.0} node-minutes, {:.2} minutes over the limit, {} scale actions",
        split.tuning.node_minutes, split.tuning.over_limit, split.tuning.actions
    );
    assert!(yaml.contains(&claimed), "{claimed}\n{yaml}");
    let claimed = format!(
        "Achieved on the held-back days: {:.0} node-minutes, {:.2} minutes over the limit, {} scale actions",
        split.held.node_minutes, split.held.over_limit, split.held.actions
    );
    assert!(yaml.contains(&claimed), "{claimed}\n{yaml}");
}

#[test]
fn the_search_scores_match_a_replay_of_the_tuning_days() {
    let d = dir("consistent");
    let (trace, policy) = bursty_files(&d, 3);
    let mut a = args(&trace, &policy);
    a.budget = 20;
    let (_, t) = run(&a);
    for m in &t.front {
        let i = m.index.expect("front members come from the search");
        assert_eq!(t.found.evaluated[i].scores(), Some(m.split.tuning), "variant {i}");
    }
}

#[test]
fn the_held_back_part_is_whole_days_at_the_end() {
    let d = dir("split");
    let (trace, policy) = bursty_files(&d, 10);
    let a = TuneArgs { holdout: 0.25, ..args(&trace, &policy) };
    let problem = a.problem().expect("valid");
    let case = &problem.cases[0];
    let (start, end) = case.scenario.trace.span();
    assert_eq!(case.days, 9, "10 days of minutes span 9 whole days and 23h59m");
    assert_eq!(case.held_days, 2, "a quarter of 9 days, rounded");
    assert_eq!(end.0 - case.cutoff.0, 2 * 86_400_000);
    let split = score_split(&problem, &problem.spec).expect("replays");
    let (tuning, held) = &split.per_case[0];
    assert_eq!(held.evaluations, 2 * 1440, "the held-back rows cover exactly two days");
    assert_eq!(tuning.evaluations + held.evaluations, problem.cases[0].scenario.evaluations());
    assert!(case.cutoff > start);

    // Even a small share holds back one whole day; a trace under two days cannot be split.
    let small = TuneArgs { holdout: 0.05, ..args(&trace, &policy) };
    assert_eq!(small.problem().expect("valid").cases[0].held_days, 1);
    let short = d.join("short.csv");
    std::fs::write(&short, bursty_csv(1)).expect("write");
    let e = args(&short, &policy).problem().expect_err("too short");
    assert!(e.contains("at least 2 days"), "{e}");
}

#[test]
fn bad_flags_name_the_flag_and_the_fix() {
    let d = dir("flags");
    let (trace, policy) = bursty_files(&d, 3);
    let cases: Vec<(TuneArgs, &str)> = vec![
        (TuneArgs { traces: vec![], policy: None, ..args(&trace, &policy) }, "pass --scenario FILE"),
        (TuneArgs { policy: None, ..args(&trace, &policy) }, "--trace needs --policy FILE"),
        (TuneArgs { budget: 0, ..args(&trace, &policy) }, "--budget 0: give at least 10"),
        (TuneArgs { holdout: 0.9, ..args(&trace, &policy) }, "--holdout 0.9: give the share of days"),
        (TuneArgs { max_over_limit_per_day: Some(-1.0), ..args(&trace, &policy) }, "--max-over-limit-per-day -1"),
        (TuneArgs { max_resizes_per_day: Some(f64::NAN), ..args(&trace, &policy) }, "--max-resizes-per-day NaN"),
        (TuneArgs { chart: Some(d.join("front.png")), ..args(&trace, &policy) }, "name the file .svg"),
        (TuneArgs { threads: Some(0), ..args(&trace, &policy) }, "--threads 0"),
        (TuneArgs { recorded_size: None, ..args(&trace, &policy) }, "--recorded-size"),
    ];
    for (a, want) in cases {
        let e = a.problem().expect_err(want);
        assert!(e.contains(want), "expected {want:?} in: {e}");
    }

    // Two traces replaying different policies: tune one of them on both with --policy.
    let other = d.join("other.yaml");
    std::fs::write(&other, POLICY.replace("target: 0.65", "target: 0.5")).expect("write");
    let (s1, s2) = (d.join("a.yaml"), d.join("b.yaml"));
    for (s, p) in [(&s1, &policy), (&s2, &other)] {
        let text = format!("trace: {}\npolicy: {}\nrecordedSize: 10\n", trace.display(), p.display());
        std::fs::write(s, text).expect("write");
    }
    let a = TuneArgs { scenarios: vec![s1.clone(), s2.clone()], no_progress: true, ..TuneArgs::default() };
    let e = a.problem().expect_err("different policies");
    assert!(e.contains("pass --policy FILE"), "{e}");
    let a = TuneArgs { scenarios: vec![s1, s2], policy: Some(policy), no_progress: true, ..TuneArgs::default() };
    assert_eq!(a.problem().expect("one policy on both").cases.len(), 2);
}

#[test]
fn when_nothing_meets_the_constraints_the_message_names_the_one_that_binds() {
    let d = dir("binding");
    let (trace, policy) = bursty_files(&d, 3);
    let mut a = args(&trace, &policy);
    a.budget = 20;
    a.max_resizes_per_day = Some(0.0);
    a.bigtable_scale_in_guidance = true;
    let (_, t) = run(&a);
    // The trace starts on 10 nodes and needs fewer: every variant must scale in at least once.
    assert_eq!(t.recommended, None);
    assert!(t.recommendation.is_none());
    let msg = output::no_variant_meets(&t);
    assert!(msg.contains("--max-resizes-per-day (0) binds"), "{msg}");
    assert!(msg.contains("No policy was written"), "{msg}");
}

#[test]
fn bigtable_guidance_holds_for_every_front_member() {
    let d = dir("guidance");
    let (trace, policy) = bursty_files(&d, 3);
    let mut a = args(&trace, &policy);
    a.budget = 20;
    a.bigtable_scale_in_guidance = true;
    let (_, t) = run(&a);
    for m in &t.front {
        assert_eq!(ebbflow::sim::tune::space::bigtable_guidance_problem(&m.spec), None, "{:?}", m.changes);
    }
}

/// The issue's first trap: `tune` on a bundled Bigtable scenario wrote `target: 51.0` on
/// `cpu_load` (a 0-1 fraction) into a file it called ready for `kubectl apply`. The trace is read
/// as the percent it is, so the search runs in fractions and the file holds a fraction, which
/// `validate` accepts.
#[test]
fn tune_writes_the_target_in_the_metrics_unit() {
    let scenario = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("simulations/scenarios/ec2-idle-with-bursts.yaml");
    let a = TuneArgs {
        scenarios: vec![scenario],
        budget: 10,
        patience: 1,
        threads: Some(2),
        // Loose, so that some variant meets it and a policy is written.
        max_over_limit_per_day: Some(1e9),
        no_progress: true,
        ..TuneArgs::default()
    };
    let (problem, t) = run(&a);
    let target = problem.dims.iter().find(|d| d.knob == ebbflow::sim::tune::space::Knob::Target).expect("searched");
    assert!(0.0 < target.lo && target.hi <= 1.0 && target.base == 0.6, "the search space is in fractions: {target:?}");
    for m in &t.front {
        let v = m.spec.metrics[0].target_value();
        assert!(v > 0.0 && v <= 1.0, "a front member holds cpu_load at {v}: {:?}", m.changes);
    }
    let best = t.recommendation.as_ref().expect("a variant meets the loose constraint");
    let yaml = output::policy_yaml(&problem, &t, best, &a).expect("yaml");
    let (sp, _) = ebbflow::crd::check_policy("tuned.yaml", &yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let m = &sp.spec.metrics[0];
    let target = m.target_value();
    assert!(target > 0.0 && target <= 1.0, "tuned target {target}\n{yaml}");
    assert!(m.headroom.limit.is_none_or(|l| l <= 1.0), "tuned limit {:?}", m.headroom.limit);
}

/// A target near the top of a fraction: the searched range stops at 1 (not 1.2 x 0.9), and the
/// limit a moved target writes out stays a fraction (1.25 x 0.9 is none), so every variant,
/// the highest corner included, is a policy `validate` accepts.
#[test]
fn a_fraction_target_is_searched_within_its_range() {
    let d = dir("range");
    let (trace, _) = bursty_files(&d, 3);
    let policy = d.join("high.yaml");
    std::fs::write(&policy, POLICY.replace("target: 0.65", "target: 0.9")).expect("write");
    let problem = args(&trace, &policy).problem().expect("valid");
    let target = problem.dims.iter().find(|d| d.knob == ebbflow::sim::tune::space::Knob::Target).expect("target");
    assert_eq!((target.base, target.hi), (0.9, 1.0));
    let dims = &problem.dims;
    for corner in [0.0, 1.0] {
        let values = ebbflow::sim::tune::space::decode(dims, &vec![corner; dims.len()]);
        let spec = ebbflow::sim::tune::space::apply(&problem.spec, 0, dims, &values);
        let m = &spec.metrics[0];
        assert!(m.target_value() <= 1.0 && m.headroom.limit.is_none_or(|l| l <= 1.0), "{corner}: {m:?}");
        ebbflow::spec::policy_from_spec(&spec).unwrap_or_else(|e| panic!("corner {corner}: {e}"));
    }
}

/// A percent trace is tuned on as the fractions the metric reports once it says so (flag or
/// `# unit:` line); unsaid, it is refused with the fix rather than searched a hundredfold off.
#[test]
fn a_percent_trace_is_tuned_on_as_fractions() {
    let d = dir("percent");
    let (trace, policy) = bursty_files(&d, 3);
    let fractions = std::fs::read_to_string(&trace).expect("trace");
    let mut percent = String::new();
    for line in fractions.lines() {
        match line.split_once(',') {
            Some((t, v)) if v.parse::<f64>().is_ok() => {
                let _ = writeln!(percent, "{t},{}", v.parse::<f64>().expect("number") * 100.0);
            }
            _ => {
                let _ = writeln!(percent, "{line}");
            }
        }
    }
    let percent_trace = d.join("percent.csv");
    std::fs::write(&percent_trace, &percent).expect("write");
    let e = args(&percent_trace, &policy).problem().expect_err("unsaid");
    assert!(e.contains("--trace-scale percent") && e.contains("allocatable_utilization, a fraction (0-1)"), "{e}");
    let said =
        TuneArgs { trace_scale: Some(ebbflow::sim::trace::TraceScale::Percent), ..args(&percent_trace, &policy) };
    let problem = said.problem().expect("declared percent");
    let peak = problem.cases[0].scenario.trace.points.iter().map(|p| p.1).fold(0.0, f64::max);
    assert!((peak - BURST).abs() < 1e-9, "read as fractions: {peak}");
    std::fs::write(&percent_trace, format!("# unit: percent\n{percent}")).expect("write");
    let problem = args(&percent_trace, &policy).problem().expect("the trace says percent");
    assert_eq!(problem.cases[0].scenario.trace.read_as(), Some(ebbflow::sim::trace::TraceScale::Percent));
}

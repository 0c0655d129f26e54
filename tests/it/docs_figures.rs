//! The figures in README.md and docs/*.md that the code produces are generated here and held
//! equal to what the docs say, so they cannot go stale; and every relative link in them resolves.
//!
//! A generated figure sits between two marker lines:
//!
//! ```text
//! <!-- generated:results-table -->
//! (generated text)
//! <!-- /generated -->
//! ```
//!
//! The test fails when the text between the markers is not what the code produces now. After a
//! change that moves the figures on purpose, rewrite the blocks with
//! `EBBFLOW_UPDATE_DOCS=1 cargo test --test it docs_figures::` and review the diff.
//!
//! The results of the bundled scenarios are read from `simulations/expected/*.json`, which
//! `tests/it/simulations.rs` holds equal to a live replay of every bundled scenario: this file only
//! reads and formats them (a debug-build replay of the whole set takes minutes). The output of
//! `ebbflow simulate` with no arguments is the built binary's, run here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ebbflow::sim::report::{ForecastScore, Summary};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The command that rewrites the blocks, as the failure messages give it.
const UPDATE: &str = "EBBFLOW_UPDATE_DOCS=1 cargo test --test it docs_figures::";

/// Blocks the docs must carry: without them the figures would be back to hand-copied ones.
const REQUIRED: &[(&str, &str)] = &[
    ("README.md", "simulate-default"),
    ("README.md", "results-table"),
    ("docs/simulate.md", "results-table"),
    ("docs/simulate.md", "results-summary"),
    ("docs/simulate.md", "results-peers"),
    ("docs/simulate.md", "elasticity-table"),
    ("docs/simulate.md", "elasticity-summary"),
    ("docs/simulate.md", "forecast-table"),
    ("docs/known-events.md", "schedule-table"),
];

/// Every block name a generator exists for.
const NAMES: &[&str] = &[
    "simulate-default",
    "results-table",
    "results-summary",
    "results-peers",
    "elasticity-table",
    "elasticity-summary",
    "forecast-table",
    "schedule-table",
];

/// README.md and every docs/*.md, as paths relative to the repository root, sorted.
fn doc_files() -> Vec<String> {
    let mut files = vec!["README.md".to_string()];
    let mut docs: Vec<String> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

// === the bundled results ===

/// One bundled scenario's reviewed results: the summaries of `ebbflow simulate --scenario
/// simulations/scenarios/NAME.yaml --json`, the policy first, then the baselines.
struct Bundled {
    name: String,
    runs: Vec<Summary>,
}

impl Bundled {
    fn policy(&self) -> &Summary {
        &self.runs[0]
    }

    fn alg(&self, algorithm: &str) -> &Summary {
        self.runs
            .iter()
            .find(|s| s.algorithm == algorithm)
            .unwrap_or_else(|| panic!("simulations/expected/{}.json has no {algorithm} row", self.name))
    }

    /// Node-minutes relative to oracle-30, the clairvoyant plan that holds each size 30 minutes.
    fn cost(&self, s: &Summary) -> f64 {
        s.node_minutes / self.alg("oracle-30").node_minutes
    }
}

fn actions(s: &Summary) -> u32 {
    s.scale_outs + s.scale_ins
}

/// Every scenario in simulations/scenarios/ with its reviewed results, sorted by name. The
/// embedded default (`simulations/expected/default.json`) is the same replay as
/// `ec2-step-to-saturation` and is left out.
fn bundled() -> Vec<Bundled> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("simulations/scenarios"))
        .expect("simulations/scenarios/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .map(|p| p.file_stem().expect("stem").to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no bundled scenarios");
    names
        .into_iter()
        .map(|name| {
            let path = root().join("simulations/expected").join(format!("{name}.json"));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!("{}: {e}; create it with UPDATE_GOLDEN=1 cargo test --test it simulations::", path.display())
            });
            let runs: Vec<Summary> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(runs.len() > 1, "{}: no results", path.display());
            Bundled { name, runs }
        })
        .collect()
}

fn line(out: &mut String, text: impl AsRef<str>) {
    out.push_str(text.as_ref());
    out.push('\n');
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// `a / b` with one decimal, or a note when `b` is 0.
fn times(a: f64, b: f64) -> String {
    if b > 0.0 { format!("{:.1}", a / b) } else { "(no ratio: 0)".to_string() }
}

/// How `a` compares with `b`, in percent: "72 % fewer" or "5 % more".
fn fewer_or_more(a: f64, b: f64) -> String {
    if b <= 0.0 || a == b {
        return if a == b { "as many".to_string() } else { "more".to_string() };
    }
    let pct = 100.0 * (b - a) / b;
    if pct >= 0.0 { format!("{pct:.0} % fewer") } else { format!("{:.0} % more", -pct) }
}

fn compared_with(a: f64, b: f64) -> &'static str {
    if a > b {
        "above"
    } else if a < b {
        "below"
    } else {
        "equal to"
    }
}

fn join(values: &[f64], decimals: usize) -> String {
    values.iter().map(|v| format!("{v:.decimals$}")).collect::<Vec<_>>().join(" / ")
}

/// The four algorithms of the results table: the policy and its real peers (not the oracles,
/// not static-peak).
fn four(b: &Bundled) -> [&Summary; 4] {
    [b.policy(), b.alg("hpa"), b.alg("linear"), b.alg("stepwise")]
}

/// The results table: cost against oracle-30, minutes over the limit and scale actions, one row
/// per bundled scenario and one for the whole set.
fn results_table(set: &[Bundled]) -> String {
    let mut out = String::new();
    line(
        &mut out,
        "| scenario | cost / oracle-30 (policy / HPA / linear / stepwise) | minutes over limit (policy / HPA / linear / stepwise) | scale actions (policy / HPA) |",
    );
    line(&mut out, "|---|---|---|---|");
    let (mut nodes, mut over, mut oracle30, mut policy_actions, mut hpa_actions) = ([0.0; 4], [0.0; 4], 0.0, 0, 0);
    for b in set {
        let algs = four(b);
        let costs = algs.map(|s| b.cost(s));
        let overs = algs.map(|s| s.minutes_over_limit);
        // The policy's figure in bold where no peer has fewer minutes over the limit.
        let first = if overs[1..].iter().all(|&o| overs[0] <= o) {
            format!("**{:.0}**", overs[0])
        } else {
            format!("{:.0}", overs[0])
        };
        line(
            &mut out,
            format!(
                "| {} | {} | {first} / {} | {} / {} |",
                b.name,
                join(&costs, 3),
                join(&overs[1..], 0),
                actions(algs[0]),
                actions(algs[1])
            ),
        );
        oracle30 += b.alg("oracle-30").node_minutes;
        for (sum, s) in nodes.iter_mut().zip(algs) {
            *sum += s.node_minutes;
        }
        for (sum, o) in over.iter_mut().zip(overs) {
            *sum += o;
        }
        policy_actions += actions(algs[0]);
        hpa_actions += actions(algs[1]);
    }
    let summed = nodes.map(|n| n / oracle30);
    let means: Vec<f64> = (0..4).map(|i| mean(set.iter().map(|b| b.cost(four(b)[i])))).collect();
    line(
        &mut out,
        format!(
            "| **all {}** (node-minutes summed; mean of ratios in brackets) | **{}** ({}) | **{}** | **{policy_actions} / {hpa_actions}** |",
            set.len(),
            join(&summed, 3),
            join(&means, 3),
            join(&over, 0)
        ),
    );
    out
}

/// A figure of algorithm `alg` of [`four`], summed over the set.
fn total(set: &[Bundled], alg: usize, figure: impl Fn(&Summary) -> f64) -> f64 {
    set.iter().map(|b| figure(four(b)[alg])).sum()
}

/// The results table's last row in words.
fn results_summary(set: &[Bundled]) -> String {
    let oracle30: f64 = set.iter().map(|b| b.alg("oracle-30").node_minutes).sum();
    let over = |alg| total(set, alg, |s| s.minutes_over_limit);
    let acts = |alg| total(set, alg, |s| f64::from(actions(s)));
    let cost = |alg| total(set, alg, |s| s.node_minutes) / oracle30;
    let mean_cost = |alg: usize| mean(set.iter().map(|b| b.cost(four(b)[alg])));
    format!(
        "Over the {n} scenarios the policy spends {:.0} minutes over the limit against the HPA's {:.0} ({}), with \
         {:.0} scale actions against {:.0} ({}), at {:.2} times `oracle-30`'s node-minutes ({:.2} as the mean of \
         the per-scenario ratios); the HPA costs {:.2} ({:.2}), with {} times the policy's minutes over the \
         limit. The Spanner autoscaler's methods cost {:.2} (`linear`) and {:.2} (`stepwise`) times \
         `oracle-30` over the set, with {} and {} times the policy's minutes over the limit.\n",
        over(0),
        over(1),
        fewer_or_more(over(0), over(1)),
        acts(0),
        acts(1),
        fewer_or_more(acts(0), acts(1)),
        cost(0),
        mean_cost(0),
        cost(1),
        mean_cost(1),
        times(over(1), over(0)),
        cost(2),
        cost(3),
        times(over(2), over(0)),
        times(over(3), over(0)),
        n = set.len(),
    )
}

/// Where a peer has fewer minutes over the limit than the policy, with both costs.
fn results_peers(set: &[Bundled]) -> String {
    let mut out = String::new();
    for b in set {
        let algs = four(b);
        let policy = algs[0];
        let ahead: Vec<String> = algs[1..]
            .iter()
            .filter(|s| s.minutes_over_limit < policy.minutes_over_limit)
            .map(|s| {
                format!(
                    "`{}` {:.0} against the policy's {:.0}, at {:.3} against {:.3} times `oracle-30`",
                    s.algorithm,
                    s.minutes_over_limit,
                    policy.minutes_over_limit,
                    b.cost(s),
                    b.cost(policy)
                )
            })
            .collect();
        if !ahead.is_empty() {
            line(&mut out, format!("- `{}`: {}", b.name, ahead.join("; ")));
        }
    }
    if out.is_empty() {
        line(&mut out, "- none: on every scenario the policy has the fewest minutes over the limit (ties included)");
    }
    out
}

/// The figures of one row of the elasticity table, in column order: cost (policy, HPA), θU
/// (policy, HPA), θO (policy, HPA, oracle-30), τU (policy, HPA), τO, υ and jitter (policy, HPA,
/// oracle-30).
fn elasticity_row(b: &Bundled) -> [f64; 18] {
    let (p, h, o) = (b.policy(), b.alg("hpa"), b.alg("oracle-30"));
    let (ep, eh, eo) = (&p.elasticity, &h.elasticity, &o.elasticity);
    [
        b.cost(p),
        b.cost(h),
        ep.under_accuracy,
        eh.under_accuracy,
        ep.over_accuracy,
        eh.over_accuracy,
        eo.over_accuracy,
        ep.under_timeshare,
        eh.under_timeshare,
        ep.over_timeshare,
        eh.over_timeshare,
        eo.over_timeshare,
        ep.instability,
        eh.instability,
        eo.instability,
        ep.jitter_per_hour,
        eh.jitter_per_hour,
        eo.jitter_per_hour,
    ]
}

/// The columns of [`elasticity_row`]: how many figures each holds, and their decimals.
const ELASTICITY_COLUMNS: [(usize, usize); 7] = [(2, 2), (2, 1), (3, 1), (2, 1), (3, 1), (3, 1), (3, 2)];

fn elasticity_cells(row: &[f64; 18]) -> String {
    let mut at = 0;
    let cells: Vec<String> = ELASTICITY_COLUMNS
        .iter()
        .map(|&(n, decimals)| {
            let cell = join(&row[at..at + n], decimals);
            at += n;
            cell
        })
        .collect();
    cells.join(" | ")
}

fn elasticity_means(set: &[Bundled]) -> [f64; 18] {
    let rows: Vec<[f64; 18]> = set.iter().map(elasticity_row).collect();
    std::array::from_fn(|i| mean(rows.iter().map(|r| r[i])))
}

/// The SPEC RG elasticity scores of the policy, the HPA and oracle-30 on every bundled scenario.
fn elasticity_table(set: &[Bundled]) -> String {
    let mut out = String::new();
    line(
        &mut out,
        "| scenario | node-min / oracle-30 (policy / HPA) | θU % (policy / HPA) | θO % (policy / HPA / oracle-30) | τU % (policy / HPA) | τO % (policy / HPA / oracle-30) | υ % (policy / HPA / oracle-30) | jitter/h (policy / HPA / oracle-30) |",
    );
    line(&mut out, "|---|---|---|---|---|---|---|---|");
    for b in set {
        line(&mut out, format!("| {} | {} |", b.name, elasticity_cells(&elasticity_row(b))));
    }
    let means = elasticity_means(set);
    let bold: Vec<String> = elasticity_cells(&means).split(" | ").map(|c| format!("**{c}**")).collect();
    line(&mut out, format!("| **all {} (means)** | {} |", set.len(), bold.join(" | ")));
    out
}

/// The elasticity table's last row in words, and where the policy costs less than oracle-30.
fn elasticity_summary(set: &[Bundled]) -> String {
    let m = elasticity_means(set);
    let cheaper: Vec<String> = set
        .iter()
        .filter(|b| b.cost(b.policy()) < 1.0)
        .map(|b| format!("`{}` (θU {:.1} %, τU {:.1} %)", b.name, elasticity_row(b)[2], elasticity_row(b)[7]))
        .collect();
    let cheaper = if cheaper.is_empty() { "no scenario".to_string() } else { cheaper.join(", ") };
    format!(
        "As means over the {n} scenarios, the policy costs {:.2} times `oracle-30` and the HPA {:.2}. The policy \
         is short of capacity by θU {:.1} % against the HPA's {:.1} %, and under-provisioned τU {:.1} % of the time \
         against the HPA's {:.1} %. Its excess θO, {:.1} %, is {} the HPA's {:.1} % and {} `oracle-30`'s {:.1} %; it \
         is over-provisioned τO {:.1} % of the time ({} the HPA's {:.1} % and {} `oracle-30`'s {:.1} %). Its \
         node-minutes are under `oracle-30`'s on {cheaper}.\n",
        m[0],
        m[1],
        m[2],
        m[3],
        m[7],
        m[8],
        m[4],
        compared_with(m[4], m[5]),
        m[5],
        compared_with(m[4], m[6]),
        m[6],
        m[9],
        compared_with(m[9], m[10]),
        m[10],
        compared_with(m[9], m[11]),
        m[11],
        n = set.len(),
    )
}

/// One scenario's row of a forecast score table.
fn score_row(name: &str, f: &ForecastScore) -> String {
    format!(
        "| {name} | {:.0}m | {} | {:.2} | {:.2} | {:+.2} | {} | {} |",
        f.lead_minutes, f.forecasts, f.mae_nodes, f.naive_mae_nodes, f.bias_nodes, f.ahead_scale_outs, f.ahead_needed
    )
}

/// The policy's forecast score on every bundled scenario where it forecast a rise.
fn forecast_table(set: &[Bundled]) -> String {
    let mut out = String::new();
    line(&mut out, "| scenario | lead | forecasts | MAE nodes | naive MAE nodes | bias nodes | ahead outs | needed |");
    line(&mut out, "|---|---|---|---|---|---|---|---|");
    let (mut scored, mut better, mut none) = (0, 0, Vec::new());
    for b in set {
        match b.policy().forecast.filter(|f| f.forecasts > 0) {
            Some(f) => {
                scored += 1;
                better += usize::from(f.mae_nodes < f.naive_mae_nodes);
                line(&mut out, score_row(&b.name, &f));
            }
            None => none.push(format!("`{}`", b.name)),
        }
    }
    out.push('\n');
    let none = if none.is_empty() { String::new() } else { format!(" No rise was forecast on {}.", none.join(", ")) };
    line(
        &mut out,
        format!(
            "The forecast beats the naive one (a lower MAE) on {better} of the {scored} scenarios where it forecast a rise.{none}"
        ),
    );
    // The line through a steady climb, scored the same way with the warm-up as its lead.
    out.push('\n');
    line(&mut out, "The line through a steady climb (`ScaleOutOnRamp`), scored the same way, its lead the warm-up:");
    out.push('\n');
    line(&mut out, "| scenario | lead | lines | MAE nodes | naive MAE nodes | bias nodes | ramp outs | needed |");
    line(&mut out, "|---|---|---|---|---|---|---|---|");
    let (mut scored, mut better) = (0, 0);
    for b in set {
        let Some(f) = b.policy().ramp else { continue };
        scored += 1;
        better += usize::from(f.mae_nodes < f.naive_mae_nodes);
        line(&mut out, score_row(&b.name, &f));
    }
    out.push('\n');
    line(
        &mut out,
        format!(
            "The line beats the naive forecast (a lower MAE) on {better} of the {scored} scenarios where it was believed."
        ),
    );
    out
}

/// `taxi-daily-cycle` against `taxi-morning-rush`: the same trace and model, with and without
/// the weekday morning schedule.
fn schedule_table(set: &[Bundled]) -> String {
    let find = |name: &str| {
        set.iter().find(|b| b.name == name).unwrap_or_else(|| panic!("no bundled scenario {name}")).policy()
    };
    let (plain, rush) = (find("taxi-daily-cycle"), find("taxi-morning-rush"));
    let mut out = String::new();
    line(&mut out, "| scenario | node-minutes | minutes over target | minutes over limit | overloads |");
    line(&mut out, "|---|---|---|---|---|");
    for (name, s, compare) in [("taxi-daily-cycle", plain, false), ("taxi-morning-rush", rush, true)] {
        let vs = if compare {
            format!(" ({:+.1} %)", 100.0 * (s.node_minutes / plain.node_minutes - 1.0))
        } else {
            String::new()
        };
        line(
            &mut out,
            format!(
                "| {name} | {:.0}{vs} | {:.0} | {:.0} | {} |",
                s.node_minutes, s.minutes_over_target, s.minutes_over_limit, s.overloads
            ),
        );
    }
    out
}

/// What `ebbflow simulate` with no arguments prints, from the built binary.
fn simulate_default() -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ebbflow"))
        .arg("simulate")
        .current_dir(root())
        .output()
        .expect("run ebbflow simulate");
    assert!(out.status.success(), "ebbflow simulate failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("utf-8 output");
    format!("```text\n$ cargo run --release -- simulate\n{}\n```\n", text.trim_end())
}

/// Each block's text, made once.
struct Generator {
    set: Vec<Bundled>,
    made: BTreeMap<String, String>,
}

impl Generator {
    fn get(&mut self, name: &str) -> Result<String, String> {
        if let Some(text) = self.made.get(name) {
            return Ok(text.clone());
        }
        let set = &self.set;
        let text = match name {
            "simulate-default" => simulate_default(),
            "results-table" => results_table(set),
            "results-summary" => results_summary(set),
            "results-peers" => results_peers(set),
            "elasticity-table" => elasticity_table(set),
            "elasticity-summary" => elasticity_summary(set),
            "forecast-table" => forecast_table(set),
            "schedule-table" => schedule_table(set),
            other => {
                return Err(format!(
                    "no figure is generated for <!-- generated:{other} -->; the names are {}",
                    NAMES.join(", ")
                ));
            }
        };
        self.made.insert(name.to_string(), text.clone());
        Ok(text)
    }
}

// === the marked blocks ===

/// A generated block: its name, and the byte range of the text between its marker lines.
#[derive(Debug, PartialEq)]
struct Block {
    name: String,
    body: std::ops::Range<usize>,
}

const START: &str = "<!-- generated:";
const END: &str = "<!-- /generated -->";

/// The generated blocks of a document, in order; an unclosed, nested or stray marker is an error
/// naming the line.
fn blocks(text: &str, file: &str) -> Result<Vec<Block>, String> {
    let mut out = Vec::new();
    let mut open: Option<(String, usize, usize)> = None;
    let mut at = 0;
    for (n, l) in text.split_inclusive('\n').enumerate() {
        let start = at;
        at += l.len();
        let t = l.trim();
        if let Some(rest) = t.strip_prefix(START) {
            let name = rest.strip_suffix("-->").map(str::trim).filter(|s| !s.is_empty()).ok_or_else(|| {
                format!("{file}:{}: write the marker as <!-- generated:NAME --> on its own line", n + 1)
            })?;
            if let Some((outer, from, _)) = &open {
                return Err(format!("{file}:{}: block {name} starts inside block {outer} (line {from})", n + 1));
            }
            open = Some((name.to_string(), n + 1, at));
        } else if t == END {
            let (name, _, from) =
                open.take().ok_or_else(|| format!("{file}:{}: {END} without a block to end", n + 1))?;
            out.push(Block { name, body: from..start });
        }
    }
    match open {
        Some((name, from, _)) => Err(format!("{file}:{from}: block {name} has no {END} line")),
        None => Ok(out),
    }
}

/// What a block holds: the generated text between two empty lines, so a table or a code fence
/// never runs into a marker.
fn body_of(generated: &str) -> String {
    format!("\n{}\n\n", generated.trim_end_matches('\n'))
}

/// The lines where `have` and `want` differ (at most 8), as `-` and `+` lines.
fn difference(have: &str, want: &str) -> String {
    let (h, w): (Vec<&str>, Vec<&str>) = (have.lines().collect(), want.lines().collect());
    let mut out = Vec::new();
    for i in 0..h.len().max(w.len()) {
        let (a, b) = (h.get(i).copied(), w.get(i).copied());
        if a != b {
            out.push(format!("    line {} of the block:", i + 1));
            out.push(format!("    - {}", a.unwrap_or("(no line)")));
            out.push(format!("    + {}", b.unwrap_or("(no line)")));
        }
        if out.len() >= 24 {
            out.push("    …".to_string());
            break;
        }
    }
    if out.is_empty() {
        out.push("    (the same lines; the blank lines around them differ)".to_string());
    }
    out.join("\n")
}

/// A document with every block rewritten, the names of its blocks, and a message per block that
/// was not what the code produces.
struct Rewritten {
    text: String,
    names: Vec<String>,
    stale: Vec<String>,
}

fn rewrite(
    text: &str,
    file: &str,
    mut generate: impl FnMut(&str) -> Result<String, String>,
) -> Result<Rewritten, String> {
    let mut out = Rewritten { text: String::with_capacity(text.len()), names: Vec::new(), stale: Vec::new() };
    let mut last = 0;
    for b in blocks(text, file)? {
        let want = body_of(&generate(b.name.as_str()).map_err(|e| format!("{file}: {e}"))?);
        let have = &text[b.body.clone()];
        if have != want {
            out.stale.push(format!("{file}, block {}:\n{}", b.name, difference(have, &want)));
        }
        out.text.push_str(&text[last..b.body.start]);
        out.text.push_str(&want);
        last = b.body.end;
        out.names.push(b.name);
    }
    out.text.push_str(&text[last..]);
    Ok(out)
}

#[test]
fn generated_figures_in_the_docs_are_what_the_code_produces() {
    let update = std::env::var("EBBFLOW_UPDATE_DOCS").is_ok_and(|v| v == "1");
    let mut generator = Generator { set: bundled(), made: BTreeMap::new() };
    let mut seen = BTreeSet::new();
    let mut stale = Vec::new();
    for file in doc_files() {
        let path = root().join(&file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        let done = rewrite(&text, &file, |name| generator.get(name)).unwrap_or_else(|e| panic!("{e}"));
        for name in &done.names {
            seen.insert((file.clone(), name.clone()));
        }
        if update && done.text != text {
            std::fs::write(&path, &done.text).unwrap_or_else(|e| panic!("{file}: cannot write: {e}"));
        }
        stale.extend(done.stale);
    }
    let missing: Vec<String> = REQUIRED
        .iter()
        .filter(|(file, name)| !seen.contains(&(file.to_string(), name.to_string())))
        .map(|(file, name)| format!("{file} has no <!-- generated:{name} --> … <!-- /generated --> block"))
        .collect();
    assert!(
        missing.is_empty(),
        "{}\nPut the markers back where the figures belong, then run `{UPDATE}`.",
        missing.join("\n")
    );
    assert!(
        update || stale.is_empty(),
        "figures in the docs differ from what the code produces:\n{}\n\nRun `{UPDATE}` to rewrite them, and review the diff.",
        stale.join("\n")
    );
}

/// The rewrite replaces the text between the markers and nothing else, reports a stale block
/// with its lines, leaves a current document unchanged, and refuses broken markers.
#[test]
fn the_rewrite_replaces_only_the_marked_blocks() {
    let doc =
        "# Title\n\nSome prose, 1,234 nodes.\n\n<!-- generated:t -->\nold figure\n<!-- /generated -->\n\nAfter.\n";
    let generate = |name: &str| match name {
        "t" => Ok("| a |\n|---|\n| 42 |\n".to_string()),
        other => Err(format!("unknown {other}")),
    };
    let done = rewrite(doc, "x.md", generate).expect("rewrite");
    assert_eq!(
        done.text,
        "# Title\n\nSome prose, 1,234 nodes.\n\n<!-- generated:t -->\n\n| a |\n|---|\n| 42 |\n\n<!-- /generated -->\n\nAfter.\n"
    );
    assert_eq!(done.names, ["t"]);
    assert_eq!(done.stale.len(), 1);
    assert!(done.stale[0].contains("x.md, block t") && done.stale[0].contains("- old figure"), "{}", done.stale[0]);

    let again = rewrite(&done.text, "x.md", generate).expect("rewrite");
    assert_eq!(again.text, done.text);
    assert!(again.stale.is_empty(), "{:?}", again.stale);

    let e = rewrite("<!-- generated:nope -->\n<!-- /generated -->\n", "x.md", generate).err();
    assert!(e.is_some_and(|e| e.contains("unknown nope")));
    let e = blocks("a\n<!-- generated:t -->\nb\n", "x.md").expect_err("unclosed");
    assert_eq!(e, "x.md:2: block t has no <!-- /generated --> line");
    let e = blocks("<!-- generated:t -->\n<!-- generated:u -->\n", "x.md").expect_err("nested");
    assert!(e.starts_with("x.md:2: block u starts inside block t"), "{e}");
    let e = blocks("<!-- /generated -->\n", "x.md").expect_err("stray");
    assert!(e.starts_with("x.md:1:"), "{e}");
}

/// The generated tables are the same from one run to the next and carry one row per bundled
/// scenario plus the whole set.
#[test]
fn the_results_table_has_a_row_per_bundled_scenario() {
    let set = bundled();
    let table = results_table(&set);
    assert_eq!(table, results_table(&bundled()));
    assert_eq!(table.lines().count(), 2 + set.len() + 1, "{table}");
    for b in &set {
        assert!(table.contains(&format!("| {} | ", b.name)), "{} has no row:\n{table}", b.name);
    }
    assert!(!set.iter().any(|b| b.name == "default"), "the embedded default repeats ec2-step-to-saturation");
    let elasticity = elasticity_table(&set);
    assert_eq!(elasticity.lines().count(), 2 + set.len() + 1, "{elasticity}");
}

// === links ===

/// GitHub's anchor for a heading: lowercase; letters, digits, spaces, `-` and `_` kept, the rest
/// dropped; spaces become `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Lines of a Markdown document outside fenced code blocks, with their numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (n, l) in text.lines().enumerate() {
        if l.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push((n + 1, l));
        }
    }
    out
}

/// The anchors of a document's headings, with GitHub's `-1`, `-2` for repeats.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for (_, l) in prose_lines(text) {
        let hashes = l.chars().take_while(|c| *c == '#').count();
        if hashes == 0 || hashes > 6 || !l[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(&l[hashes..]);
        let n = seen.entry(base.clone()).or_insert(0);
        out.insert(if *n == 0 { base } else { format!("{base}-{n}") });
        *n += 1;
    }
    out
}

/// The targets of the inline links `[text](target)` in a document's prose, with their lines.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, l) in prose_lines(text) {
        let mut rest = l;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(close) = after.find(')') else { break };
            let target =
                after[..close].split_whitespace().next().unwrap_or("").trim_start_matches('<').trim_end_matches('>');
            out.push((n, target.to_string()));
            rest = &after[close..];
        }
    }
    out
}

/// Every relative link in README.md and docs/*.md names a file or folder that exists, and every
/// `#anchor` a heading of the document it points at (docs moved out of the README keep their
/// links working).
#[test]
fn every_relative_link_in_the_docs_resolves() {
    let mut broken = Vec::new();
    for file in doc_files() {
        let text = std::fs::read_to_string(root().join(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let dir = Path::new(&file).parent().unwrap_or(Path::new("")).to_path_buf();
        for (n, target) in links(&text) {
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (target.as_str(), None),
            };
            let linked = if path.is_empty() { PathBuf::from(&file) } else { dir.join(path) };
            let on_disk = root().join(&linked);
            if !on_disk.exists() {
                broken.push(format!("{file}:{n}: {target}: no such file or folder"));
                continue;
            }
            let Some(anchor) = anchor else { continue };
            if on_disk.extension().is_some_and(|x| x == "md") {
                let linked_text = std::fs::read_to_string(&on_disk).unwrap_or_default();
                if !anchors(&linked_text).contains(anchor) {
                    broken.push(format!("{file}:{n}: {target}: {} has no heading #{anchor}", linked.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The anchors are GitHub's: punctuation and backticks dropped, repeats numbered.
#[test]
fn anchors_follow_github() {
    let doc = "# ebbflow\n## `ebbflow run`: the controller\n```sh\n# not a heading\n```\n## Set up\n## Set up\n### θU, τO and υ\n";
    let got: Vec<String> = anchors(doc).into_iter().collect();
    assert_eq!(got, ["ebbflow", "ebbflow-run-the-controller", "set-up", "set-up-1", "θu-τo-and-υ"]);
    assert_eq!(
        links("see [a](docs/x.md#y) and [b](#z \"t\")\n```\n[c](nope)\n```\n"),
        [(1, "docs/x.md#y".to_string()), (1, "#z".to_string())]
    );
}

//! The `simulate --html` report in a real browser: `ebbflow simulate --html` (the built binary)
//! on the 62-day replay, the page opened in headless Chromium with a one-day range and a week in
//! its URL (what the day/week buttons set), and assertions on the chart the page's script drew.
//!
//! Needs the Debian `chromium` package; without /usr/bin/chromium the test fails when
//! EBBFLOW_REQUIRE_BROWSER is set (as `.ci/run` sets it), and otherwise prints a SKIP banner to
//! the real stderr and checks nothing. The page is a local file: nothing is fetched. Screenshots
//! are left in the target directory to look at.

use crate::browser_support;

use std::path::PathBuf;
use std::process::Command;

use ebbflow::sim::cli::SimulateArgs;

/// Virtual time the page's script gets before the DOM is read.
const BUDGET_MS: u32 = 5000;
const DAY: i64 = 86_400_000;
const SCENARIO: &str = "simulations/scenarios/asg-misconfiguration-62d.yaml";

/// An attribute of the first element whose opening tag contains `marker`.
fn attr(dom: &str, marker: &str, name: &str) -> String {
    let at = dom.find(marker).unwrap_or_else(|| panic!("no {marker} in the page"));
    let tag_start = if marker.starts_with('<') { at } else { dom[..at].rfind('<').expect("tag") };
    let tag = &dom[tag_start..tag_start + dom[tag_start..].find('>').expect("tag end")];
    let key = format!(" {name}=\"");
    let v = tag.find(&key).unwrap_or_else(|| panic!("no {name} in {tag}")) + key.len();
    tag[v..v + tag[v..].find('"').expect("quote")].to_string()
}

fn num(dom: &str, marker: &str, name: &str) -> f64 {
    let v = attr(dom, marker, name);
    v.parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
}

/// What the chart drew: its x-range and, for the observed CPU, how many points and the highest.
#[derive(Debug)]
struct Drawn {
    from: i64,
    to: i64,
    points: f64,
    max: f64,
}

fn drawn(dom: &str) -> Drawn {
    let svg = "id=\"zoom-chart\"";
    let observed = "data-series=\"observed\"";
    Drawn {
        from: num(dom, svg, "data-from") as i64,
        to: num(dom, svg, "data-to") as i64,
        points: num(dom, observed, "data-points"),
        max: num(dom, observed, "data-max"),
    }
}

/// A value as the page's script writes a line's label (its `short`, the chart's `short_value`):
/// four significant digits, trailing zeros dropped.
fn short(v: f64) -> String {
    let digits = if v == 0.0 || !v.is_finite() { 0 } else { (3 - v.abs().log10().floor() as i32).clamp(0, 6) as usize };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s };
    if s == "-0" { "0".to_owned() } else { s }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-5 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn report_zooms_to_a_day_and_keeps_the_peaks() {
    if !browser_support::available("report_zooms_to_a_day_and_keeps_the_peaks") {
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("report-browser-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let report = dir.join("report.html");
    let scenario = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(SCENARIO);
    let out = Command::new(env!("CARGO_BIN_EXE_ebbflow"))
        .args(["simulate", "--scenario"])
        .arg(&scenario)
        .arg("--html")
        .arg(&report)
        .output()
        .expect("run ebbflow simulate");
    assert!(out.status.success(), "simulate failed: {}", String::from_utf8_lossy(&out.stderr));

    // The same replay in-process, for the samples the chart should show.
    let sc = SimulateArgs { scenario: Some(scenario), ..Default::default() }.scenario().expect("scenario");
    let runs = ebbflow::sim::compare(&sc);
    let steps: Vec<(i64, f64)> =
        runs[0].steps.iter().map(|s| (s.at.0, s.observed)).filter(|(_, v)| v.is_finite()).collect();
    let (start, end) = (sc.trace.span().0.0, sc.trace.span().1.0);
    let max_in =
        |a: i64, b: i64| steps.iter().filter(|(t, _)| *t >= a && *t <= b).map(|s| s.1).fold(f64::MIN, f64::max);
    let (peak_at, peak) = steps.iter().copied().fold((0, f64::MIN), |m, s| if s.1 > m.1 { s } else { m });

    let profile = dir.join("chromium-profile");
    let url = |hash: &str| format!("file://{}#{hash}", report.display());
    let open = |hash: &str| -> String {
        let out = browser_support::chromium(&profile, BUDGET_MS, &["--dump-dom"], &url(hash));
        let dom = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            dom.contains("id=\"zoom-chart\""),
            "the script drew no chart for #{hash}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The note for readers whose viewer runs no script is in the file and gone once it ran.
        assert!(!dom.contains("id=\"chart-noscript\""), "the script left the no-script note for #{hash}");
        dom
    };

    // All 62 days: the single highest sample is drawn even at 9-minute buckets in ~1100 columns.
    let all_dom = open("range=all");
    let all = drawn(&all_dom);
    assert_eq!((all.from, all.to), (start, end), "{all:?}");
    assert!(close(all.max, peak), "the peak {peak} at {peak_at} was lost at full range: {all:?}");
    assert!(
        all_dom.contains("class=\"target\"")
            && all_dom.contains(&format!(">target {}<", short(sc.policy.metrics[0].target))),
        "the CPU target is drawn and named"
    );
    // Named as the policy writes them (60 and 75 for a percent policy, 0.6 and 0.75 for a fraction).
    assert!(all_dom.contains(&format!(">limit {}<", short(sc.limit))), "the limit is drawn and named");
    assert_labels_apart(&all_dom, "all");
    // On the CPU panel's own scale the target sits well inside the plot, whatever the node
    // panel above it holds (on one shared axis it would be a line on the floor).
    let target_y = num(&all_dom, "class=\"target\"", "y1");
    let clip = &all_dom[all_dom.find("<clipPath id=\"zc1\">").expect("the cpu panel's clip")..];
    let (top, height) = (num(clip, "<rect", "y"), num(clip, "<rect", "height"));
    assert!(
        target_y > top + 10.0 && target_y < top + height - 20.0,
        "target at y={target_y}, cpu panel from {top} to {}",
        top + height
    );

    // One day around the peak: the x-range is that day, fewer points are drawn, the peak is there.
    let from = peak_at - DAY / 2;
    let day_dom = open(&format!("range=day&from={from}"));
    let day = drawn(&day_dom);
    assert_eq!((day.from, day.to), (from, from + DAY), "{day:?}");
    assert!(day.points < all.points && day.points > 100.0, "points drawn: day {day:?}, all {all:?}");
    assert!(close(day.max, peak), "the peak was lost in the day view: {day:?} vs {peak}");
    assert!(day_dom.contains("(1.0 days)"), "the range is said in words");
    assert_labels_apart(&day_dom, "the day of the peak");

    // A quiet day elsewhere: its own highest sample, not the replay's (the range really moved).
    let quiet = (start + DAY..end - 2 * DAY)
        .step_by(DAY as usize)
        .min_by(|a, b| max_in(*a, *a + DAY).total_cmp(&max_in(*b, *b + DAY)))
        .expect("a day");
    let q = drawn(&open(&format!("from={quiet}&to={}", quiet + DAY)));
    let bucket = 10 * 60_000;
    assert_eq!((q.from, q.to), (quiet, quiet + DAY));
    // The page writes values to six significant digits: within that of the samples' peak.
    let slack = |v: f64| 1e-5 * v.abs().max(1.0);
    let (hi, lo) = (max_in(quiet - bucket, quiet + DAY + bucket), max_in(quiet + bucket, quiet + DAY - bucket));
    assert!(
        q.max <= hi + slack(hi) && q.max >= lo - slack(lo),
        "the quiet day shows {} (its samples peak at {})",
        q.max,
        max_in(quiet, quiet + DAY)
    );
    assert!(q.max < peak, "{q:?}");
    // The same day written as the from/to fields show it (UTC without a zone) is read as UTC,
    // though Chromium runs in a zone eight hours behind.
    let fields = |ms: i64| ebbflow::core::Ts(ms).to_rfc3339()[..16].replace('T', "%20");
    let typed = drawn(&open(&format!("from={}&to={}", fields(quiet), fields(quiet + DAY))));
    assert_eq!((typed.from, typed.to), (quiet, quiet + DAY), "UTC fields read as another zone: {typed:?}");

    // A week: in between.
    let week = drawn(&open(&format!("range=week&from={from}")));
    assert_eq!(week.to - week.from, 7 * DAY);
    assert!(week.points > day.points, "{week:?} vs {day:?}");

    for (name, hash) in
        [("report-all.png", "range=all".to_string()), ("report-day.png", format!("range=day&from={from}"))]
    {
        let shot = dir.join(name);
        let out = browser_support::chromium(
            &profile,
            BUDGET_MS,
            &[&format!("--screenshot={}", shot.display()), "--window-size=1280,1700"],
            &url(&hash),
        );
        assert!(shot.exists(), "no screenshot: {}", String::from_utf8_lossy(&out.stderr));
        eprintln!("screenshot: {}", shot.display());
    }
    let size = std::fs::metadata(&report).expect("report").len();
    eprintln!("report: {} KiB for {} evaluations", size / 1024, steps.len());
}

/// The labels of the target and limit lines, as the page's script placed them: their boxes (11
/// px monospace, right-aligned) must not overlap.
fn assert_labels_apart(dom: &str, view: &str) {
    let label = |class: &str| -> (f64, f64, String) {
        let marker = format!("class=\"{class}\"");
        let at = dom.find(&marker).unwrap_or_else(|| panic!("{view}: no {class}"));
        let text = &dom[dom[at..].find('>').expect("tag end") + at + 1..];
        let text = text[..text.find('<').expect("text end")].to_string();
        (num(dom, &marker, "x"), num(dom, &marker, "y"), text)
    };
    let (tx, ty, target) = label("target-label");
    let (lx, ly, limit) = label("limit-label");
    let width = |t: &str| t.chars().count() as f64 * 6.6;
    let apart_v = (ty - ly).abs() >= 11.0;
    let apart_h = tx - width(&target) >= lx || lx - width(&limit) >= tx;
    assert!(apart_v || apart_h, "{view}: {target:?} at ({tx}, {ty}) overprints {limit:?} at ({lx}, {ly})");
}

/// Measures the page's tables after layout and writes what it found on <body data-layout>, so
/// --dump-dom carries it out: the window's width, the page's, and per table its width against
/// its container's.
const MEASURE: &str = r#"<script>
(function () {
  var tables = Array.prototype.map.call(document.querySelectorAll('table'), function (t) {
    return Math.ceil(t.getBoundingClientRect().width) + '/' + Math.floor(t.parentElement.getBoundingClientRect().width);
  });
  document.body.setAttribute('data-layout', window.innerWidth + ' ' + document.documentElement.scrollWidth + ' ' + tables.join(' '));
})();
</script>"#;

/// At a 1,400-pixel window every table of the report fits its column without scrolling (the
/// elasticity table's nine long headers, unwrapped, made it wider than the page), and the page
/// has no horizontal scroll. The chart's target and limit labels stay apart at every range.
#[test]
fn report_tables_fit_a_1400_pixel_window() {
    if !browser_support::available("report_tables_fit_a_1400_pixel_window") {
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("report-tables-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let report = dir.join("report.html");
    let out = Command::new(env!("CARGO_BIN_EXE_ebbflow"))
        .args(["simulate", "--html"])
        .arg(&report)
        .output()
        .expect("run ebbflow simulate");
    assert!(out.status.success(), "simulate failed: {}", String::from_utf8_lossy(&out.stderr));
    let html = std::fs::read_to_string(&report).expect("report");
    let at = html.rfind("</body>").expect("</body>");
    let measured = dir.join("measured.html");
    std::fs::write(&measured, format!("{}{MEASURE}{}", &html[..at], &html[at..])).expect("write");

    let profile = dir.join("chromium-profile");
    let url = format!("file://{}", measured.display());
    let out = browser_support::chromium(&profile, BUDGET_MS, &["--dump-dom", "--window-size=1400,1000"], &url);
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    let layout = attr(&dom, "<body", "data-layout");
    let figures: Vec<&str> = layout.split(' ').collect();
    assert_eq!(figures[0], "1400", "the window is not 1,400 pixels wide: {layout}");
    let page: f64 = figures[1].parse().expect("page width");
    assert!(page <= 1400.0, "the page scrolls sideways: {page} px wide in a 1,400 px window ({layout})");
    let tables = &figures[2..];
    assert!(tables.len() >= 4, "summary, elasticity, decisions and actions tables: {layout}");
    for (i, t) in tables.iter().enumerate() {
        let (w, room) = t.split_once('/').expect("width/room");
        let (w, room): (f64, f64) = (w.parse().expect("width"), room.parse().expect("room"));
        assert!(w <= room + 1.0, "table {i} is {w} px wide in {room} px ({layout})");
    }
    assert_labels_apart(&dom, "the default replay");
}

//! The `simulate --html` report in a real browser: `ebbflow simulate --html` (the built binary)
//! on the 62-day replay, the page opened in headless Chromium with a one-day range and a week in
//! its URL (what the day/week buttons set), and assertions on the chart the page's script drew.
//!
//! Needs the Debian `chromium` package; without /usr/bin/chromium the test fails when
//! EBBFLOW_REQUIRE_BROWSER is set (as `.ci/run` sets it), and otherwise prints a SKIP banner to
//! the real stderr and checks nothing. The page is a local file: nothing is fetched. Screenshots
//! are left in the target directory to look at.

mod browser_support;

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
        all_dom.contains("class=\"target\"") && all_dom.contains(">target 60<"),
        "the CPU target is drawn and named"
    );
    assert!(all_dom.contains(">limit 75<"), "the limit is drawn and named");
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

    // A quiet day elsewhere: its own highest sample, not the replay's (the range really moved).
    let quiet = (start + DAY..end - 2 * DAY)
        .step_by(DAY as usize)
        .min_by(|a, b| max_in(*a, *a + DAY).total_cmp(&max_in(*b, *b + DAY)))
        .expect("a day");
    let q = drawn(&open(&format!("from={quiet}&to={}", quiet + DAY)));
    let bucket = 10 * 60_000;
    assert_eq!((q.from, q.to), (quiet, quiet + DAY));
    assert!(
        q.max <= max_in(quiet - bucket, quiet + DAY + bucket) + 1e-9
            && q.max >= max_in(quiet + bucket, quiet + DAY - bucket) - 1e-9,
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

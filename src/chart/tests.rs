//! Unit tests of the chart: well-formed, escaped, decimated SVG, ticks and shading.

use std::io;

use super::draw::{LABEL_H, label_baselines};
use super::layout::build_scene;
use super::reduce::{decimate, envelope, is_dense};
use super::scene::{Prim, Rect};
use super::ticks::{
    DAY, HOUR, MINUTE, SECOND, decimals_for, format_full, format_tick, format_value, nice_ticks, time_ticks, utc,
};
use super::*;

const APR_16_NOON: i64 = 1_776_340_800_000; // 2026-04-16 12:00 UTC

/// A small deterministic generator, so sample data needs no crate and never changes.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Three days of a daily cycle sampled every `step_ms`, with a burst on the second afternoon,
/// run through a toy fast-out/slow-in autoscaler so the chart has everything a real run has.
fn sample(step_ms: i64) -> ChartData {
    let start = APR_16_NOON - 12 * HOUR;
    let end = start + 3 * DAY;
    let target = 0.65;
    let mut rng = Lcg(7);
    let (mut demand, mut serving, mut desired) = (Vec::new(), Vec::new(), Vec::new());
    let (mut observed, mut smoothed, mut target_line) = (Vec::new(), Vec::new(), Vec::new());
    let mut markers = Vec::new();
    let (mut want, mut have) = (3.0f64, 3.0f64);
    let (mut smooth_demand, mut smooth_util) = (3.0f64, 0.6f64);
    // Five-minute exponential smoothing, whatever the sampling step.
    let alpha = 1.0 - (-(step_ms as f64) / (5 * MINUTE) as f64).exp();
    let mut pending: Option<(i64, f64)> = None;
    let (mut last_change, mut last_spike) = (start, start - DAY);
    let mut t = start;
    while t <= end {
        let day_phase = (t.rem_euclid(DAY) as f64 / DAY as f64 - 0.25) * std::f64::consts::TAU;
        let mut d = 5.0 + 3.5 * day_phase.sin() + (rng.next() - 0.5) * 0.6;
        let burst_at = start + DAY + 14 * HOUR;
        if t >= burst_at && t < burst_at + 90 * MINUTE {
            d += 7.0 * (1.0 - (t - burst_at) as f64 / (90 * MINUTE) as f64);
        }
        // Monitoring drops out for 20 minutes on the last day.
        let gap = t >= start + 2 * DAY + 3 * HOUR && t < start + 2 * DAY + 3 * HOUR + 20 * MINUTE;
        let util = (d * target / have).min(1.0);
        if !gap {
            smooth_demand += (d - smooth_demand) * alpha;
            smooth_util += (util - smooth_util) * alpha;
        }
        // The toy policy decides once a minute: spikes jump straight to the raw need, other
        // growth follows the smoothed need, and scale-in sheds a node per half hour.
        if t % MINUTE == 0 && !gap {
            let spike = d > smooth_demand * 1.5 && t - last_spike > 30 * MINUTE;
            let needed = (if spike { d } else { smooth_demand } * 1.05).ceil().max(2.0);
            if spike {
                last_spike = t;
                markers.push(Marker { at_ms: t, kind: MarkerKind::Spike, label: format!("demand {d:.1} nodes") });
            }
            if needed > want && (spike || t - last_change >= 15 * MINUTE) {
                markers.push(Marker {
                    at_ms: t,
                    kind: MarkerKind::ScaleOut,
                    label: format!("{want} -> {needed} nodes"),
                });
                want = needed;
                last_change = t;
                pending = Some((t + 12 * MINUTE, want));
            } else if needed < want && t - last_change >= 30 * MINUTE {
                markers.push(Marker {
                    at_ms: t,
                    kind: MarkerKind::ScaleIn,
                    label: format!("{want} -> {} nodes", want - 1.0),
                });
                want -= 1.0;
                last_change = t;
                pending = Some((t + MINUTE, want));
            }
        }
        if let Some((at, n)) = pending
            && t >= at
        {
            have = n;
            pending = None;
        }
        demand.push((t, if gap { f64::NAN } else { d }));
        serving.push((t, have));
        desired.push((t, want));
        observed.push((t, if gap { f64::NAN } else { util }));
        smoothed.push((t, smooth_util));
        target_line.push((t, target));
        t += step_ms;
    }
    ChartData {
        title: "bigtable/prod-events: 3-day replay".to_owned(),
        start_ms: start,
        end_ms: end,
        load: vec![Series::new("demand", Style::Line, demand)],
        sizes: vec![Series::new("serving", Style::Step, serving), Series::new("desired", Style::Dashed, desired)],
        markers,
        y_label: "nodes".to_owned(),
        metrics: vec![MetricPanel::new(
            "CPU utilization".to_owned(),
            vec![
                Series::new("observed", Style::Line, observed),
                Series::new("smoothed", Style::Line, smoothed),
                Series::new("target", Style::Dashed, target_line),
            ],
        )],
    }
}

/// Checks that `doc` is well-formed XML as far as an SVG needs: balanced, properly nested
/// tags, quoted attributes, and no raw `<` or bare `&` in text or attribute values.
fn check_xml(doc: &str) -> Result<usize, String> {
    fn check_text(s: &str) -> Result<(), String> {
        let mut rest = s;
        while let Some(i) = rest.find('&') {
            let after = &rest[i + 1..];
            let end = after.find(';').ok_or_else(|| format!("bare & in {s:?}"))?;
            let ent = &after[..end];
            let ok = matches!(ent, "amp" | "lt" | "gt" | "quot" | "apos") || (ent.starts_with('#') && ent.len() > 1);
            if !ok {
                return Err(format!("unknown entity &{ent}; in {s:?}"));
            }
            rest = &after[end + 1..];
        }
        if s.contains('<') {
            return Err(format!("raw < in {s:?}"));
        }
        Ok(())
    }
    let mut stack: Vec<&str> = Vec::new();
    let mut elements = 0;
    let mut rest = doc;
    let mut root_closed = false;
    while let Some(lt) = rest.find('<') {
        let text = &rest[..lt];
        if root_closed && !text.trim().is_empty() {
            return Err("text after the root element".into());
        }
        check_text(text)?;
        let tag_start = &rest[lt..];
        if let Some(body) = tag_start.strip_prefix("<?") {
            let end = body.find("?>").ok_or("unterminated <?")?;
            rest = &body[end + 2..];
            continue;
        }
        if let Some(body) = tag_start.strip_prefix("<!--") {
            let end = body.find("-->").ok_or("unterminated comment")?;
            rest = &body[end + 3..];
            continue;
        }
        // Find the tag's end, skipping '>' inside quoted attribute values.
        let mut quote = None;
        let mut end = None;
        for (i, c) in tag_start.char_indices().skip(1) {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, '>') => {
                    end = Some(i);
                    break;
                }
                (None, '<') => return Err("< inside a tag".into()),
                _ => {}
            }
        }
        let end = end.ok_or("unterminated tag")?;
        let inner = &tag_start[1..end];
        rest = &tag_start[end + 1..];
        if let Some(name) = inner.strip_prefix('/') {
            let open = stack.pop().ok_or_else(|| format!("unexpected </{name}>"))?;
            if open != name.trim() {
                return Err(format!("<{open}> closed by </{name}>"));
            }
            root_closed = stack.is_empty();
            continue;
        }
        if root_closed {
            return Err("second root element".into());
        }
        let self_closing = inner.ends_with('/');
        let inner = inner.trim_end_matches('/');
        let name_end = inner.find(char::is_whitespace).unwrap_or(inner.len());
        let name = &inner[..name_end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':') {
            return Err(format!("bad element name {name:?}"));
        }
        // Attributes: name="value" pairs, nothing else.
        let mut attrs = inner[name_end..].trim();
        while !attrs.is_empty() {
            let eq = attrs.find('=').ok_or_else(|| format!("attribute without value in <{name}>"))?;
            let an = attrs[..eq].trim();
            if an.is_empty() || an.contains(char::is_whitespace) {
                return Err(format!("bad attribute name {an:?} in <{name}>"));
            }
            let after = &attrs[eq + 1..];
            let q = after.chars().next().ok_or("missing attribute value")?;
            if q != '"' && q != '\'' {
                return Err(format!("unquoted attribute {an} in <{name}>"));
            }
            let close = after[1..].find(q).ok_or("unterminated attribute value")?;
            check_text(&after[1..1 + close])?;
            attrs = after[close + 2..].trim_start();
        }
        elements += 1;
        if !self_closing {
            stack.push(name);
        } else if stack.is_empty() {
            root_closed = true;
        }
    }
    if !rest.trim().is_empty() {
        return Err("trailing text".into());
    }
    if !stack.is_empty() {
        return Err(format!("unclosed elements {stack:?}"));
    }
    if !root_closed {
        return Err("no root element".into());
    }
    Ok(elements)
}

#[test]
fn xml_checker_rejects_what_it_should() {
    assert!(check_xml("<a><b/></a>").is_ok());
    assert!(check_xml("<a><b></a>").is_err());
    assert!(check_xml("<a x=1/>").is_err());
    assert!(check_xml("<a>x & y</a>").is_err());
    assert!(check_xml("<a x=\"<\"/>").is_err());
    assert!(check_xml("<a/><b/>").is_err());
}

#[test]
fn svg_is_well_formed_and_names_series_markers_and_axes() {
    let data = sample(MINUTE);
    let svg = render_svg(&data, 1200, 720);
    let elements = check_xml(&svg).unwrap();
    assert!(elements > 50, "only {elements} elements");
    assert!(svg.starts_with("<?xml"));
    assert!(svg.contains(r#"width="1200" height="720""#));
    for name in ["demand", "serving", "desired", "observed", "smoothed", "target"] {
        assert!(svg.contains(&format!(">{name}</text>")), "legend lacks {name}");
    }
    for label in ["nodes", "CPU utilization", "demand &gt; serving"] {
        assert!(svg.contains(&format!(">{label}</text>")), "no label {label}");
    }
    for class in ["marker scale-out", "marker scale-in", "marker spike"] {
        assert!(svg.contains(&format!(r#"class="{class}""#)), "no {class} marker");
    }
    // Marker tooltips carry the time and the caller's label.
    let first = &data.markers[0];
    assert!(svg.contains(&format!("at {}: {}</title>", format_full(first.at_ms), svg::escape(&first.label))));
    // Time ticks name UTC dates and hours; y ticks are plain numbers.
    assert!(svg.contains(">04-16 12:00</text>"), "no 04-16 12:00 tick");
    assert!(svg.contains(">2026-04-16 00:00 to 2026-04-19 00:00 UTC</text>"));
    let y_labels: Vec<f64> =
        svg.split(r#"text-anchor="end">"#).skip(1).filter_map(|rest| rest.split('<').next()?.parse().ok()).collect();
    assert!(y_labels.len() >= 6, "{y_labels:?}");
    assert!(y_labels.contains(&0.0) && y_labels.iter().any(|v| v.fract() != 0.0), "{y_labels:?}");
    // Demand above serving (the burst) is shaded.
    assert!(svg.contains(r#"class="shortfall""#));
}

#[test]
fn svg_escapes_text() {
    let mut data = sample(HOUR);
    data.title = "a<b & \"c\" 'd'\u{1}".to_owned();
    data.load[0].name = "<script>".to_owned();
    data.markers[0].label = "x & y".to_owned();
    let svg = render_svg(&data, 800, 500);
    check_xml(&svg).unwrap();
    assert!(svg.contains("<title>a&lt;b &amp; &quot;c&quot; &apos;d&apos;</title>"));
    assert!(svg.contains(">&lt;script&gt;</text>"));
    assert!(!svg.contains("<script>"));
    assert!(svg.contains("x &amp; y</title>"));
}

#[test]
fn a_long_title_is_cut_before_it_reaches_the_time_range() {
    let mut data = sample(HOUR);
    data.title = "x".repeat(300);
    let svg = render_svg(&data, 800, 500);
    let title_text = svg.split("font-weight=\"bold\">").nth(1).unwrap().split('<').next().unwrap();
    assert!(title_text.ends_with("...") && title_text.len() < 80, "{title_text}");
    // The document title keeps the full text.
    assert!(svg.contains(&format!("<title>{}</title>", data.title)));
}

#[test]
fn decimation_keeps_a_single_sample_spike_among_100k_points() {
    let n = 100_000i64;
    let mut rng = Lcg(1);
    let mut points: Vec<(i64, f64)> = (0..n).map(|i| (i * 1000, 5.0 + rng.next())).collect();
    points[54_321].1 = 1000.0;
    points[77_777].1 = -50.0;
    let columns = 1100;
    let runs = decimate(&points, 0, (n - 1) * 1000, columns);
    assert_eq!(runs.len(), 1);
    let kept: Vec<f64> = runs[0].iter().map(|p| p.1).collect();
    assert!(kept.len() <= 4 * (columns + 1), "kept {}", kept.len());
    assert!(kept.contains(&1000.0), "spike lost");
    assert!(kept.contains(&-50.0), "dip lost");
    // Points stay in time order, so the line does not double back.
    assert!(runs[0].windows(2).all(|w| w[0].0 <= w[1].0));
}

#[test]
fn decimation_breaks_lines_at_gaps_and_keeps_neighbours_outside_the_range() {
    let points = vec![(0, 1.0), (10, 2.0), (20, f64::NAN), (30, 3.0), (40, 4.0), (50, 5.0)];
    let runs = decimate(&points, 15, 45, 30);
    assert_eq!(runs.len(), 2);
    // The sample before the range stays, so the line enters the plot at the right height.
    assert_eq!(runs[0], vec![(-5.0, 2.0)]);
    assert_eq!(runs[1].iter().map(|p| p.1).collect::<Vec<_>>(), vec![3.0, 4.0, 5.0]);
}

#[test]
fn huge_series_give_a_small_svg_that_still_shows_the_spike() {
    let mut data = sample(3 * SECOND); // 86,401 points per series, 6 series
    let spike_at = data.load[0].points.len() / 3;
    data.load[0].points[spike_at].1 = 40.0;
    let svg = render_svg(&data, 1200, 720);
    assert!(svg.len() < 1_000_000, "svg is {} bytes", svg.len());
    check_xml(&svg).unwrap();
    let scene = build_scene(&data, 1200, 720);
    let plot = scene.clips[0];
    // 86,401 samples in about 1,100 columns: drawn as each column's range (the band) and mean.
    let top_of_demand = scene
        .prims
        .iter()
        .filter_map(|p| match p {
            Prim::Stroke { pts, tooltip: Some(t), .. } if t == "demand" => {
                Some(pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min))
            }
            Prim::Fill { pts, tooltip: Some(t), class: "envelope", .. } if t.starts_with("demand:") => {
                Some(pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min))
            }
            _ => None,
        })
        .fold(f64::INFINITY, f64::min);
    // Without the spike demand stays under 15 of the axis' 50 nodes (y below 70% of the
    // plot); with it the band must climb to 40 of 50.
    assert!(top_of_demand < plot.y + plot.h * 0.25, "demand peaks at y={top_of_demand}, plot {plot:?}");
}

#[test]
fn output_is_deterministic() {
    let data = sample(MINUTE);
    assert_eq!(render_svg(&data, 900, 600), render_svg(&data, 900, 600));
}

#[test]
fn write_chart_writes_svg_and_refuses_png_and_jpg() {
    let data = sample(HOUR);
    let dir = std::env::temp_dir().join(format!("ebbflow-chart-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let err = write_chart(&dir.join("out.jpg"), &data).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let msg = err.to_string();
    assert!(msg.contains(".jpg") && msg.contains(".svg"), "{msg}");
    assert!(!dir.join("out.jpg").exists());
    assert!(write_chart(&dir.join("noext"), &data).unwrap_err().to_string().contains("(none)"));

    write_chart(&dir.join("out.SVG"), &data).unwrap();
    assert!(std::fs::read_to_string(dir.join("out.SVG")).unwrap().contains("<svg"));
    let png = write_chart(&dir.join("out.png"), &data).unwrap_err().to_string();
    assert!(png.contains("SVG only") && png.contains(".svg"), "{png}");
    assert!(!dir.join("out.png").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn nice_ticks_use_round_steps_and_cover_the_range() {
    let (ticks, step) = nice_ticks(0.0, 23.3, 5.0);
    assert_eq!(step, 5.0);
    assert_eq!(ticks, vec![0.0, 5.0, 10.0, 15.0, 20.0, 25.0]);
    let (ticks, step) = nice_ticks(0.0, 1.04, 4.0);
    assert_eq!(step, 0.5);
    assert_eq!(ticks.last(), Some(&1.5));
    assert_eq!(format_value(0.30000000000000004, decimals_for(0.1)), "0.3");
    assert_eq!(format_value(-0.0001, 1), "0.0");
}

#[test]
fn time_labels_are_utc_and_round() {
    assert_eq!(format_full(APR_16_NOON), "2026-04-16 12:00");
    assert_eq!(utc(1_709_251_198_000), Some(jiff::civil::date(2024, 2, 29).at(23, 59, 58, 0)));
    assert_eq!(format_full(-3_600_000), "1969-12-31 23:00");
    assert_eq!(format_full(i64::MAX), "?", "beyond the year 9999");
    assert_eq!(format_tick(i64::MIN, DAY, false), "?");

    let ticks = time_ticks(APR_16_NOON - 12 * HOUR, APR_16_NOON + 60 * HOUR, 1100.0);
    assert!(ticks.len() >= 6 && ticks.len() <= 20, "{ticks:?}");
    assert!(ticks.iter().all(|(t, _)| t % HOUR == 0));
    assert!(ticks.iter().any(|(_, l)| l == "04-16 12:00"), "{ticks:?}");

    // Within one day, hours alone.
    let ticks = time_ticks(APR_16_NOON, APR_16_NOON + 2 * HOUR, 1000.0);
    assert!(ticks.iter().any(|(_, l)| l == "13:00"), "{ticks:?}");
    // Across months, days alone, on Mondays when weekly.
    let ticks = time_ticks(APR_16_NOON, APR_16_NOON + 90 * DAY, 600.0);
    assert!(ticks.iter().all(|(_, l)| l.len() == 5 && l.as_bytes()[2] == b'-'), "{ticks:?}");
}

#[test]
fn shading_appears_only_where_demand_exceeds_serving() {
    let start = APR_16_NOON;
    let mut data = ChartData {
        title: "t".to_owned(),
        start_ms: start,
        end_ms: start + 10 * HOUR,
        load: vec![Series::new("demand", Style::Line, (0..=10).map(|h| (start + h * HOUR, 3.0)).collect())],
        sizes: vec![Series::new("serving", Style::Step, vec![(start, 4.0)])],
        ..ChartData::default()
    };
    assert!(!render_svg(&data, 600, 400).contains("shortfall"));
    data.load[0].points[5].1 = 9.0;
    let svg = render_svg(&data, 600, 400);
    assert_eq!(svg.matches(r#"class="shortfall""#).count(), 1);
}

#[test]
fn empty_and_degenerate_input_still_renders() {
    let data = ChartData::default();
    let svg = render_svg(&data, 10, 10);
    check_xml(&svg).unwrap();
    assert!(svg.contains(r#"width="160" height="120""#), "raised to the least size");
}

/// Writes the sample to the temp directory for a person to look at:
/// `cargo test --lib chart::tests::render_example -- --ignored`.
#[test]
#[ignore = "writes files for manual inspection"]
fn render_example() {
    let data = sample(10 * SECOND);
    let dir = std::env::temp_dir();
    write_chart(&dir.join("chart_example.svg"), &data).unwrap();
    // The burst, close up: the shortfall while new nodes are provisioned.
    let zoom = ChartData {
        title: "bigtable/prod-events: burst".to_owned(),
        start_ms: data.start_ms + DAY + 13 * HOUR,
        end_ms: data.start_ms + DAY + 17 * HOUR,
        ..data
    };
    write_chart(&dir.join("chart_example_zoom.svg"), &zoom).unwrap();
}

/// A request count in the thousands next to a CPU utilization: each metric is on its own scale,
/// so the CPU target and limit lines sit well inside the CPU panel (on one shared 0–15,000 axis
/// they would lie within a pixel of its floor), and both are named on the chart.
#[test]
fn each_metric_has_its_own_scale_with_labelled_target_and_limit() {
    let start = APR_16_NOON;
    let pts = |f: &dyn Fn(i64) -> f64| (0..600).map(|i| (start + i * MINUTE, f(i))).collect::<Vec<_>>();
    let data = ChartData {
        title: "two metrics".into(),
        start_ms: start,
        end_ms: start + 600 * MINUTE,
        load: vec![Series::new("load", Style::Area, pts(&|i| 3.0 + (i % 7) as f64))],
        sizes: vec![Series::new("serving", Style::Step, pts(&|_| 6.0))],
        markers: vec![],
        y_label: "nodes".into(),
        metrics: vec![
            MetricPanel::new(
                "requests per node",
                vec![Series::new("observed", Style::Line, pts(&|i| if i == 300 { 15_000.0 } else { 4_000.0 }))],
            )
            .with_lines(Some(5_000.0), Some(6_250.0)),
            MetricPanel::new(
                "cpu per node",
                vec![Series::new("observed", Style::Line, pts(&|i| 0.4 + (i % 5) as f64 * 0.1))],
            )
            .with_lines(Some(0.6), Some(0.75)),
        ],
    };
    let scene = build_scene(&data, 1100, 700);
    let line = |tip: &str| -> (f64, Rect) {
        scene
            .prims
            .iter()
            .find_map(|p| match p {
                Prim::Stroke { pts, tooltip: Some(t), clip: Some(c), .. } if t == tip => {
                    Some((pts[0].1, scene.clips[*c]))
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("no line {tip}"))
    };
    let (target_y, cpu) = line("target 0.6");
    let (limit_y, cpu_again) = line("limit 0.75");
    assert_eq!(cpu, cpu_again, "target and limit in the same (cpu) panel");
    // Readable: well above the panel's floor, inside it, and the limit above the target.
    assert!(cpu.bottom() - target_y > cpu.h * 0.3, "target at y={target_y} in panel {cpu:?}");
    assert!(limit_y > cpu.y && limit_y < target_y - 10.0, "limit at y={limit_y}, target at {target_y}");
    // The request panel has its own lines, in its own rectangle.
    let (req_target_y, requests) = line("target 5000");
    assert_ne!(requests, cpu);
    assert!(requests.bottom() - req_target_y > 10.0, "a 15,000 spike still leaves the 5,000 target readable");
    let texts: Vec<&str> = scene
        .prims
        .iter()
        .filter_map(|p| if let Prim::Text { text, .. } = p { Some(text.as_str()) } else { None })
        .collect();
    for label in ["target 0.6", "limit 0.75", "target 5000", "limit 6250"] {
        assert!(texts.contains(&label), "no label {label} in {texts:?}");
    }
}

/// What the HTML report embeds for a small chart, exactly: buckets at the sample spacing, the
/// lowest and highest value of each, a gap as null, a step series held through buckets without
/// a sample, the metric panel's target and limit with the SVG chart's colours, and markers.
#[test]
fn embedded_chart_snapshot() {
    let t = |m: i64| APR_16_NOON + m * MINUTE;
    let data = ChartData {
        title: "small".into(),
        start_ms: t(0),
        end_ms: t(4),
        load: vec![Series::new(
            "demand",
            Style::Area,
            vec![(t(0), 1.0), (t(1), f64::NAN), (t(2), 3.5), (t(3), 2.0), (t(4), 1.0)],
        )],
        sizes: vec![Series::new("serving", Style::Step, vec![(t(0), 2.0), (t(3), 4.0), (t(4), 4.0)])],
        markers: vec![Marker { at_ms: t(3), kind: MarkerKind::ScaleOut, label: "2->4".into() }],
        y_label: "nodes".into(),
        metrics: vec![
            MetricPanel::new(
                "cpu per node",
                vec![Series::new("observed", Style::Line, (0..5).map(|m| (t(m), 0.1 * m as f64)).collect())],
            )
            .with_lines(Some(0.6), Some(0.75)),
        ],
    };
    let json = serde_json::to_string(&embed::embed(&data, 100)).expect("json");
    let expected = r##"{"title":"small","start":1776340800000,"end":1776341040000,"bucket":60000,"perSample":true,"spacing":60000,"panels":[{"label":"nodes","series":[{"name":"demand","style":"area","colour":"#0072b2","stepped":false,"lo":[1.0,null,3.5,2.0,1.0]},{"name":"serving","style":"step","colour":"#d55e00","stepped":true,"lo":[2.0,2.0,2.0,4.0,4.0]}],"target":null,"limit":null,"lineColours":["#117733","#a51d2d"]},{"label":"cpu per node","series":[{"name":"observed","style":"line","colour":"#009e73","stepped":false,"lo":[0.0,0.1,0.2,0.3,0.4]}],"target":0.6,"limit":0.75,"lineColours":["#117733","#a51d2d"]}],"markers":[{"t":1776340980000,"kind":"out","label":"2->4"}],"shade":[0,1]}"##;
    assert_eq!(json, expected);
}

/// Eight weeks of one-minute samples: at most MAX_BUCKETS buckets per series, and the single
/// highest and lowest samples are still there (as a bucket's highest and lowest), so the
/// report's chart can draw them at any zoom.
#[test]
fn embedded_long_series_keep_their_peaks_within_the_bucket_budget() {
    let n = 8 * 7 * 24 * 60;
    let start = APR_16_NOON;
    let mut rng = Lcg(11);
    let mut points: Vec<(i64, f64)> = (0..n).map(|i| (start + i as i64 * MINUTE, 0.4 + 0.2 * rng.next())).collect();
    points[31_337].1 = 9.75;
    points[50_001].1 = -0.5;
    let data = ChartData {
        title: "eight weeks".into(),
        start_ms: start,
        end_ms: start + (n as i64 - 1) * MINUTE,
        load: vec![],
        sizes: vec![],
        markers: vec![],
        y_label: "nodes".into(),
        metrics: vec![MetricPanel::new("cpu", vec![Series::new("observed", Style::Line, points.clone())])],
    };
    let e = embed::embed(&data, embed::MAX_BUCKETS);
    let s = &e.panels[1].series[0];
    assert!(s.lo.len() <= embed::MAX_BUCKETS + 1, "{} buckets", s.lo.len());
    assert!(e.bucket >= 8 * MINUTE && e.bucket < 9 * MINUTE, "bucket {} ms", e.bucket);
    assert!(!e.per_sample, "an 8-minute bucket holds eight samples and is drawn at its middle");
    assert_eq!(e.spacing, MINUTE, "the samples' own spacing, for the script to judge how dense they are");
    let hi = s.hi.as_ref().expect("buckets with several samples have a spread");
    let max = hi.iter().flatten().fold(f64::MIN, |a, &b| a.max(b));
    let min = s.lo.iter().flatten().fold(f64::MAX, |a, &b| a.min(b));
    assert_eq!((max, min), (9.75, -0.5));
    // ... in the bucket that holds their time.
    let at = |v: f64, of: &[Option<f64>]| of.iter().position(|x| *x == Some(v)).expect("value") as i64;
    assert_eq!(at(9.75, hi), 31_337 * MINUTE / e.bucket);
    assert_eq!(at(-0.5, &s.lo), 50_001 * MINUTE / e.bucket);
    // Small enough to embed: under 200 kB for a series of 80,640 samples.
    let json = serde_json::to_string(s).expect("json");
    assert!(json.len() < 200_000, "{} bytes", json.len());
}

/// Line labels: alone, just above the line (below it at the top of the plot); lines closer than
/// a label's height get labels a label's height apart, in the lines' order, each next to its own
/// line where there is room (the upper above, the lower below), all inside the plot.
#[test]
fn line_labels_never_overprint() {
    assert_eq!(label_baselines(&[100.5], 10.0, 300.0), vec![96.5]);
    assert_eq!(label_baselines(&[15.5], 10.0, 300.0), vec![27.5]);
    // Target (the lower line) and limit 3 px apart mid-plot.
    assert_eq!(label_baselines(&[103.5, 100.5], 10.0, 300.0), vec![103.5 + LABEL_H, 96.5]);
    // Near the bottom there is no room below: both above, the lower line's label lower.
    assert_eq!(label_baselines(&[296.5, 293.5], 10.0, 300.0), vec![289.5, 277.5]);
    // Whatever the lines, the labels are a label's height apart and end inside the plot.
    let mut rng = Lcg(5);
    for _ in 0..500 {
        let n = 1 + (rng.next() * 4.0) as usize;
        let ys: Vec<f64> = (0..n).map(|_| 10.0 + (rng.next() * 90.0).round() + 0.5).collect();
        let mut b = label_baselines(&ys, 10.0, 100.0);
        b.sort_by(f64::total_cmp);
        assert!(b.windows(2).all(|w| w[1] - w[0] >= LABEL_H - 1e-9), "{ys:?} -> {b:?}");
        assert!(b.last().is_some_and(|&l| l <= 97.0), "{ys:?} -> {b:?}");
    }
}

/// A dense series per pixel column: its lowest and highest sample, the mean (a step series: its
/// last value) for the line, one column per pixel however many samples, split at gaps that
/// empty a column.
#[test]
fn envelope_keeps_each_columns_range_and_mean() {
    let points: Vec<(i64, f64)> = (0..100).map(|i| (i, (i % 10) as f64)).collect();
    let runs = envelope(&points, 0, 100, 10, false);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].len(), 10);
    for (c, col) in runs[0].iter().enumerate() {
        assert_eq!((col.x, col.min, col.max), (c as f64 + 0.5, 0.0, 9.0));
        assert!((col.line - 4.5).abs() < 1e-9, "{col:?}");
    }
    assert!(envelope(&points, 0, 100, 10, true)[0].iter().all(|c| c.line == 9.0));
    // A missing sample inside a column is narrower than a pixel: the line goes on.
    let mut gappy = points.clone();
    gappy[55].1 = f64::NAN;
    let runs = envelope(&gappy, 0, 100, 10, false);
    assert_eq!((runs.len(), runs[0].len()), (1, 10));
    // A gap that leaves columns 4 to 6 without samples breaks it.
    for p in &mut gappy[40..70] {
        p.1 = f64::NAN;
    }
    let runs = envelope(&gappy, 0, 100, 10, false);
    assert_eq!(runs.len(), 2);
    assert_eq!((runs[0].last().map(|c| c.x), runs[1].first().map(|c| c.x)), (Some(3.5), Some(7.5)));
    // Dense past three samples a column; a step series past one change a column.
    assert!(is_dense(&points, 0, 100, 10, false) && !is_dense(&points, 0, 100, 40, false));
    let steps: Vec<(i64, f64)> = (0..100).map(|i| (i, (i / 20) as f64)).collect();
    assert!(!is_dense(&steps, 0, 100, 10, true) && is_dense(&points, 0, 100, 10, true));
}

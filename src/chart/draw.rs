//! Drawing the laid-out chart into the scene: the title, then each panel's header, grid, marker
//! guides, shading, series, axes, marker strip and time labels, in that order (later on top).

use std::fmt::Write as _;

use super::layout::{Drawn, Frame, Panel, marker_name};
use super::marks::{draw_swatch, legend_item_width, marker_shape, stroke_width};
use super::palette::{
    AREA_OPACITY, AXIS, ENVELOPE_OPACITY, GRID, INK, MUTED, SHORTFALL, SHORTFALL_OPACITY, marker_colour,
};
use super::reduce::{decimate, drop_flat, envelope, is_dense, round_pts, shortfall_polygons, stepped};
use super::scene::{Anchor, LEGEND_ROW_H, MARKER_STRIP_H, PAD, Prim, SWATCH_W, Scene, text_width};
use super::ticks::{format_full, format_value};
use super::{MarkerKind, Style};

/// The title, and the full UTC range on the right so the year and dates are never ambiguous.
pub(super) fn title(scene: &mut Scene, f: &Frame<'_>) {
    let range = format!("{} to {} UTC", format_full(f.start), format_full(f.end));
    // The SVG title is 14 px bold, about 8.4 px a character; cut it before it reaches the range.
    let title_room = ((f.width - 3.0 * PAD - text_width(&range)) / 8.4).max(3.0) as usize;
    let title = if f.data.title.chars().count() > title_room {
        let mut t: String = f.data.title.chars().take(title_room.saturating_sub(3)).collect();
        t.push_str("...");
        t
    } else {
        f.data.title.clone()
    };
    scene.prims.push(Prim::Text {
        x: PAD,
        y: PAD + 13.0,
        text: title,
        anchor: Anchor::Start,
        colour: INK,
        title: true,
    });
    scene.text(f.width - PAD, PAD + 12.0, range, Anchor::End, MUTED);
}

/// One panel; the upper one (`upper`) also gets the shading and the marker strip, the last one
/// (`last`) the time labels.
pub(super) fn panel(scene: &mut Scene, f: &Frame<'_>, p: &Panel<'_>, upper: bool, last: bool) {
    let clip = scene.clips.len();
    scene.clips.push(p.rect);
    header(scene, p);
    grid(scene, f, p);
    marker_guides(scene, f, p, clip);
    // Shortfall shading sits under the lines so both edges stay readable.
    if upper && let Some((demand, serving)) = f.shortfall {
        for poly in shortfall_polygons(demand, serving, f.start, f.end, p.rect, p) {
            scene.prims.push(Prim::Fill {
                pts: poly,
                colour: SHORTFALL,
                opacity: SHORTFALL_OPACITY,
                clip: Some(clip),
                tooltip: Some("demand > serving".to_owned()),
                class: "shortfall",
            });
        }
    }
    // Dashed plans go under solid lines: where desired equals serving, serving shows.
    let mut order: Vec<&Drawn<'_>> = p.series.iter().collect();
    order.sort_by_key(|d| match d.series.style {
        Style::Area => 0,
        Style::Dashed => 1,
        Style::Step => 2,
        Style::Line => 3,
    });
    for d in order {
        series(scene, f, p, d, clip);
    }
    reference_lines(scene, p, clip);
    axes(scene, f, p);
    if upper && f.has_markers {
        marker_strip(scene, f, p);
    }
    if last {
        time_labels(scene, f, p);
    }
}

/// The panel's label on the left, its legend rows on the right.
fn header(scene: &mut Scene, p: &Panel<'_>) {
    let header_base = p.header_y + 12.0;
    scene.text(PAD, header_base, p.label.clone(), Anchor::Start, INK);
    for (ri, row) in p.legend_rows.iter().enumerate() {
        let row_w: f64 = row.iter().map(|&i| legend_item_width(&p.legend[i].1)).sum();
        let mut x = p.rect.right() - row_w + 12.0;
        let base = header_base + ri as f64 * LEGEND_ROW_H;
        for &i in row {
            let (swatch, name) = &p.legend[i];
            draw_swatch(scene, swatch, x, base - 4.0);
            scene.text(x + SWATCH_W + 5.0, base, name.clone(), Anchor::Start, INK);
            x += legend_item_width(name);
        }
    }
}

/// Grid lines and y tick labels; lines sit on half pixels so 1 px lines stay crisp.
fn grid(scene: &mut Scene, f: &Frame<'_>, p: &Panel<'_>) {
    let r = p.rect;
    for &v in &p.y_ticks {
        let yy = p.y_px(v).round() + 0.5;
        let yy = yy.min(r.bottom() - 0.5);
        scene.line((r.x, yy), (r.right(), yy), GRID, 1.0);
        scene.text(r.x - 6.0, yy + 4.0, format_value(v, p.y_decimals), Anchor::End, MUTED);
    }
    for &(t, _) in &f.ticks {
        let xx = f.x_px(t).round() + 0.5;
        scene.line((xx, r.y), (xx, r.bottom()), GRID, 1.0);
    }
}

/// Marker guides help to read an action against the curves; with many markers they would only
/// add noise.
fn marker_guides(scene: &mut Scene, f: &Frame<'_>, p: &Panel<'_>, clip: usize) {
    if f.markers.len() > 40 {
        return;
    }
    let r = p.rect;
    for m in &f.markers {
        let xx = f.x_px(m.at_ms).round() + 0.5;
        scene.prims.push(Prim::Stroke {
            pts: vec![(xx, r.y), (xx, r.bottom())],
            colour: marker_colour(m.kind),
            width: 1.0,
            dashed: true,
            opacity: 0.35,
            clip: Some(clip),
            tooltip: None,
        });
    }
}

/// One series, decimated to pixel columns, as a line per run between gaps (with its area filled
/// for [`Style::Area`]); a series with more samples than the columns can show one by one is
/// drawn as its range and mean per column instead ([`dense_series`]).
fn series(scene: &mut Scene, f: &Frame<'_>, p: &Panel<'_>, d: &Drawn<'_>, clip: usize) {
    let r = p.rect;
    let columns = r.w.ceil().max(1.0) as usize;
    if is_dense(&d.series.points, f.start, f.end, columns, d.stepped) {
        dense_series(scene, f, p, d, clip, columns);
        return;
    }
    let to_px = |(t, v): (f64, f64)| (r.x + t * r.w / columns as f64, p.y_px(v));
    for run in decimate(&d.series.points, f.start, f.end, columns) {
        let mut pts: Vec<(f64, f64)> = run.into_iter().map(to_px).collect();
        if d.stepped {
            pts = stepped(&pts);
        }
        let pts = drop_flat(round_pts(pts));
        if pts.is_empty() {
            continue;
        }
        if d.series.style == Style::Area {
            let base = p.y_px(0.0f64.max(p.y_lo).min(p.y_hi));
            let mut poly = pts.clone();
            if let (Some(first), Some(last)) = (pts.first(), pts.last()) {
                poly.push((last.0, base));
                poly.push((first.0, base));
            }
            scene.prims.push(Prim::Fill {
                pts: poly,
                colour: d.colour,
                opacity: AREA_OPACITY,
                clip: Some(clip),
                tooltip: None,
                class: "area",
            });
        }
        scene.prims.push(Prim::Stroke {
            pts,
            colour: d.colour,
            width: stroke_width(d.series.style),
            dashed: d.series.style == Style::Dashed,
            opacity: 1.0,
            clip: Some(clip),
            tooltip: Some(d.series.name.clone()),
        });
    }
}

/// A dense series: per pixel column, a light band from the lowest to the highest sample (a
/// one-sample peak still reaches its height) and one line through the columns' means (a step
/// series: the value each column ends on, as steps), so the line has at most one point a column
/// (two for steps) however many samples there are. An area is filled below the band.
fn dense_series(scene: &mut Scene, f: &Frame<'_>, p: &Panel<'_>, d: &Drawn<'_>, clip: usize, columns: usize) {
    let r = p.rect;
    let x_px = |c: f64| r.x + c * r.w / columns as f64;
    let name = &d.series.name;
    let line_is = if d.stepped { "the value each column ends on" } else { "their mean" };
    for run in envelope(&d.series.points, f.start, f.end, columns, d.stepped) {
        let (Some(first), Some(last)) = (run.first(), run.last()) else { continue };
        if d.series.style == Style::Area {
            let base = p.y_px(0.0f64.max(p.y_lo).min(p.y_hi));
            let mut poly: Vec<(f64, f64)> = run.iter().map(|c| (x_px(c.x), p.y_px(c.min))).collect();
            poly.push((x_px(last.x), base));
            poly.push((x_px(first.x), base));
            scene.prims.push(Prim::Fill {
                pts: drop_flat(round_pts(poly)),
                colour: d.colour,
                opacity: AREA_OPACITY,
                clip: Some(clip),
                tooltip: None,
                class: "area",
            });
        }
        let mut band: Vec<(f64, f64)> = run.iter().map(|c| (x_px(c.x), p.y_px(c.max))).collect();
        band.extend(run.iter().rev().map(|c| (x_px(c.x), p.y_px(c.min))));
        scene.prims.push(Prim::Fill {
            pts: drop_flat(round_pts(band)),
            colour: d.colour,
            opacity: ENVELOPE_OPACITY,
            clip: Some(clip),
            tooltip: Some(format!("{name}: lowest to highest sample in each pixel column; the line is {line_is}")),
            class: "envelope",
        });
        let mut line: Vec<(f64, f64)> = run.iter().map(|c| (x_px(c.x), p.y_px(c.line))).collect();
        if d.stepped {
            line = stepped(&line);
        }
        let line = drop_flat(round_pts(line));
        if line.is_empty() {
            continue;
        }
        scene.prims.push(Prim::Stroke {
            pts: line,
            colour: d.colour,
            width: stroke_width(d.series.style),
            dashed: d.series.style == Style::Dashed,
            opacity: 1.0,
            clip: Some(clip),
            tooltip: Some(name.clone()),
        });
    }
}

/// The metric's target and limit: dashed lines across the plot, each named with its value at the
/// right end, where [`label_baselines`] puts the names so they never overprint each other.
fn reference_lines(scene: &mut Scene, p: &Panel<'_>, clip: usize) {
    let r = p.rect;
    let ys: Vec<f64> = p.lines.iter().map(|&(_, v, _)| p.y_px(v).round() + 0.5).collect();
    let baselines = label_baselines(&ys, r.y, r.bottom());
    for ((&(name, v, colour), &y), &label_y) in p.lines.iter().zip(&ys).zip(&baselines) {
        let label = format!("{name} {}", short_value(v));
        scene.prims.push(Prim::Stroke {
            pts: vec![(r.x, y), (r.right(), y)],
            colour,
            width: 1.4,
            dashed: true,
            opacity: 1.0,
            clip: Some(clip),
            tooltip: Some(label.clone()),
        });
        scene.text(r.right() - 4.0, label_y, label, Anchor::End, colour);
    }
}

/// Height a line label takes, baseline to baseline: the 11 px font and a pixel between.
pub(super) const LABEL_H: f64 = 12.0;
/// Room a label needs above its baseline: the ascent of the 11 px font and a pixel.
const LABEL_ASCENT: f64 = 10.0;
/// Room a label needs below its baseline: the font's descent.
const LABEL_DESCENT: f64 = 3.0;

/// Baselines for the labels of horizontal lines at pixel rows `ys` in a plot from `top` to
/// `bottom`. The labels are right-aligned at one x, so two overprint whenever their baselines
/// are less than [`LABEL_H`] apart; with target and limit lines a few pixels apart (0.6 and
/// 0.75 on an axis a spike stretched to 10) they did.
///
/// A line on its own is named just above it (below it at the top of the plot). Lines closer
/// than a label's height share their labels' room, which are stacked in the lines' order: the
/// top line's above it and the others below the bottom line, so each label is next to its own
/// line and none crosses one; else all above the top line, else all below the bottom one.
/// Finally each label is kept a label's height under the one above it, and all inside the plot.
pub(super) fn label_baselines(ys: &[f64], top: f64, bottom: f64) -> Vec<f64> {
    let fits = |b: f64| b - LABEL_ASCENT >= top && b + LABEL_DESCENT <= bottom;
    let mut order: Vec<usize> = (0..ys.len()).collect();
    order.sort_by(|&a, &b| ys[a].total_cmp(&ys[b]));
    let mut clusters: Vec<Vec<usize>> = Vec::new();
    for &i in &order {
        match clusters.last_mut() {
            Some(c) if c.last().is_some_and(|&j| ys[i] - ys[j] < LABEL_H + 4.0) => c.push(i),
            _ => clusters.push(vec![i]),
        }
    }
    let mut out = vec![0.0; ys.len()];
    for c in &clusters {
        let (Some(&first), Some(&last)) = (c.first(), c.last()) else { continue };
        let (first, last, n) = (ys[first], ys[last], c.len());
        let split: Vec<f64> = std::iter::once(first - 4.0).chain((1..n).map(|j| last + LABEL_H * j as f64)).collect();
        let above: Vec<f64> = (0..n).map(|j| first - 4.0 - LABEL_H * (n - 1 - j) as f64).collect();
        let below: Vec<f64> = (0..n).map(|j| last + LABEL_H * (j + 1) as f64).collect();
        let chosen = [split, above].into_iter().find(|b| b.iter().all(|&y| fits(y))).unwrap_or(below);
        for (&i, b) in c.iter().zip(chosen) {
            out[i] = b;
        }
    }
    // Labels of neighbouring groups can still meet (one named below its line, the next above
    // its own): each goes under the one above it, then all back up from the bottom.
    let mut prev: Option<f64> = None;
    for &i in &order {
        if let Some(p) = prev {
            out[i] = out[i].max(p + LABEL_H);
        }
        prev = Some(out[i]);
    }
    let mut limit = bottom - LABEL_DESCENT;
    for &i in order.iter().rev() {
        out[i] = out[i].min(limit);
        limit = out[i] - LABEL_H;
    }
    out
}

/// A value as a person writes it: at most four significant digits, no trailing zeros.
pub(super) fn short_value(v: f64) -> String {
    let digits = if v == 0.0 || !v.is_finite() { 0 } else { (3 - v.abs().log10().floor() as i32).clamp(0, 6) as usize };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s };
    if s == "-0" { "0".to_owned() } else { s }
}

/// Axis lines and time tick marks, last so curves at zero do not hide them.
fn axes(scene: &mut Scene, f: &Frame<'_>, p: &Panel<'_>) {
    let r = p.rect;
    let bx = r.x + 0.5;
    let by = r.bottom() + 0.5;
    scene.line((bx, r.y), (bx, by), AXIS, 1.0);
    scene.line((r.x, by), (r.right(), by), AXIS, 1.0);
    for &(t, _) in &f.ticks {
        let xx = f.x_px(t).round() + 0.5;
        scene.line((xx, by), (xx, by + 4.0), AXIS, 1.0);
    }
}

/// The ▲ ▼ ◆ symbols under the panel, each with a tooltip naming what happened and when.
fn marker_strip(scene: &mut Scene, f: &Frame<'_>, p: &Panel<'_>) {
    let cy = p.rect.bottom() + 1.0 + MARKER_STRIP_H / 2.0;
    // Spikes are rarer and explain the scale-outs next to them, so they stay on top.
    let mut markers = f.markers.clone();
    markers.sort_by_key(|m| m.kind == MarkerKind::Spike);
    for m in &markers {
        let cy = if f.spike_lane && m.kind == MarkerKind::Spike { cy + MARKER_STRIP_H - 2.0 } else { cy };
        let mut label = marker_name(m.kind).to_owned();
        let _ = write!(label, " at {}", format_full(m.at_ms));
        if !m.label.is_empty() {
            let _ = write!(label, ": {}", m.label);
        }
        scene.prims.push(Prim::Fill {
            pts: marker_shape(m.kind, f.x_px(m.at_ms), cy),
            colour: marker_colour(m.kind),
            opacity: 1.0,
            clip: None,
            tooltip: Some(label),
            class: match m.kind {
                MarkerKind::ScaleOut => "marker scale-out",
                MarkerKind::ScaleIn => "marker scale-in",
                MarkerKind::Spike => "marker spike",
            },
        });
    }
}

/// The time labels under the last panel; those at the ends of the axis are pulled in rather than
/// cut off at the image edge.
fn time_labels(scene: &mut Scene, f: &Frame<'_>, p: &Panel<'_>) {
    let by = p.rect.bottom() + 0.5;
    for (t, label) in &f.ticks {
        let half = text_width(label) / 2.0;
        // max/min rather than clamp: a label wider than the image must not panic.
        let x = f.x_px(*t).max(PAD / 2.0 + half).min(f.width - PAD / 2.0 - half);
        scene.text(x, by + 15.0, label.clone(), Anchor::Middle, MUTED);
    }
}

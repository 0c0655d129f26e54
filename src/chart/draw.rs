//! Drawing the laid-out chart into the scene: the title, then each panel's header, grid, marker
//! guides, shading, series, axes, marker strip and time labels, in that order (later on top).

use std::fmt::Write as _;

use super::layout::{Drawn, Frame, Panel, marker_name};
use super::marks::{draw_swatch, legend_item_width, marker_shape, stroke_width};
use super::palette::{AREA_OPACITY, AXIS, GRID, INK, MUTED, SHORTFALL, SHORTFALL_OPACITY, marker_colour};
use super::reduce::{decimate, drop_flat, round_pts, shortfall_polygons, stepped};
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
/// for [`Style::Area`]).
fn series(scene: &mut Scene, f: &Frame<'_>, p: &Panel<'_>, d: &Drawn<'_>, clip: usize) {
    let r = p.rect;
    let columns = r.w.ceil().max(1.0) as usize;
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

/// The metric's target and limit: dashed lines across the plot, each named with its value at the
/// right end (above the line, or below it when the line is at the top of the plot).
fn reference_lines(scene: &mut Scene, p: &Panel<'_>, clip: usize) {
    let r = p.rect;
    for &(name, v, colour) in &p.lines {
        let y = p.y_px(v).round() + 0.5;
        scene.prims.push(Prim::Stroke {
            pts: vec![(r.x, y), (r.right(), y)],
            colour,
            width: 1.4,
            dashed: true,
            opacity: 1.0,
            clip: Some(clip),
            tooltip: Some(format!("{name} {}", short_value(v))),
        });
        let label_y = if y - r.y < 14.0 { y + 12.0 } else { y - 4.0 };
        let label = format!("{name} {}", short_value(v));
        scene.text(r.right() - 4.0, label_y, label, Anchor::End, colour);
    }
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

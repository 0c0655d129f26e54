//! From [`ChartData`] to a [`Scene`]: panels, legends, scales and the primitives of every series.

use std::fmt::Write as _;

use super::marks::{draw_swatch, legend_item_width, marker_shape, stroke_width};
use super::palette::{
    AREA_OPACITY, AXIS, GRID, INK, MUTED, PALETTE, Rgb, SHORTFALL, SHORTFALL_OPACITY, WHITE, marker_colour,
};
use super::reduce::{decimate, drop_flat, round_pts, shortfall_polygons, stepped, visible};
use super::scene::{
    Anchor, LEGEND_ROW_H, MARKER_STRIP_H, PAD, PANEL_GAP, Prim, RIGHT_MARGIN, Rect, SWATCH_W, Scene, TIME_LABEL_H,
    TITLE_H, text_width,
};
use super::ticks::{decimals_for, fitted_ticks, format_full, format_value, time_ticks};
use super::{ChartData, Marker, MarkerKind, Series, Style};

/// One series as the layout sees it: its colour and whether it is drawn as steps.
pub(super) struct Drawn<'a> {
    pub(super) series: &'a Series,
    pub(super) colour: Rgb,
    pub(super) stepped: bool,
}

pub(super) enum LegendSwatch {
    Series(Style, Rgb),
    Shade,
    Marker(MarkerKind),
}

pub(super) struct Panel<'a> {
    pub(super) label: String,
    pub(super) series: Vec<Drawn<'a>>,
    pub(super) legend: Vec<(LegendSwatch, String)>,
    pub(super) legend_rows: Vec<Vec<usize>>,
    pub(super) rect: Rect,
    pub(super) header_y: f64,
    pub(super) y_lo: f64,
    pub(super) y_hi: f64,
    pub(super) y_ticks: Vec<f64>,
    pub(super) y_decimals: usize,
}

impl Panel<'_> {
    /// Pixel row of `v`, always finite: a value beyond the scale (only possible past the
    /// ±f64::MAX / 4 the scale is capped at) is drawn just outside the plot, where it is clipped.
    pub(super) fn y_px(&self, v: f64) -> f64 {
        let f = (v - self.y_lo) / (self.y_hi - self.y_lo);
        let f = if f.is_nan() { 0.0 } else { f.clamp(-1.0, 2.0) };
        self.rect.bottom() - f * self.rect.h
    }
}

pub(super) fn build_scene(data: &ChartData, width: u32, height: u32) -> Scene {
    // Tiny sizes would give negative plot areas; the chart is unreadable below this anyway.
    let width = width.max(160);
    let height = height.max(120);
    let (w, h) = (f64::from(width), f64::from(height));
    let start = data.start_ms;
    let end = if data.end_ms > data.start_ms { data.end_ms } else { data.start_ms.saturating_add(1) };

    let mut scene = Scene { width, height, title: data.title.clone(), clips: Vec::new(), prims: Vec::new() };
    scene.rect(Rect { x: 0.0, y: 0.0, w, h }, WHITE, 1.0);

    // Colours are assigned across all panels so no two legend entries share one.
    let colour_of = |i: usize| PALETTE[i % PALETTE.len()];
    let load_c: Vec<usize> = (0..data.load.len()).collect();
    let size_c: Vec<usize> = (0..data.sizes.len()).map(|i| data.load.len() + i).collect();
    let node_c: Vec<usize> = (0..data.per_node.len()).map(|i| data.load.len() + data.sizes.len() + i).collect();

    let serving_idx =
        data.sizes.iter().position(|s| s.style == Style::Step).or(if data.sizes.is_empty() { None } else { Some(0) });
    let shortfall_pair = match (data.load.first(), serving_idx) {
        (Some(d), Some(s)) => Some((d, &data.sizes[s])),
        _ => None,
    };

    // Sizes are drawn before the load so the demand line stays on top where they meet.
    let mut top = Panel {
        label: data.y_label.clone(),
        series: Vec::new(),
        legend: Vec::new(),
        legend_rows: Vec::new(),
        rect: Rect { x: 0.0, y: 0.0, w: 0.0, h: 0.0 },
        header_y: 0.0,
        y_lo: 0.0,
        y_hi: 1.0,
        y_ticks: Vec::new(),
        y_decimals: 0,
    };
    for (s, c) in data.sizes.iter().zip(&size_c) {
        let stepped = matches!(s.style, Style::Step | Style::Dashed);
        top.series.push(Drawn { series: s, colour: colour_of(*c), stepped });
    }
    for (s, c) in data.load.iter().zip(&load_c) {
        top.series.push(Drawn { series: s, colour: colour_of(*c), stepped: s.style == Style::Step });
    }
    for (s, c) in data.load.iter().zip(&load_c).chain(data.sizes.iter().zip(&size_c)) {
        top.legend.push((LegendSwatch::Series(s.style, colour_of(*c)), s.name.clone()));
    }

    let mut panels = vec![top];
    if !data.per_node.is_empty() {
        let mut p = Panel {
            label: data.per_node_label.clone(),
            series: Vec::new(),
            legend: Vec::new(),
            legend_rows: Vec::new(),
            rect: Rect { x: 0.0, y: 0.0, w: 0.0, h: 0.0 },
            header_y: 0.0,
            y_lo: 0.0,
            y_hi: 1.0,
            y_ticks: Vec::new(),
            y_decimals: 0,
        };
        for (s, c) in data.per_node.iter().zip(&node_c) {
            p.series.push(Drawn { series: s, colour: colour_of(*c), stepped: s.style == Style::Step });
            p.legend.push((LegendSwatch::Series(s.style, colour_of(*c)), s.name.clone()));
        }
        panels.push(p);
    }

    // Horizontal layout: the legend is laid out against the right edge before the y tick labels
    // are known, so it is wrapped against the full width left of the panel label.
    let plot_right = w - RIGHT_MARGIN;
    let mut marker_kinds: Vec<MarkerKind> = Vec::new();
    for kind in [MarkerKind::ScaleOut, MarkerKind::ScaleIn, MarkerKind::Spike] {
        if data.markers.iter().any(|m| m.kind == kind && m.at_ms >= start && m.at_ms <= end) {
            marker_kinds.push(kind);
        }
    }
    if shortfall_pair.is_some() {
        panels[0].legend.push((LegendSwatch::Shade, "demand > serving".to_owned()));
    }
    for kind in &marker_kinds {
        let name = match kind {
            MarkerKind::ScaleOut => "scale out",
            MarkerKind::ScaleIn => "scale in",
            MarkerKind::Spike => "spike",
        };
        panels[0].legend.push((LegendSwatch::Marker(*kind), name.to_owned()));
    }
    for p in &mut panels {
        let avail = (plot_right - PAD - text_width(&p.label) - 24.0).max(80.0);
        let mut rows: Vec<Vec<usize>> = Vec::new();
        let mut row_w = 0.0;
        for (i, (_, name)) in p.legend.iter().enumerate() {
            let item_w = legend_item_width(name);
            if rows.is_empty() || row_w + item_w > avail {
                rows.push(Vec::new());
                row_w = 0.0;
            }
            row_w += item_w;
            if let Some(r) = rows.last_mut() {
                r.push(i);
            }
        }
        if rows.is_empty() {
            rows.push(Vec::new());
        }
        p.legend_rows = rows;
    }

    // Vertical layout.
    let has_markers = !marker_kinds.is_empty();
    // A spike and the scale-out it causes share a timestamp, so spikes get a lane of their own.
    let spike_lane = marker_kinds.contains(&MarkerKind::Spike) && marker_kinds.len() > 1;
    let strip_h = if spike_lane { 2.0 * MARKER_STRIP_H - 2.0 } else { MARKER_STRIP_H };
    let mut fixed = PAD + TITLE_H + TIME_LABEL_H + PAD;
    for p in &panels {
        fixed += p.legend_rows.len() as f64 * LEGEND_ROW_H + 6.0;
    }
    if has_markers {
        fixed += strip_h;
    }
    fixed += PANEL_GAP * (panels.len() as f64 - 1.0);
    let avail_h = (h - fixed).max(40.0);
    let shares: &[f64] = if panels.len() == 2 { &[0.6, 0.4] } else { &[1.0] };
    let mut y = PAD + TITLE_H;
    for (i, p) in panels.iter_mut().enumerate() {
        p.header_y = y;
        y += p.legend_rows.len() as f64 * LEGEND_ROW_H + 6.0;
        let ph = (avail_h * shares[i]).floor();
        p.rect = Rect { x: 0.0, y, w: 0.0, h: ph };
        y += ph;
        if i == 0 && has_markers {
            y += strip_h;
        }
        y += PANEL_GAP;
    }

    // Y scales: nodes and utilizations are read against zero, so zero is always on the axis.
    let mut label_w: f64 = 0.0;
    for p in &mut panels {
        let (mut lo, mut hi) = (0.0f64, f64::NEG_INFINITY);
        for d in &p.series {
            for &(t, v) in visible(&d.series.points, start, end) {
                if v.is_finite() && t >= start && t <= end {
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
            }
        }
        // The scale spans at most f64::MAX / 2, so every difference below stays finite; a range
        // too small to divide into ticks (all values equal, or subnormal) is drawn as flat.
        let cap = f64::MAX / 4.0;
        let (lo, mut hi) = (lo.max(-cap), hi.min(cap));
        if !hi.is_finite() || hi - lo < f64::MIN_POSITIVE * 1e10 || hi - lo < lo.abs() * 1e-9 {
            hi = lo + lo.abs().max(1.0);
        }
        // Headroom keeps a line at the maximum from merging into the panel's top edge.
        let hi = hi + (hi - lo) * 0.03;
        let target = (p.rect.h / 45.0).clamp(2.0, 8.0);
        let (ticks, step) = fitted_ticks(lo, hi, target);
        p.y_lo = ticks.first().copied().unwrap_or(lo);
        p.y_hi = ticks.last().copied().unwrap_or(hi);
        p.y_decimals = decimals_for(step);
        p.y_ticks = ticks;
        for t in &p.y_ticks {
            label_w = label_w.max(text_width(&format_value(*t, p.y_decimals)));
        }
    }
    let plot_x = (PAD + label_w + 8.0).round();
    for p in &mut panels {
        p.rect.x = plot_x;
        p.rect.w = (plot_right - plot_x).max(20.0);
    }
    let plot_w = panels[0].rect.w;
    // In i128: the span of two arbitrary i64 times does not fit an i64.
    let span_ms = (i128::from(end) - i128::from(start)).max(1) as f64;
    let x_px = |t: i64| plot_x + (i128::from(t) - i128::from(start)) as f64 / span_ms * plot_w;

    // Title, and the full UTC range on the right so the year and dates are never ambiguous.
    let range = format!("{} to {} UTC", format_full(start), format_full(end));
    // The SVG title is 14 px bold, about 8.4 px a character; cut it before it reaches the range.
    let title_room = ((w - 3.0 * PAD - text_width(&range)) / 8.4).max(3.0) as usize;
    let title = if data.title.chars().count() > title_room {
        let mut t: String = data.title.chars().take(title_room.saturating_sub(3)).collect();
        t.push_str("...");
        t
    } else {
        data.title.clone()
    };
    scene.prims.push(Prim::Text {
        x: PAD,
        y: PAD + 13.0,
        text: title,
        anchor: Anchor::Start,
        colour: INK,
        title: true,
    });
    scene.text(w - PAD, PAD + 12.0, range, Anchor::End, MUTED);

    // Time ticks, shared by every panel.
    let ticks = time_ticks(start, end, plot_w);

    for (pi, p) in panels.iter().enumerate() {
        let r = p.rect;
        let clip = scene.clips.len();
        scene.clips.push(r);

        // Header: the panel's label on the left, its legend rows on the right.
        let header_base = p.header_y + 12.0;
        scene.text(PAD, header_base, p.label.clone(), Anchor::Start, INK);
        for (ri, row) in p.legend_rows.iter().enumerate() {
            let row_w: f64 = row.iter().map(|&i| legend_item_width(&p.legend[i].1)).sum();
            let mut x = r.right() - row_w + 12.0;
            let base = header_base + ri as f64 * LEGEND_ROW_H;
            for &i in row {
                let (swatch, name) = &p.legend[i];
                draw_swatch(&mut scene, swatch, x, base - 4.0);
                scene.text(x + SWATCH_W + 5.0, base, name.clone(), Anchor::Start, INK);
                x += legend_item_width(name);
            }
        }

        // Grid and y tick labels; lines sit on half pixels so 1 px lines stay crisp.
        for &v in &p.y_ticks {
            let yy = p.y_px(v).round() + 0.5;
            let yy = yy.min(r.bottom() - 0.5);
            scene.line((r.x, yy), (r.right(), yy), GRID, 1.0);
            scene.text(r.x - 6.0, yy + 4.0, format_value(v, p.y_decimals), Anchor::End, MUTED);
        }
        for &(t, _) in &ticks {
            let xx = x_px(t).round() + 0.5;
            scene.line((xx, r.y), (xx, r.bottom()), GRID, 1.0);
        }

        // Marker guides help to read an action against the curves; with many markers they would
        // only add noise.
        let in_range: Vec<&Marker> = data.markers.iter().filter(|m| m.at_ms >= start && m.at_ms <= end).collect();
        if in_range.len() <= 40 {
            for m in &in_range {
                let xx = x_px(m.at_ms).round() + 0.5;
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

        // Shortfall shading sits under the lines so both edges stay readable.
        if pi == 0
            && let Some((demand, serving)) = shortfall_pair
        {
            for poly in shortfall_polygons(demand, serving, start, end, r, p) {
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

        let columns = r.w.ceil().max(1.0) as usize;
        // Dashed plans go under solid lines: where desired equals serving, serving shows.
        let mut order: Vec<&Drawn<'_>> = p.series.iter().collect();
        order.sort_by_key(|d| match d.series.style {
            Style::Area => 0,
            Style::Dashed => 1,
            Style::Step => 2,
            Style::Line => 3,
        });
        for d in order {
            let runs = decimate(&d.series.points, start, end, columns);
            let to_px = |(t, v): (f64, f64)| (r.x + t * r.w / columns as f64, p.y_px(v));
            for run in runs {
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

        // Axis lines go last so curves at zero do not hide them.
        let bx = r.x + 0.5;
        let by = r.bottom() + 0.5;
        scene.line((bx, r.y), (bx, by), AXIS, 1.0);
        scene.line((r.x, by), (r.right(), by), AXIS, 1.0);
        for &(t, _) in &ticks {
            let xx = x_px(t).round() + 0.5;
            scene.line((xx, by), (xx, by + 4.0), AXIS, 1.0);
        }

        if pi == 0 && has_markers {
            let cy = r.bottom() + 1.0 + MARKER_STRIP_H / 2.0;
            // Spikes are rarer and explain the scale-outs next to them, so they stay on top.
            let mut in_range = in_range.clone();
            in_range.sort_by_key(|m| m.kind == MarkerKind::Spike);
            for m in &in_range {
                let cy = if spike_lane && m.kind == MarkerKind::Spike { cy + MARKER_STRIP_H - 2.0 } else { cy };
                let mut label = match m.kind {
                    MarkerKind::ScaleOut => "scale out",
                    MarkerKind::ScaleIn => "scale in",
                    MarkerKind::Spike => "spike",
                }
                .to_owned();
                let _ = write!(label, " at {}", format_full(m.at_ms));
                if !m.label.is_empty() {
                    let _ = write!(label, ": {}", m.label);
                }
                scene.prims.push(Prim::Fill {
                    pts: marker_shape(m.kind, x_px(m.at_ms), cy),
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

        if pi + 1 == panels.len() {
            // Labels at the ends of the axis are pulled in rather than cut off at the image edge.
            for (t, label) in &ticks {
                let half = text_width(label) / 2.0;
                // max/min rather than clamp: a label wider than the image must not panic.
                let x = x_px(*t).max(PAD / 2.0 + half).min(w - PAD / 2.0 - half);
                scene.text(x, by + 15.0, label.clone(), Anchor::Middle, MUTED);
            }
        }
    }
    scene
}

//! Small marks: legend swatches, marker symbols and line widths.

use super::layout::LegendSwatch;
use super::palette::{AREA_OPACITY, SHORTFALL, SHORTFALL_OPACITY, marker_colour};
use super::scene::{Prim, Rect, SWATCH_W, Scene, text_width};
use super::{MarkerKind, Style};

pub(super) fn stroke_width(style: Style) -> f64 {
    match style {
        Style::Step => 2.0,
        Style::Line | Style::Dashed | Style::Area => 1.6,
    }
}

pub(super) fn legend_item_width(name: &str) -> f64 {
    SWATCH_W + 5.0 + text_width(name) + 16.0
}

pub(super) fn draw_swatch(scene: &mut Scene, swatch: &LegendSwatch, x: f64, cy: f64) {
    match *swatch {
        LegendSwatch::Series(style, colour) => {
            if style == Style::Area {
                scene.rect(Rect { x, y: cy - 5.0, w: SWATCH_W, h: 10.0 }, colour, AREA_OPACITY);
            }
            let pts = match style {
                Style::Step => {
                    vec![(x, cy + 4.0), (x + 10.0, cy + 4.0), (x + 10.0, cy - 4.0), (x + SWATCH_W, cy - 4.0)]
                }
                Style::Area => vec![(x, cy - 5.0), (x + SWATCH_W, cy - 5.0)],
                Style::Line | Style::Dashed => vec![(x, cy), (x + SWATCH_W, cy)],
            };
            scene.prims.push(Prim::Stroke {
                pts,
                colour,
                width: stroke_width(style),
                dashed: style == Style::Dashed,
                opacity: 1.0,
                clip: None,
                tooltip: None,
            });
        }
        LegendSwatch::Shade => {
            scene.rect(Rect { x, y: cy - 5.0, w: SWATCH_W, h: 10.0 }, SHORTFALL, SHORTFALL_OPACITY + 0.1);
        }
        LegendSwatch::Marker(kind) => {
            scene.prims.push(Prim::Fill {
                pts: marker_shape(kind, x + SWATCH_W / 2.0, cy),
                colour: marker_colour(kind),
                opacity: 1.0,
                clip: None,
                tooltip: None,
                class: "",
            });
        }
    }
}

pub(super) fn marker_shape(kind: MarkerKind, x: f64, cy: f64) -> Vec<(f64, f64)> {
    match kind {
        MarkerKind::ScaleOut => vec![(x, cy - 5.0), (x + 5.5, cy + 5.0), (x - 5.5, cy + 5.0)],
        MarkerKind::ScaleIn => vec![(x - 5.5, cy - 5.0), (x + 5.5, cy - 5.0), (x, cy + 5.0)],
        MarkerKind::Spike => vec![(x, cy - 6.0), (x + 5.0, cy), (x, cy + 6.0), (x - 5.0, cy)],
    }
}

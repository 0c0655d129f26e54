//! The laid-out chart: a flat list of drawing primitives in pixel space, and the layout
//! constants they are placed with.

use super::palette::Rgb;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Rect {
    pub(super) x: f64,
    pub(super) y: f64,
    pub(super) w: f64,
    pub(super) h: f64,
}

impl Rect {
    pub(super) fn right(&self) -> f64 {
        self.x + self.w
    }
    pub(super) fn bottom(&self) -> f64 {
        self.y + self.h
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Anchor {
    Start,
    Middle,
    End,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Prim {
    Stroke {
        pts: Vec<(f64, f64)>,
        colour: Rgb,
        width: f64,
        dashed: bool,
        opacity: f64,
        clip: Option<usize>,
        tooltip: Option<String>,
    },
    Fill {
        pts: Vec<(f64, f64)>,
        colour: Rgb,
        opacity: f64,
        clip: Option<usize>,
        tooltip: Option<String>,
        class: &'static str,
    },
    Text {
        x: f64,
        y: f64,
        text: String,
        anchor: Anchor,
        colour: Rgb,
        title: bool,
    },
}

/// The laid-out chart, in pixels; both writers draw exactly this.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Scene {
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) title: String,
    pub(super) clips: Vec<Rect>,
    pub(super) prims: Vec<Prim>,
}

impl Scene {
    pub(super) fn line(&mut self, a: (f64, f64), b: (f64, f64), colour: Rgb, width: f64) {
        self.prims.push(Prim::Stroke {
            pts: vec![a, b],
            colour,
            width,
            dashed: false,
            opacity: 1.0,
            clip: None,
            tooltip: None,
        });
    }

    pub(super) fn rect(&mut self, r: Rect, colour: Rgb, opacity: f64) {
        self.prims.push(Prim::Fill {
            pts: vec![(r.x, r.y), (r.right(), r.y), (r.right(), r.bottom()), (r.x, r.bottom())],
            colour,
            opacity,
            clip: None,
            tooltip: None,
            class: "",
        });
    }

    pub(super) fn text(&mut self, x: f64, y: f64, text: impl Into<String>, anchor: Anchor, colour: Rgb) {
        self.prims.push(Prim::Text { x, y, text: text.into(), anchor, colour, title: false });
    }
}

/// Pixels per character used for layout: the SVG's 11 px monospace advances about 6.6 px.
pub(super) const CHAR_W: f64 = 6.6;
pub(super) const PAD: f64 = 10.0;
pub(super) const TITLE_H: f64 = 24.0;
pub(super) const LEGEND_ROW_H: f64 = 16.0;
pub(super) const MARKER_STRIP_H: f64 = 16.0;
pub(super) const PANEL_GAP: f64 = 12.0;
pub(super) const TIME_LABEL_H: f64 = 18.0;
pub(super) const RIGHT_MARGIN: f64 = 24.0;
pub(super) const SWATCH_W: f64 = 20.0;

pub(super) fn text_width(s: &str) -> f64 {
    s.chars().count() as f64 * CHAR_W
}

//! Colours: a colour-blind-safe palette for series and fixed colours for ink, axes and marks.

use super::MarkerKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rgb(u8, u8, u8);

impl Rgb {
    pub(super) fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

/// Okabe–Ito, reordered so the first colours contrast best on white; yellow is last because
/// thin yellow lines vanish on a white background.
pub(super) const PALETTE: [Rgb; 8] = [
    Rgb(0x00, 0x72, 0xb2), // blue
    Rgb(0xd5, 0x5e, 0x00), // vermillion
    Rgb(0x00, 0x9e, 0x73), // bluish green
    Rgb(0xcc, 0x79, 0xa7), // reddish purple
    Rgb(0xe6, 0x9f, 0x00), // orange
    Rgb(0x56, 0xb4, 0xe9), // sky blue
    Rgb(0x00, 0x00, 0x00), // black
    Rgb(0xf0, 0xe4, 0x42), // yellow
];
pub(super) const WHITE: Rgb = Rgb(0xff, 0xff, 0xff);
pub(super) const INK: Rgb = Rgb(0x1a, 0x1a, 0x1a);
pub(super) const MUTED: Rgb = Rgb(0x55, 0x55, 0x55);
pub(super) const AXIS: Rgb = Rgb(0x88, 0x88, 0x88);
pub(super) const GRID: Rgb = Rgb(0xe6, 0xe6, 0xe6);
pub(super) const SHORTFALL: Rgb = Rgb(0xd5, 0x5e, 0x00);
pub(super) const SHORTFALL_OPACITY: f64 = 0.22;
pub(super) const AREA_OPACITY: f64 = 0.18;
/// The band of a dense series' lowest to highest sample per pixel column: light enough that the
/// line through it reads first, dark enough to see a lone peak.
pub(super) const ENVELOPE_OPACITY: f64 = 0.3;
/// The target line of a metric panel: dark green, apart from every palette colour.
pub(super) const TARGET: Rgb = Rgb(0x11, 0x77, 0x33);
/// The limit line of a metric panel: dark red, the colour of "too much".
pub(super) const LIMIT: Rgb = Rgb(0xa5, 0x1d, 0x2d);

pub(super) fn marker_colour(kind: MarkerKind) -> Rgb {
    match kind {
        MarkerKind::ScaleOut => Rgb(0x11, 0x77, 0x33),
        MarkerKind::ScaleIn => Rgb(0x00, 0x5a, 0x9c),
        MarkerKind::Spike => Rgb(0xc0, 0x39, 0x2b),
    }
}

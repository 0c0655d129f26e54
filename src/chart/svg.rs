//! The SVG writer: the scene as a standalone SVG document.

use super::scene::{Anchor, Prim, Scene};
use std::fmt::Write as _;

const FONT: &str = "ui-monospace,'DejaVu Sans Mono',Menlo,Consolas,monospace";

pub(super) fn write(scene: &Scene) -> String {
    let mut out = String::with_capacity(64 * 1024);
    // Clip ids are document-global; deriving them from the content keeps two charts on one
    // dashboard page from borrowing each other's clip rectangles while staying deterministic.
    let id = format!("ebf{:08x}", fnv1a(format!("{}|{}|{}|{:?}", scene.title, scene.width, scene.height, scene.clips)));
    let _ = writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="{FONT}" font-size="11">"#,
        w = scene.width,
        h = scene.height,
    );
    let _ = writeln!(out, "<title>{}</title>", escape(&scene.title));
    out.push_str("<defs>");
    for (i, r) in scene.clips.iter().enumerate() {
        let _ = write!(
            out,
            r#"<clipPath id="{id}-c{i}"><rect x="{}" y="{}" width="{}" height="{}"/></clipPath>"#,
            num(r.x),
            num(r.y),
            num(r.w),
            num(r.h + 1.0)
        );
    }
    out.push_str("</defs>\n");
    for prim in &scene.prims {
        match prim {
            Prim::Stroke { pts, colour, width, dashed, opacity, clip, tooltip } => {
                out.push_str("<polyline points=\"");
                push_points(&mut out, pts);
                let _ = write!(out, r#"" fill="none" stroke="{}" stroke-width="{}""#, colour.hex(), num(*width));
                if pts.len() > 2 {
                    out.push_str(r#" stroke-linejoin="round""#);
                }
                if *dashed {
                    let _ = write!(out, r#" stroke-dasharray="{} {}""#, num(DASH.0), num(DASH.1));
                }
                if *opacity < 1.0 {
                    let _ = write!(out, r#" stroke-opacity="{}""#, opacity);
                }
                close(&mut out, &id, *clip, tooltip.as_deref(), "polyline");
            }
            Prim::Fill { pts, colour, opacity, clip, tooltip, class } => {
                out.push_str("<polygon points=\"");
                push_points(&mut out, pts);
                let _ = write!(out, r#"" fill="{}""#, colour.hex());
                if *opacity < 1.0 {
                    let _ = write!(out, r#" fill-opacity="{}""#, opacity);
                }
                if !class.is_empty() {
                    let _ = write!(out, r#" class="{class}""#);
                }
                close(&mut out, &id, *clip, tooltip.as_deref(), "polygon");
            }
            Prim::Text { x, y, text, anchor, colour, title } => {
                let _ = write!(out, r#"<text x="{}" y="{}" fill="{}""#, num(*x), num(*y), colour.hex());
                match anchor {
                    Anchor::Start => {}
                    Anchor::Middle => out.push_str(r#" text-anchor="middle""#),
                    Anchor::End => out.push_str(r#" text-anchor="end""#),
                }
                if *title {
                    out.push_str(r#" font-size="14" font-weight="bold""#);
                }
                let _ = writeln!(out, ">{}</text>", escape(text));
            }
        }
    }
    out.push_str("</svg>\n");
    out
}

fn close(out: &mut String, id: &str, clip: Option<usize>, tooltip: Option<&str>, tag: &str) {
    if let Some(c) = clip {
        let _ = write!(out, r#" clip-path="url(#{id}-c{c})""#);
    }
    match tooltip {
        Some(t) => {
            let _ = writeln!(out, "><title>{}</title></{tag}>", escape(t));
        }
        None => out.push_str("/>\n"),
    }
}

fn push_points(out: &mut String, pts: &[(f64, f64)]) {
    for (i, (x, y)) in pts.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{},{}", num(*x), num(*y));
    }
}

/// One decimal, without a trailing ".0": a tenth of a pixel is below what renderers show.
pub(super) fn num(v: f64) -> String {
    let s = format!("{:.1}", v);
    let s = s.strip_suffix(".0").unwrap_or(&s);
    if s == "-0" { "0".to_owned() } else { s.to_owned() }
}

/// Escapes text for XML content and attributes, dropping the control characters that XML 1.0
/// cannot carry at all.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

fn fnv1a(s: String) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Dash pattern of dashed lines, in pixels: (on, off).
pub(super) const DASH: (f64, f64) = (6.0, 4.0);

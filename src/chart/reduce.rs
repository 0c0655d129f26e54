//! Data reduction: the samples that can show, decimated to pixel columns (or, for a series with
//! many samples a column, reduced to each column's range and mean), step corners, and the
//! shortfall polygons between demand and serving.

use super::Series;
use super::layout::Panel;
use super::scene::Rect;

/// The points that can affect the visible range: those inside it plus one neighbour on each
/// side, so lines and steps enter and leave the plot at the right height.
pub(super) fn visible(points: &[(i64, f64)], start: i64, end: i64) -> &[(i64, f64)] {
    let lo = points.partition_point(|p| p.0 < start).saturating_sub(1);
    let hi = (points.partition_point(|p| p.0 <= end) + 1).min(points.len());
    if lo >= hi { &[] } else { &points[lo..hi] }
}

/// Reduces a series to at most the first, minimum, maximum and last sample of each of `columns`
/// pixel columns, splitting it into runs at non-finite values.
///
/// Returns x in column units (0.0 = `start`, `columns` = `end`) and the values unchanged. Keeping
/// the extremes of each column means a one-sample spike survives among any number of samples.
pub(super) fn decimate(points: &[(i64, f64)], start: i64, end: i64, columns: usize) -> Vec<Vec<(f64, f64)>> {
    let span = (i128::from(end) - i128::from(start)).max(1) as f64;
    let cols = columns as f64;
    let x_of = |t: i64| (i128::from(t) - i128::from(start)) as f64 / span * cols;
    let col_of = |x: f64| x.floor().clamp(-1.0, cols) as i64;

    let mut runs = Vec::new();
    let mut run: Vec<(f64, f64)> = Vec::new();
    // The current column's candidates, as indices into `points`.
    let mut group: Vec<usize> = Vec::new();
    let pts = visible(points, start, end);

    let flush = |group: &mut Vec<usize>, run: &mut Vec<(f64, f64)>| {
        if group.is_empty() {
            return;
        }
        let first = group[0];
        let last = group[group.len() - 1];
        let mut min = first;
        let mut max = first;
        for &i in group.iter() {
            if pts[i].1 < pts[min].1 {
                min = i;
            }
            if pts[i].1 > pts[max].1 {
                max = i;
            }
        }
        let mut keep = [first, min, max, last];
        keep.sort_unstable();
        let mut prev = None;
        for i in keep {
            if prev != Some(i) {
                run.push((x_of(pts[i].0), pts[i].1));
                prev = Some(i);
            }
        }
        group.clear();
    };

    let mut current_col = i64::MIN;
    for (i, &(t, v)) in pts.iter().enumerate() {
        if !v.is_finite() {
            flush(&mut group, &mut run);
            if !run.is_empty() {
                runs.push(std::mem::take(&mut run));
            }
            current_col = i64::MIN;
            continue;
        }
        let col = col_of(x_of(t));
        if col != current_col {
            flush(&mut group, &mut run);
            current_col = col;
        }
        group.push(i);
    }
    flush(&mut group, &mut run);
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

/// Samples per pixel column (for a step series, changes of value per column) above which a
/// series is drawn as its range per column and one line through it ([`envelope`]): past that,
/// the first, lowest, highest and last sample of every column that [`decimate`] keeps zigzag
/// from the bottom to the top of the noise in each column, and months of samples fill the plot
/// as one solid band.
pub(super) const DENSE_PER_COLUMN: usize = 3;

/// Whether `points` are too many for `columns` to draw as a line (see [`DENSE_PER_COLUMN`]). A
/// step series counts its changes, not its samples: sizes are sampled every tick and change
/// rarely, and a step line stays readable until it changes about once a column.
pub(super) fn is_dense(points: &[(i64, f64)], start: i64, end: i64, columns: usize, stepped: bool) -> bool {
    let pts = visible(points, start, end);
    if stepped {
        pts.windows(2).filter(|w| w[1].1.is_finite() && w[0].1 != w[1].1).count() > columns
    } else {
        pts.iter().filter(|p| p.1.is_finite()).count() > DENSE_PER_COLUMN.saturating_mul(columns)
    }
}

/// One pixel column of a dense series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Column {
    /// Middle of the column, in column units (0.0 = `start`).
    pub(super) x: f64,
    /// Lowest sample in the column.
    pub(super) min: f64,
    /// Highest sample in the column.
    pub(super) max: f64,
    /// What the line shows: the mean of the column's samples, or for a step series the value it
    /// holds at the column's end (its last sample).
    pub(super) line: f64,
}

/// Running figures of the column being read.
struct Acc {
    min: f64,
    max: f64,
    mean: f64,
    n: f64,
    last: f64,
}

impl Acc {
    fn new(v: f64) -> Self {
        Acc { min: v, max: v, mean: v, n: 1.0, last: v }
    }

    fn add(&mut self, v: f64) {
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.n += 1.0;
        // Incremental, so a column of values near f64::MAX does not overflow a sum.
        self.mean += (v - self.mean) / self.n;
        self.last = v;
    }

    fn column(&self, c: i64, stepped: bool) -> Column {
        Column { x: c as f64 + 0.5, min: self.min, max: self.max, line: if stepped { self.last } else { self.mean } }
    }
}

/// A series reduced to one [`Column`] per pixel column that has samples, for a series too
/// dense to draw sample by sample: the band from each column's lowest to its highest sample
/// keeps a one-sample peak visible, and the line through the means stays one point a column, so
/// seven months read as a shape rather than a block. Runs split where non-finite values leave a
/// whole column without samples; a shorter gap is narrower than a pixel and would only cut the
/// line into hundreds of pieces. The neighbours just outside the range get columns -1 and
/// `columns`, as in [`decimate`].
pub(super) fn envelope(points: &[(i64, f64)], start: i64, end: i64, columns: usize, stepped: bool) -> Vec<Vec<Column>> {
    let span = (i128::from(end) - i128::from(start)).max(1) as f64;
    let cols = columns as f64;
    let col_of = |t: i64| ((i128::from(t) - i128::from(start)) as f64 / span * cols).floor().clamp(-1.0, cols) as i64;
    let mut runs = Vec::new();
    let mut run: Vec<Column> = Vec::new();
    let mut acc: Option<(i64, Acc)> = None;
    let mut gap = false;
    for &(t, v) in visible(points, start, end) {
        if !v.is_finite() {
            gap = true;
            continue;
        }
        let c = col_of(t);
        if acc.as_ref().is_some_and(|(at, _)| *at == c) {
            if let Some((_, a)) = acc.as_mut() {
                a.add(v);
            }
        } else if let Some((prev, a)) = acc.replace((c, Acc::new(v))) {
            run.push(a.column(prev, stepped));
            if gap && c > prev + 1 {
                runs.push(std::mem::take(&mut run));
            }
        }
        gap = false;
    }
    if let Some((c, a)) = acc.take() {
        run.push(a.column(c, stepped));
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

/// Turns sample points into the corners of a step line that holds each value until the next.
pub(super) fn stepped(pts: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(pts.len() * 2);
    for (i, &p) in pts.iter().enumerate() {
        if i > 0 {
            out.push((p.0, pts[i - 1].1));
        }
        out.push(p);
    }
    out
}

pub(super) fn round_pts(pts: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    pts.into_iter().map(|(x, y)| ((x * 10.0).round() / 10.0, (y * 10.0).round() / 10.0)).collect()
}

/// Drops points that add nothing at output precision: repeats, and the middle of runs along
/// one horizontal or vertical line (flat stretches are most of a step series).
pub(super) fn drop_flat(pts: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(pts.len());
    for p in pts {
        if out.last() == Some(&p) {
            continue;
        }
        if out.len() >= 2 {
            let a = out[out.len() - 2];
            let b = out[out.len() - 1];
            let horizontal = a.1 == b.1 && b.1 == p.1 && (a.0 <= b.0) == (b.0 <= p.0);
            let vertical = a.0 == b.0 && b.0 == p.0 && (a.1 <= b.1) == (b.1 <= p.1);
            if horizontal || vertical {
                out.pop();
            }
        }
        out.push(p);
    }
    out
}

/// The value a series has at `t` when read as a step line: the last sample at or before `t`.
pub(super) fn step_value_at(points: &[(i64, f64)], t: f64) -> Option<f64> {
    let i = points.partition_point(|p| (p.0 as f64) <= t);
    if i == 0 {
        return None;
    }
    let v = points[i - 1].1;
    v.is_finite().then_some(v)
}

/// The polygons between the demand line and the serving step line wherever demand is higher,
/// one pixel column at a time; a column's demand is its highest sample so short peaks count.
pub(super) fn shortfall_polygons(
    demand: &Series,
    serving: &Series,
    start: i64,
    end: i64,
    r: Rect,
    p: &Panel<'_>,
) -> Vec<Vec<(f64, f64)>> {
    let columns = r.w.ceil().max(1.0) as usize;
    let span = (i128::from(end) - i128::from(start)) as f64;
    let t_at = |c: f64| start as f64 + c / columns as f64 * span;
    let d = &demand.points;
    let mut polys = Vec::new();
    let mut top: Vec<(f64, f64)> = Vec::new();
    let mut bottom: Vec<(f64, f64)> = Vec::new();
    let mut finish = |top: &mut Vec<(f64, f64)>, bottom: &mut Vec<(f64, f64)>| {
        if !top.is_empty() {
            let mut poly = std::mem::take(top);
            poly.extend(bottom.drain(..).rev());
            polys.push(drop_flat(round_pts(poly)));
        }
    };
    for c in 0..columns {
        let (t0, t1) = (t_at(c as f64), t_at(c as f64 + 1.0));
        let tc = (t0 + t1) / 2.0;
        let lo = d.partition_point(|q| (q.0 as f64) < t0);
        let hi = d.partition_point(|q| (q.0 as f64) < t1);
        let peak = d[lo..hi]
            .iter()
            .map(|q| q.1)
            .filter(|v| v.is_finite())
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
        let dv = peak.or_else(|| interpolate(d, tc));
        let sv = step_value_at(&serving.points, tc);
        match (dv, sv) {
            (Some(dv), Some(sv)) if dv > sv => {
                let x0 = r.x + c as f64 * r.w / columns as f64;
                let x1 = r.x + (c + 1) as f64 * r.w / columns as f64;
                let (yd, ys) = (p.y_px(dv.min(p.y_hi)), p.y_px(sv.max(p.y_lo)));
                top.push((x0, yd));
                top.push((x1, yd));
                bottom.push((x0, ys));
                bottom.push((x1, ys));
            }
            _ => finish(&mut top, &mut bottom),
        }
    }
    finish(&mut top, &mut bottom);
    polys
}

/// Linear interpolation between the samples around `t`; none across a gap or outside the data.
pub(super) fn interpolate(points: &[(i64, f64)], t: f64) -> Option<f64> {
    let i = points.partition_point(|p| (p.0 as f64) <= t);
    if i == 0 || i == points.len() {
        return None;
    }
    let (a, b) = (points[i - 1], points[i]);
    if !a.1.is_finite() || !b.1.is_finite() {
        return None;
    }
    if b.0 == a.0 {
        return Some(a.1);
    }
    Some(a.1 + (b.1 - a.1) * (t - a.0 as f64) / (b.0 as f64 - a.0 as f64))
}

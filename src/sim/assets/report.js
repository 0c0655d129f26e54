// The zoomable chart of `ebbflow simulate --html`: no libraries, nothing fetched.
//
// The report embeds each series as the lowest and highest value per time bucket
// (src/chart/embed.rs). This script draws the range asked for: it reduces the buckets in the
// range to pixel columns, again keeping each column's lowest and highest value, so a one-sample
// peak shows at every zoom level; with more than a few samples to a column (weeks and more) each
// column's range is drawn as a light band with one line through it. Each panel has its own value
// scale, fitted to what is in the range, with the metric's target and limit drawn and named.
//
// The range lives in the URL (#from=...&to=..., or #range=day|week|all with an optional from),
// so a zoomed view can be linked; the buttons, the from/to fields and drag-to-zoom all set it.
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('chart-data').textContent);
  var note = document.getElementById('chart-noscript');
  if (note) note.parentNode.removeChild(note);
  var root = document.getElementById('zoom');
  var NS = 'http://www.w3.org/2000/svg';
  var W = 1200, LEFT = 64, RIGHT = 24, HEAD = 20, STRIP = 18, AXIS = 24, GAP = 12, TOP_H = 250, METRIC_H = 160;
  var MIN = 6e4, DAY = 864e5, WEEK = 7 * DAY;
  // As src/chart: samples per pixel column past which a series is drawn as its range and a line,
  // and the height of a line's label, baseline to baseline.
  var DENSE_PER_COLUMN = 3, LABEL_H = 12;
  var RANGES = { day: DAY, week: WEEK };
  var N = Math.floor((D.end - D.start) / D.bucket) + 1;
  var view = { from: D.start, to: D.end };

  function el(tag, attrs, parent) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function iso(ms) { return new Date(ms).toISOString().slice(0, 16).replace('T', ' '); }
  // Epoch milliseconds, or a date and time that is UTC: written without a zone (as the fields
  // show it) or with Z or an offset. Anything else is refused rather than read as local time.
  function parseTime(s) {
    try { s = decodeURIComponent(s || ''); } catch (e) { return null; }
    s = s.trim();
    if (/^-?\d{9,}$/.test(s)) return +s;
    var m = /^(\d{4}-\d\d-\d\d)[ T](\d{1,2}):(\d\d)(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?$/.exec(s);
    if (!m) return null;
    var t = Date.parse(m[1] + 'T' + (m[2].length === 1 ? '0' : '') + m[2] + ':' + m[3] + (m[4] || '') + (m[6] || 'Z'));
    return isNaN(t) ? null : t;
  }
  function fmt(v, step) {
    var d = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
    return v.toFixed(d);
  }
  // As the SVG chart writes a value (chart/draw.rs short_value): four significant digits, but
  // never fewer than the whole number, trailing zeros dropped.
  function short(v) {
    var d = v === 0 || !isFinite(v) ? 0 : Math.max(0, Math.min(6, 3 - Math.floor(Math.log10(Math.abs(v)))));
    var s = v.toFixed(d);
    if (s.indexOf('.') >= 0) s = s.replace(/0+$/, '').replace(/\.$/, '');
    return s === '-0' ? '0' : s;
  }

  // Keeps a range inside the data and at least a minute long.
  function clamp(from, to) {
    var span = Math.max(MIN, Math.min(to - from, D.end - D.start));
    if (from < D.start) from = D.start;
    if (from + span > D.end) from = Math.max(D.start, D.end - span);
    return { from: from, to: from + span };
  }
  function fromHash() {
    var q = {};
    location.hash.replace(/^#/, '').split('&').forEach(function (kv) {
      var i = kv.indexOf('=');
      if (i > 0) q[kv.slice(0, i)] = kv.slice(i + 1);
    });
    var from = parseTime(q.from), to = parseTime(q.to), len = Object.prototype.hasOwnProperty.call(RANGES, q.range) ? RANGES[q.range] : 0;
    if (len) return clamp(from === null ? D.end - len : from, (from === null ? D.end - len : from) + len);
    if (from !== null && to !== null && to > from) return clamp(from, to);
    return { from: D.start, to: D.end };
  }
  function show(from, to) {
    view = clamp(from, to);
    var h = '#from=' + new Date(view.from).toISOString() + '&to=' + new Date(view.to).toISOString();
    if (view.from === D.start && view.to === D.end) h = '#range=all';
    // A sandboxed viewer (a CI artifact page) may refuse history changes; the chart still draws.
    try { history.replaceState(null, '', h); } catch (e) { /* keep the view without the URL */ }
    render();
  }

  // One series over the range: pixel columns with their lowest and highest value (and what a
  // dense view's line shows), in runs broken where the data has a gap.
  function columns(s, x0, i0, i1) {
    var runs = [], run = [], col = null;
    function flush() {
      if (col) run.push(col);
      col = null;
    }
    for (var i = i0; i <= i1; i++) {
      var lo = s.lo[i], hi = s.hi ? s.hi[i] : lo;
      if (lo === null || lo === undefined) {
        if (s.stepped && col === null && run.length === 0) continue;
        flush();
        if (run.length) runs.push(run);
        run = [];
        continue;
      }
      // A bucket of one sample is drawn at that sample's time; a wider one at its middle.
      var t = D.start + (s.stepped || D.perSample ? i : i + 0.5) * D.bucket;
      var c = Math.floor(x0(t));
      if (col && col.c !== c) flush();
      if (!col) col = { c: c, x: x0(t), lo: lo, hi: hi, loAt: i, hiAt: i, n: 0, sum: 0, last: hi };
      if (lo < col.lo) { col.lo = lo; col.loAt = i; }
      if (hi > col.hi) { col.hi = hi; col.hiAt = i; }
      // For the line of a dense view: the mean of the buckets' middles, and the newest bucket.
      col.n += 1; col.sum += (lo + hi) / 2; col.last = hi;
    }
    flush();
    if (run.length) runs.push(run);
    return runs;
  }

  // Baselines for the labels of horizontal lines at rows ys in a plot from top to bottom, as the
  // SVG chart places them (chart/draw.rs label_baselines): a line alone is named just above it
  // (below it at the top of the plot); lines closer than a label's height share their labels'
  // room, stacked in the lines' order: the top line's above it and the others below the bottom
  // line, else all above, else all below; then each label a label's height under the one above
  // it, all inside the plot. Target and limit lines a few pixels apart no longer overprint.
  function labelBaselines(ys, top, bottom) {
    var fits = function (b) { return b - 10 >= top && b + 3 <= bottom; };
    var order = ys.map(function (y, i) { return i; }).sort(function (a, b) { return ys[a] - ys[b]; });
    var clusters = [], out = ys.map(function () { return 0; });
    order.forEach(function (i) {
      var c = clusters[clusters.length - 1];
      if (c && ys[i] - ys[c[c.length - 1]] < LABEL_H + 4) c.push(i); else clusters.push([i]);
    });
    clusters.forEach(function (c) {
      var first = ys[c[0]], last = ys[c[c.length - 1]], n = c.length;
      var split = c.map(function (i, j) { return j === 0 ? first - 4 : last + LABEL_H * j; });
      var above = c.map(function (i, j) { return first - 4 - LABEL_H * (n - 1 - j); });
      var below = c.map(function (i, j) { return last + LABEL_H * (j + 1); });
      var chosen = [split, above].filter(function (b) { return b.every(fits); })[0] || below;
      c.forEach(function (i, j) { out[i] = chosen[j]; });
    });
    for (var k = 1; k < order.length; k++) out[order[k]] = Math.max(out[order[k]], out[order[k - 1]] + LABEL_H);
    var limit = bottom - 3;
    for (k = order.length - 1; k >= 0; k--) {
      out[order[k]] = Math.min(out[order[k]], limit);
      limit = out[order[k]] - LABEL_H;
    }
    return out;
  }

  function niceStep(raw) {
    var e = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / e;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * e;
  }
  var TIME_STEPS = [MIN, 5 * MIN, 15 * MIN, 30 * MIN, 36e5, 3 * 36e5, 6 * 36e5, 12 * 36e5, DAY, 2 * DAY, WEEK, 2 * WEEK, 4 * WEEK];

  function render() {
    var from = view.from, to = view.to, span = to - from;
    var plotW = W - LEFT - RIGHT;
    var x = function (t) { return LEFT + (t - from) / span * plotW; };
    var i0 = Math.max(0, Math.floor((from - D.start) / D.bucket) - 1);
    var i1 = Math.min(N - 1, Math.ceil((to - D.start) / D.bucket) + 1);
    var inView = function (t) { return t >= from && t <= to; };
    var markers = D.markers.filter(function (m) { return inView(m.t); });
    var H = 30 + TOP_H + HEAD + (markers.length ? STRIP : 0) + D.panels.slice(1).length * (METRIC_H + HEAD + GAP) + AXIS;
    var svg = el('svg', { id: 'zoom-chart', viewBox: '0 0 ' + W + ' ' + H, width: W, height: H,
      'font-family': 'ui-monospace,Menlo,Consolas,monospace', 'font-size': 11,
      'data-from': from, 'data-to': to });
    el('rect', { x: 0, y: 0, width: W, height: H, fill: '#fff' }, svg);
    var title = el('text', { x: 10, y: 18, 'font-size': 14, 'font-weight': 'bold', fill: '#1a1a1a' }, svg);
    title.textContent = D.title;
    var range = el('text', { x: W - 10, y: 18, 'text-anchor': 'end', fill: '#555' }, svg);
    range.textContent = iso(from) + ' to ' + iso(to) + ' UTC';
    var defs = el('defs', {}, svg);
    // More than a few samples to a pixel column: each column's range as a band and one line
    // through it (as the SVG chart draws a long span), not a zigzag from its lowest to its
    // highest value in every column, which fills the plot as a solid block.
    var dense = span / plotW / Math.max(1, D.spacing || D.bucket) > DENSE_PER_COLUMN;
    var y = 30, plots = [];
    var tstep = TIME_STEPS.filter(function (s) { return span / s <= 10; })[0] || 8 * WEEK;
    var ticks = [];
    for (var t = Math.ceil(from / tstep) * tstep; t <= to; t += tstep) ticks.push(t);

    D.panels.forEach(function (p, pi) {
      var h = pi === 0 ? TOP_H : METRIC_H;
      var head = y, top = y + HEAD, bottom = top + h;
      // Legend: the label on the left, series names on the right.
      var label = el('text', { x: 10, y: head + 13, fill: '#1a1a1a', 'font-weight': 'bold' }, svg);
      label.textContent = p.label;
      var lx = W - RIGHT;
      p.series.slice().reverse().forEach(function (s) {
        var tx = el('text', { x: lx, y: head + 13, 'text-anchor': 'end', fill: '#1a1a1a' }, svg);
        tx.textContent = s.name;
        lx -= s.name.length * 6.6 + 4;
        el('line', { x1: lx - 18, x2: lx, y1: head + 9, y2: head + 9, stroke: s.colour, 'stroke-width': 2,
          'stroke-dasharray': s.style === 'dashed' ? '6 4' : 'none' }, svg);
        lx -= 30;
      });
      // The panel's own scale: what is in the range, its target and limit, and zero.
      var lo = 0, hi = -Infinity;
      p.series.forEach(function (s) {
        for (var i = i0; i <= i1; i++) {
          var t = D.start + (i + 0.5) * D.bucket, a = s.lo[i], b = s.hi ? s.hi[i] : a;
          if (a === null || a === undefined || !inView(t)) continue;
          lo = Math.min(lo, a); hi = Math.max(hi, b);
        }
      });
      [p.target, p.limit].forEach(function (v) { if (v !== null && v !== undefined) { lo = Math.min(lo, v); hi = Math.max(hi, v); } });
      if (!isFinite(hi) || hi - lo <= 0) hi = lo + 1;
      var step = niceStep((hi - lo) * 1.03 / 4);
      var ylo = Math.floor(lo / step) * step, yhi = Math.ceil(hi * 1.03 / step) * step;
      var yv = function (v) { return bottom - (v - ylo) / (yhi - ylo) * h; };
      // At most a dozen ticks, however degenerate the values (a step of 0 or of Infinity).
      for (var k = 0, v = ylo; k <= 12 && v <= yhi + step / 2; k++, v += step) {
        var gy = Math.round(yv(v)) + 0.5;
        el('line', { x1: LEFT, x2: W - RIGHT, y1: gy, y2: gy, stroke: '#e6e6e6' }, svg);
        var tl = el('text', { x: LEFT - 6, y: gy + 4, 'text-anchor': 'end', fill: '#555' }, svg);
        tl.textContent = fmt(v, step);
      }
      ticks.forEach(function (t) {
        var gx = Math.round(x(t)) + 0.5;
        el('line', { x1: gx, x2: gx, y1: top, y2: bottom, stroke: '#e6e6e6' }, svg);
      });
      var clip = el('clipPath', { id: 'zc' + pi }, defs);
      el('rect', { x: LEFT, y: top, width: plotW, height: h + 1 }, clip);
      var g = el('g', { 'clip-path': 'url(#zc' + pi + ')' }, svg);
      var drawn = p.series.map(function (s) { return columns(s, x, i0, i1); });
      if (pi === 0 && D.shade) shade(g, drawn[D.shade[0]], drawn[D.shade[1]], yv, plotW);
      var order = p.series.map(function (s, i) { return i; }).sort(function (a, b) {
        var rank = { area: 0, dashed: 1, step: 2, line: 3 };
        return rank[p.series[a].style] - rank[p.series[b].style];
      });
      order.forEach(function (si) { draw(g, p.series[si], drawn[si], yv, bottom, pi, dense); });
      var lines = [['target', p.target, p.lineColours[0]], ['limit', p.limit, p.lineColours[1]]].filter(function (l) {
        return l[1] !== null && l[1] !== undefined;
      });
      var ys = lines.map(function (l) { return Math.round(yv(l[1])) + 0.5; });
      var baselines = labelBaselines(ys, top, bottom);
      lines.forEach(function (l, li) {
        var ly = ys[li];
        el('line', { 'class': l[0], x1: LEFT, x2: W - RIGHT, y1: ly, y2: ly, stroke: l[2], 'stroke-width': 1.4,
          'stroke-dasharray': '6 4', 'data-value': l[1] }, g);
        var tx = el('text', { 'class': l[0] + '-label', x: W - RIGHT - 4, y: baselines[li],
          'text-anchor': 'end', fill: l[2], stroke: '#fff', 'stroke-width': 3, 'paint-order': 'stroke' }, svg);
        tx.textContent = l[0] + ' ' + short(l[1]);
      });
      el('line', { x1: LEFT + 0.5, x2: LEFT + 0.5, y1: top, y2: bottom + 0.5, stroke: '#888' }, svg);
      el('line', { x1: LEFT, x2: W - RIGHT, y1: bottom + 0.5, y2: bottom + 0.5, stroke: '#888' }, svg);
      plots.push({ top: top, bottom: bottom });
      y = bottom + (pi === 0 && markers.length ? STRIP : 0) + GAP;
      if (pi === 0) markers.forEach(function (m) { marker(svg, m, x(m.t), bottom + 1 + STRIP / 2); });
    });
    var axisY = plots[plots.length - 1].bottom;
    ticks.forEach(function (t) {
      var text = tstep >= DAY ? iso(t).slice(0, 10) : iso(t).slice(5), half = text.length * 3.3;
      var tl = el('text', { x: Math.max(half + 4, Math.min(W - half - 4, x(t))), y: axisY + 16, 'text-anchor': 'middle', fill: '#555' }, svg);
      tl.textContent = text;
    });
    brush(svg, plots[0].top, axisY);
    root.replaceChildren(svg);
    var days = span / DAY;
    document.getElementById('zoom-range').textContent = iso(from) + ' to ' + iso(to) + ' UTC (' +
      (days >= 1 ? days.toFixed(1) + ' days' : (span / 36e5).toFixed(1) + ' hours') + '), ' +
      Math.round(D.bucket / 6e4) + '-minute buckets; drag across the chart to zoom';
    document.getElementById('zoom-from').value = iso(from);
    document.getElementById('zoom-to').value = iso(to);
  }

  // A series as polylines (and an area fill); data-points and data-max say what was drawn, so a
  // test (or a person in the inspector) can check that peaks survived the reduction. Dense: each
  // column's range as a band, and one point a column for the line (the mean of the column's
  // buckets; for a step, its newest bucket), as the SVG chart draws it.
  function draw(g, s, runs, yv, bottom, pi, dense) {
    var count = 0, max = -Infinity, min = Infinity;
    var group = el('g', { 'class': 'series', 'data-panel': pi, 'data-series': s.name, 'data-dense': dense ? 1 : 0 }, g);
    var pt = function (q) { return q[0].toFixed(1) + ',' + yv(q[1]).toFixed(1); };
    if (dense) {
      runs.forEach(function (run) {
        var edge = function (key) { return run.map(function (c) { return [c.c + 0.5, c[key]]; }); };
        var lo = edge('lo'), hi = edge('hi');
        if (s.style === 'area') {
          el('polygon', { points: lo.map(pt).join(' ') + ' ' + lo[lo.length - 1][0].toFixed(1) + ',' + bottom + ' ' +
            lo[0][0].toFixed(1) + ',' + bottom, fill: s.colour, 'fill-opacity': 0.18 }, group);
        }
        var band = el('polygon', { 'class': 'envelope', points: hi.concat(lo.reverse()).map(pt).join(' '),
          fill: s.colour, 'fill-opacity': 0.3 }, group);
        el('title', {}, band).textContent = s.name + ': lowest to highest in each pixel column; the line is ' +
          (s.stepped ? 'the newest value in each' : 'their mean');
        var pts = [];
        run.forEach(function (c) {
          var q = [c.c + 0.5, s.stepped ? c.last : c.sum / c.n];
          if (s.stepped && pts.length) pts.push([q[0], pts[pts.length - 1][1]]);
          pts.push(q);
          if (c.x >= LEFT && c.x <= W - RIGHT) {
            count += 1;
            max = Math.max(max, c.hi);
            min = Math.min(min, c.lo);
          }
        });
        var line = el('polyline', { points: pts.map(pt).join(' '), fill: 'none', stroke: s.colour,
          'stroke-width': s.style === 'step' ? 2 : 1.6, 'stroke-linejoin': 'round',
          'stroke-dasharray': s.style === 'dashed' ? '6 4' : 'none' }, group);
        el('title', {}, line).textContent = s.name;
      });
      group.setAttribute('data-points', count);
      group.setAttribute('data-max', count ? max : '');
      group.setAttribute('data-min', count ? min : '');
      return;
    }
    runs.forEach(function (run) {
      var pts = [];
      run.forEach(function (c) {
        var a = [c.x, c.lo], b = [c.x, c.hi];
        var both = c.hi !== c.lo ? (c.loAt <= c.hiAt ? [a, b] : [b, a]) : [a];
        both.forEach(function (q) {
          if (s.stepped && pts.length) pts.push([q[0], pts[pts.length - 1][1]]);
          pts.push(q);
        });
        if (c.x >= LEFT && c.x <= W - RIGHT) {
          count += both.length;
          max = Math.max(max, c.hi);
          min = Math.min(min, c.lo);
        }
      });
      var str = pts.map(function (q) { return q[0].toFixed(1) + ',' + yv(q[1]).toFixed(1); }).join(' ');
      if (s.style === 'area' && pts.length) {
        el('polygon', { points: str + ' ' + pts[pts.length - 1][0].toFixed(1) + ',' + bottom + ' ' + pts[0][0].toFixed(1) + ',' + bottom,
          fill: s.colour, 'fill-opacity': 0.18 }, group);
      }
      var line = el('polyline', { points: str, fill: 'none', stroke: s.colour, 'stroke-width': s.style === 'step' ? 2 : 1.6,
        'stroke-linejoin': 'round', 'stroke-dasharray': s.style === 'dashed' ? '6 4' : 'none' }, group);
      el('title', {}, line).textContent = s.name;
    });
    group.setAttribute('data-points', count);
    group.setAttribute('data-max', count ? max : '');
    group.setAttribute('data-min', count ? min : '');
  }

  // Demand above serving, per pixel column, as one path of thin rectangles.
  function shade(g, demand, serving, yv, plotW) {
    var d = [], s = [], held = null, hd = null;
    var cols = function (runs, out, key) {
      runs.forEach(function (run) { run.forEach(function (c) { if (c.c >= LEFT && c.c < LEFT + plotW) out[c.c - LEFT] = c[key]; }); });
    };
    cols(demand, d, 'hi');
    cols(serving, s, 'lo');
    var path = '';
    for (var c = 0; c < plotW; c++) {
      if (s[c] !== undefined) held = s[c];
      if (d[c] !== undefined) hd = d[c];
      if (held !== null && hd !== null && hd > held) {
        path += 'M' + (LEFT + c) + ' ' + yv(hd).toFixed(1) + 'h1V' + yv(held).toFixed(1) + 'h-1Z';
      }
    }
    if (path) el('path', { 'class': 'shortfall', d: path, fill: '#d55e00', 'fill-opacity': 0.22 }, g);
  }

  function marker(svg, m, mx, cy) {
    var colour = { out: '#117733', 'in': '#005a9c', spike: '#c0392b' }[m.kind];
    var pts = m.kind === 'out' ? [[mx, cy - 5], [mx + 5.5, cy + 5], [mx - 5.5, cy + 5]]
      : m.kind === 'in' ? [[mx - 5.5, cy - 5], [mx + 5.5, cy - 5], [mx, cy + 5]]
        : [[mx, cy - 6], [mx + 5, cy], [mx, cy + 6], [mx - 5, cy]];
    var p = el('polygon', { 'class': 'marker ' + m.kind, points: pts.map(function (q) { return q.join(','); }).join(' '), fill: colour }, svg);
    el('title', {}, p).textContent = m.label + ' at ' + iso(m.t) + ' UTC';
  }

  // Drag across the plots to zoom into that stretch of time.
  var drag = null;
  function brush(svg, top, bottom) {
    var sel = el('rect', { x: 0, y: top, width: 0, height: bottom - top, fill: '#0072b2', 'fill-opacity': 0.12, visibility: 'hidden' }, svg);
    var area = el('rect', { 'class': 'brush', x: LEFT, y: top, width: W - LEFT - RIGHT, height: bottom - top, fill: 'transparent', cursor: 'crosshair' }, svg);
    area.addEventListener('mousedown', function (e) {
      drag = { svg: svg, sel: sel, start: pixel(svg, e) };
      e.preventDefault();
    });
  }
  function pixel(svg, e) {
    var r = svg.getBoundingClientRect();
    return Math.max(LEFT, Math.min(W - RIGHT, (e.clientX - r.left) * W / r.width));
  }
  window.addEventListener('mousemove', function (e) {
    if (!drag) return;
    var now = pixel(drag.svg, e);
    drag.sel.setAttribute('x', Math.min(drag.start, now));
    drag.sel.setAttribute('width', Math.abs(now - drag.start));
    drag.sel.setAttribute('visibility', 'visible');
  });
  window.addEventListener('mouseup', function (e) {
    if (!drag) return;
    var end = pixel(drag.svg, e), a = Math.min(drag.start, end), b = Math.max(drag.start, end);
    drag.sel.setAttribute('visibility', 'hidden');
    drag = null;
    var time = function (px) { return view.from + (px - LEFT) / (W - LEFT - RIGHT) * (view.to - view.from); };
    if (b - a >= 4) show(time(a), time(b));
  });

  document.getElementById('zoom-tools').hidden = false;
  document.querySelectorAll('#zoom-tools button[data-range]').forEach(function (b) {
    b.addEventListener('click', function () {
      var r = b.getAttribute('data-range'), len = RANGES[r];
      if (r === 'all') return show(D.start, D.end);
      var mid = (view.from + view.to) / 2;
      show(mid - len / 2, mid + len / 2);
    });
  });
  document.querySelectorAll('#zoom-tools button[data-pan]').forEach(function (b) {
    b.addEventListener('click', function () {
      var d = (view.to - view.from) * +b.getAttribute('data-pan');
      show(view.from + d, view.to + d);
    });
  });
  document.getElementById('zoom-apply').addEventListener('click', function () {
    var f = parseTime(document.getElementById('zoom-from').value), t = parseTime(document.getElementById('zoom-to').value);
    var err = document.getElementById('zoom-error');
    if (f === null || t === null || t <= f) {
      err.textContent = 'from and to: two UTC times as YYYY-MM-DD HH:MM, from before to';
      return;
    }
    err.textContent = '';
    show(f, t);
  });
  window.addEventListener('hashchange', function () { view = fromHash(); render(); });
  view = fromHash();
  render();
})();

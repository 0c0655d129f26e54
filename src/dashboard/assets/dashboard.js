// ebbflow dashboard: fetches /api/policies every few seconds and redraws one card per policy.
// Text goes in with textContent only, so nothing from a policy is ever parsed as HTML.
"use strict";

const REFRESH_MS = 5000;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function human(secs) {
  if (secs === undefined || secs === null) return "–";
  const s = Math.max(0, Math.ceil(secs));
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m";
  if (s < 86400) {
    const m = Math.floor((s % 3600) / 60);
    return Math.floor(s / 3600) + "h" + (m ? m + "m" : "");
  }
  const h = Math.floor((s % 86400) / 3600);
  return Math.floor(s / 86400) + "d" + (h ? h + "h" : "");
}

function num(v) {
  if (v === undefined || v === null || !isFinite(v)) return "–";
  const a = Math.abs(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1 || a === 0) return v.toFixed(2);
  return v.toFixed(3);
}

function clock(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return iso;
  return d.toISOString().slice(11, 16) + " UTC";
}

function ago(iso, nowMs) {
  const t = Date.parse(iso);
  return isNaN(t) ? "" : human((nowMs - t) / 1000) + " ago";
}

function stat(k, v, s, cls) {
  return el("div", { class: "stat" }, el("div", { class: "k" }, k), el("div", { class: "v " + (cls || "") }, v), s ? el("div", { class: "s" }, s) : null);
}

function timer(t) {
  return t ? human(t.leftSecs) : "–";
}

function timerNote(t) {
  return t ? "until " + clock(t.until) : "";
}

const BENIGN = ["ScaleOutCooldown", "ScaleInCooldown", "SpikeHold", "ResizeInProgress", "DryRun"];

function conditionsTable(conds, nowMs) {
  if (!conds || !conds.length) return el("p", { class: "muted" }, "No conditions yet.");
  const rows = conds.map((c) => {
    let cls = c.status;
    if (c.type === "ScalingLimited") cls = c.status === "True" ? "True limited" : "";
    else if (c.status === "False" && BENIGN.includes(c.reason)) cls = "False benign";
    return el("tr", {},
      el("td", { class: "nowrap" }, c.type),
      el("td", { class: cls }, c.status),
      el("td", { class: "nowrap" }, c.reason),
      el("td", {}, c.message, el("div", { class: "muted" }, "since " + ago(c.lastTransitionTime, nowMs))));
  });
  return el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "type"), el("th", {}, "status"), el("th", {}, "reason"), el("th", {}, "message"))), el("tbody", {}, rows));
}

const ACTIONS = ["ScaleOut", "ScaleOutOnSpike", "ScaleOutAhead", "ScaleOutOnRamp", "ScaleIn", "RaiseToMinSize", "LowerToMaxSize", "RaiseToStorageFloor",
  "ScheduledMinimum", "ScheduledMaximum", "OverrideMinimum", "OverrideMaximum"];

function decisionsTable(list, nowMs) {
  if (!list || !list.length) return el("p", { class: "muted" }, "No decisions yet.");
  const rows = list.map((d) => el("tr", { class: ACTIONS.includes(d.reason) && d.from !== d.to ? "action" : "" },
    el("td", { class: "nowrap" }, clock(d.time), el("div", { class: "muted" }, ago(d.time, nowMs))),
    el("td", { class: "nowrap" }, d.reason),
    el("td", { class: "nowrap" }, d.from === d.to ? String(d.from) : d.from + " → " + d.to),
    el("td", {}, d.message)));
  return el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "time"), el("th", {}, "reason"), el("th", {}, "size"), el("th", {}, "message"))), el("tbody", {}, rows));
}

function whyClass(line) {
  if (/^(not ready|cannot resize|holding the size|shortfall)/.test(line)) return "bad";
  if (/blocked|limited|resize in progress|dry run|paused/.test(line)) return "blocked";
  return "";
}

// One stat per figure, each saying what it is: the newest sample as measured, the smoothed
// value the size is computed from, the target and the effective target it was sized against,
// and the forecast.
function metricStats(p, m) {
  const name = m.name + (m.others ? " (+" + m.others + " more)" : "");
  const from = p.last ? p.last.from : p.current;
  const warming = m.perNode && p.serving !== undefined && p.serving !== null && from !== undefined && p.serving < from;
  const unit = m.perNode ? (warming ? "per serving node (" + p.serving + " of " + from + " serving)" : "per node") : "total";
  const spread = m.perNode ? (warming ? "per node over all " + from + ", warming ones included" : "per node") : "total";
  const short = p.shortfall && p.shortfall.metric === m.name;
  const eff = m.effectiveTarget;
  const lowered = eff !== undefined && eff !== null && eff < m.target * (1 - 1e-6);
  const noise = m.noise !== undefined && m.noise !== null ? "noise ±" + num(m.noise * 100) + "% of smoothed" : "noise not measured yet";
  const out = [
    stat(name + " observed", num(m.observed), "newest sample, " + unit + (short ? " · above target" : ""), short ? "spike" : ""),
    stat(name + " smoothed", num(m.smoothed), spread + "; the size is computed from this"),
    stat("target → effective", num(m.target) + " → " + num(lowered ? eff : m.target),
      (lowered ? "lowered for noise: " : "same as target: ") + noise),
  ];
  if (m.forecast !== undefined && m.forecast !== null) {
    out.push(stat("forecast", "asks for " + m.forecast,
      m.forecastDemand !== undefined && m.forecastDemand !== null ? "demand of " + num(m.forecastDemand) + " expected within the lead" : "a rise is expected"));
  }
  return out;
}

function card(p, nowMs) {
  const level = p.health.level;
  const sized = p.current === undefined || p.current === null ? "–"
    : (p.desired !== undefined && p.desired !== null && p.desired !== p.current ? p.current + " → " + p.desired : String(p.current));
  // Steering a built-in autoscaler, the sizes are its minimum; its own live size is beside them.
  const size = typeof p.live === "number" ? "min " + sized + ", live " + p.live : sized;
  const m = p.metric;
  const metrics = m ? metricStats(p, m) : [stat("metric", "–", "no reading yet")];
  const last = p.last
    ? stat("last decision", p.last.reason, (p.last.from !== p.last.to ? p.last.from + " → " + p.last.to + ", " : "") + human(p.last.ageSecs) + " ago")
    : stat("last decision", "–", "not evaluated yet");
  const mode = p.mode || "mode unknown";
  const chart = p.chart
    ? el("img", { src: p.chart, loading: "lazy", alt: "chart of " + p.policy + ": load, serving and desired size, observed and smoothed " + (m ? m.name : "metric") + " against the target" })
    : el("div", { class: "nodata" }, "No data yet: the chart appears after the controller's first evaluation of this policy.");
  return el("section", { class: "card level-" + level, id: "policy-" + p.policy, "data-policy": p.policy },
    el("div", { class: "head" },
      el("h2", {}, p.policy),
      el("span", { class: "badge " + mode }, mode),
      el("span", { class: "badge " + level, title: "health" }, p.health.text),
      m && m.spike ? el("span", { class: "badge Error" }, "spike") : null,
      el("span", { class: "target" }, p.target + (p.owner ? " · " + p.owner : ""))),
    el("div", { class: "stats" },
      stat("size (current → desired)", size, p.operation ? p.operation + (p.progress ? " — " + p.progress : "") : ""),
      metrics,
      last,
      stat("cooldown out / in", timer(p.cooldownOut) + " / " + timer(p.cooldownIn), [timerNote(p.cooldownOut), timerNote(p.cooldownIn)].filter(Boolean).join(", ")),
      stat("spike hold", timer(p.spikeHold), timerNote(p.spikeHold), p.spikeHold ? "spike" : "")),
    el("ul", { class: "why" }, p.why.map((w) => el("li", { class: whyClass(w) }, w))),
    el("div", { class: "chart" }, chart),
    el("div", { class: "cols" },
      el("div", {}, el("h3", {}, "Recent decisions"), decisionsTable(p.recentDecisions, nowMs)),
      el("div", {}, el("h3", {}, "Conditions"), conditionsTable(p.conditions, nowMs))));
}

// The fleet view: filters, search and sort run in the page over the last answer, so typing
// does not wait for the network; at most MAX_CARDS cards are drawn (a fleet of 1,000 policies
// is read through the filters, not scrolled).
const MAX_CARDS = 50;
let last = null;

function ctl(id) { return document.getElementById(id); }

function distance(p) {
  const m = p.metric;
  if (!m || m.smoothed === undefined || m.smoothed === null) return -1;
  const t = m.effectiveTarget || m.target;
  return t > 0 ? Math.abs(m.smoothed / t - 1) : -1;
}

function matches(p, q) {
  if (!q) return true;
  const hay = [p.policy, p.target, p.targetKind, p.mode, p.health.text, p.last ? p.last.reason : "", (p.why || []).join(" ")].join(" ").toLowerCase();
  return q.toLowerCase().split(/\s+/).every((w) => hay.includes(w));
}

function options(select, values) {
  const keep = select.value;
  const first = select.options[0];
  select.replaceChildren(first, ...values.map((v) => el("option", { value: v }, v)));
  select.value = values.includes(keep) ? keep : "";
}

function saveHash() {
  const f = { q: ctl("search").value, ns: ctl("f-namespace").value, kind: ctl("f-kind").value, mode: ctl("f-mode").value,
    health: ctl("f-health").value, sort: ctl("sort").value, range: ctl("range").value };
  const parts = Object.entries(f).filter(([, v]) => v).map(([k, v]) => k + "=" + encodeURIComponent(v));
  history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname);
}

function loadHash() {
  const f = Object.fromEntries(location.hash.slice(1).split("&").filter(Boolean).map((kv) => kv.split("=").map(decodeURIComponent)));
  const set = (id, v) => { if (v !== undefined) { const c = ctl(id); if (c.tagName === "SELECT" && ![...c.options].some((o) => o.value === v)) c.append(el("option", { value: v }, v)); c.value = v; } };
  set("search", f.q); set("f-namespace", f.ns); set("f-kind", f.kind); set("f-mode", f.mode); set("f-health", f.health); set("sort", f.sort); set("range", f.range);
}

function draw() {
  if (!last) return;
  const data = last;
  const nowMs = Date.parse(data.now);
  const q = ctl("search").value.trim();
  const ns = ctl("f-namespace").value, kind = ctl("f-kind").value, mode = ctl("f-mode").value, health = ctl("f-health").value;
  const range = ctl("range").value;
  let list = data.policies.filter((p) => (!ns || p.namespace === ns) && (!kind || p.targetKind === kind) &&
    (!mode || p.mode === mode) && (!health || p.health.level === health) && matches(p, q));
  const sort = ctl("sort").value;
  if (sort === "acted") list.sort((a, b) => (Date.parse(b.lastActed) || 0) - (Date.parse(a.lastActed) || 0));
  else if (sort === "distance") list.sort((a, b) => distance(b) - distance(a));
  const main = ctl("policies");
  const cards = list.slice(0, MAX_CARDS).map((p) => card(range === "24h" || !p.chart ? p : Object.assign({}, p, { chart: p.chart + "&range=" + range }), nowMs));
  if (!data.policies.length) {
    cards.push(el("p", { class: "empty" }, "No data yet: this instance has not seen any ScalePolicy evaluated."));
  } else if (!list.length) {
    cards.push(el("p", { class: "empty" }, "No policy matches the filters."));
  }
  main.replaceChildren(...cards);
  ctl("shown").textContent = "showing " + Math.min(list.length, MAX_CARDS) + " of " + list.length + " matching, " + data.policies.length + " in all";
  saveHash();
}

// The fleet timeline is redrawn from each answer; when an answer fails the entries stay, and the
// note says since when they are not updated, so an old "still running" is not read as news.
let timelineAt = null;

function timelineStale(why) {
  ctl("timeline-note").textContent = timelineAt ? "(not updated since " + clock(timelineAt) + ": " + why + ")" : "";
}

async function refreshTimeline() {
  try {
    const r = await fetch("/api/events", { cache: "no-store" });
    if (!r.ok) { timelineStale("HTTP " + r.status); return; }
    const t = await r.json();
    timelineAt = t.now;
    ctl("timeline-note").textContent = "";
    const nowMs = Date.parse(t.now);
    const ns = ctl("f-namespace").value;
    const items = t.events.filter((e) => !ns || e.policy.startsWith(ns + "/")).slice(0, 100).map((e) =>
      el("li", { class: e.kind }, el("span", { class: "k" }, e.kind), clock(e.time) + " (" + ago(e.time, nowMs) + ") ", el("b", {}, e.policy), " " + e.text));
    ctl("events").replaceChildren(...items);
    ctl("timeline").hidden = !items.length;
  } catch (e) { timelineStale(e.message); /* the banner reports an unreachable controller */ }
}

async function refresh() {
  const banner = ctl("banner");
  try {
    const r = await fetch("/api/policies", { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    const data = await r.json();
    last = data;
    options(ctl("f-namespace"), [...new Set(data.policies.map((p) => p.namespace))].sort());
    options(ctl("f-kind"), [...new Set(data.policies.map((p) => p.targetKind).filter(Boolean))].sort());
    draw();
    const counts = {};
    for (const p of data.policies) counts[p.health.level] = (counts[p.health.level] || 0) + 1;
    ctl("summary").textContent = data.policies.length + " policies" +
      Object.entries(counts).map(([k, v]) => " · " + v + " " + k).join("");
    ctl("updated").textContent = "updated " + clock(data.now).replace(" UTC", "") + ":" + data.now.slice(17, 19) + " UTC";
    banner.hidden = true;
  } catch (e) {
    banner.textContent = "Cannot reach the controller (" + e.message + "); retrying every " + REFRESH_MS / 1000 + " s. The data below may be old.";
    banner.hidden = false;
  }
  refreshTimeline();
}

loadHash();
for (const id of ["search", "f-namespace", "f-kind", "f-mode", "f-health", "sort", "range"]) {
  ctl(id).addEventListener(id === "search" ? "input" : "change", draw);
}
refresh();
setInterval(refresh, REFRESH_MS);

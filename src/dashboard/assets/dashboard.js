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

const ACTIONS = ["ScaleOut", "ScaleOutOnSpike", "ScaleIn", "RaiseToMinSize", "LowerToMaxSize", "RaiseToStorageFloor",
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
  if (/^(not ready|cannot resize|holding the size)/.test(line)) return "bad";
  if (/blocked|limited|resize in progress|dry run|paused/.test(line)) return "blocked";
  return "";
}

function card(p, nowMs) {
  const level = p.health.level;
  const size = p.current === undefined || p.current === null ? "–"
    : (p.desired !== undefined && p.desired !== null && p.desired !== p.current ? p.current + " → " + p.desired : String(p.current));
  const m = p.metric;
  const metric = m
    ? stat(m.name + (m.others ? " (+" + m.others + " more)" : ""), num(m.observed) + " / " + num(m.smoothed), "observed / smoothed vs target " + num(m.target), "")
    : stat("metric", "–", "no reading yet");
  const last = p.last
    ? stat("last decision", p.last.reason, (p.last.from !== p.last.to ? p.last.from + " → " + p.last.to + ", " : "") + human(p.last.ageSecs) + " ago")
    : stat("last decision", "–", "not evaluated yet");
  const mode = p.mode || "mode unknown";
  const chart = p.chart
    ? el("img", { src: p.chart, alt: "chart of " + p.policy + ": load, serving and desired size, observed and smoothed " + (m ? m.name : "metric") + " against the target" })
    : el("div", { class: "nodata" }, "No data yet: the chart appears after the controller's first evaluation of this policy.");
  return el("section", { class: "card level-" + level, id: "policy-" + p.policy, "data-policy": p.policy },
    el("div", { class: "head" },
      el("h2", {}, p.policy),
      el("span", { class: "badge " + mode }, mode),
      el("span", { class: "badge " + level, title: "health" }, p.health.text),
      m && m.spike ? el("span", { class: "badge Error" }, "spike") : null,
      el("span", { class: "target" }, p.target)),
    el("div", { class: "stats" },
      stat("size (current → desired)", size, p.operation ? p.operation : ""),
      metric,
      last,
      stat("cooldown out / in", timer(p.cooldownOut) + " / " + timer(p.cooldownIn), [timerNote(p.cooldownOut), timerNote(p.cooldownIn)].filter(Boolean).join(", ")),
      stat("spike hold", timer(p.spikeHold), timerNote(p.spikeHold), p.spikeHold ? "spike" : "")),
    el("ul", { class: "why" }, p.why.map((w) => el("li", { class: whyClass(w) }, w))),
    el("div", { class: "chart" }, chart),
    el("div", { class: "cols" },
      el("div", {}, el("h3", {}, "Recent decisions"), decisionsTable(p.recentDecisions, nowMs)),
      el("div", {}, el("h3", {}, "Conditions"), conditionsTable(p.conditions, nowMs))));
}

async function refresh() {
  const banner = document.getElementById("banner");
  try {
    const r = await fetch("/api/policies", { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    const data = await r.json();
    const nowMs = Date.parse(data.now);
    const main = document.getElementById("policies");
    const cards = data.policies.length
      ? data.policies.map((p) => card(p, nowMs))
      : [el("p", { class: "empty" }, "No data yet: this instance has not evaluated any ScalePolicy. (In a cluster only the leader evaluates; the standby shows nothing.)")];
    main.replaceChildren(...cards);
    const counts = {};
    for (const p of data.policies) counts[p.health.level] = (counts[p.health.level] || 0) + 1;
    document.getElementById("summary").textContent = data.policies.length + " policies" +
      Object.entries(counts).map(([k, v]) => " · " + v + " " + k).join("");
    document.getElementById("updated").textContent = "updated " + clock(data.now).replace(" UTC", "") + ":" + data.now.slice(17, 19) + " UTC";
    banner.hidden = true;
  } catch (e) {
    banner.textContent = "Cannot reach the controller (" + e.message + "); retrying every " + REFRESH_MS / 1000 + " s. The data below may be old.";
    banner.hidden = false;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);

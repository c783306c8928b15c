// feedline dashboard: fetches api/summary and draws every chart as SVG. No library, no network beyond
// this server. Text from the warehouse (keys, errors) is only ever set as textContent, never as HTML.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const STATES = ["detected", "transforming", "transformed", "loading", "loaded", "quarantined", "failed"];
const KPIS = [
  ["files_loaded", "Files loaded", count],
  ["rows_loaded", "Rows loaded", count],
  ["rows_rejected", "Rows rejected", count],
  ["latency_p50", "Latency p50", seconds],
  ["latency_p95", "Latency p95", seconds],
  ["quarantine_rate", "Quarantine rate", percent],
  ["transform_p50", "Transform p50", seconds],
  ["load_p50", "Load p50", seconds],
];

function count(n) { return n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US"); }
function percent(r) { return r === null || r === undefined ? "—" : (100 * r).toFixed(1) + " %"; }
function seconds(s) {
  if (s === null || s === undefined) return "—";
  if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + " s";
  if (s < 3600) return (s / 60).toFixed(1) + " min";
  return (s / 3600).toFixed(1) + " h";
}
function trim(v, digits) { return v.toFixed(digits).replace(/\.?0+$/, ""); }
function hourLabel(iso) { return iso.slice(11, 13) + ":00"; }

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}
function svgEl(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

const W = 360, H = 170, PAD = { left: 46, right: 10, top: 10, bottom: 24 };

function niceMax(v) {
  if (!v || v <= 0) return 1;
  const mag = Math.pow(10, Math.floor(Math.log10(v)));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * mag >= v) return step * mag;
  return 10 * mag;
}

function frame(svg, max, fmt) {
  const h = H - PAD.top - PAD.bottom;
  for (let i = 0; i <= 4; i++) {
    const y = PAD.top + h - (h * i) / 4;
    svg.append(svgEl("line", { class: "grid", x1: PAD.left, x2: W - PAD.right, y1: y, y2: y }));
    svg.append(svgEl("text", { x: PAD.left - 4, y: y + 3, "text-anchor": "end" }, fmt((max * i) / 4)));
  }
}

function xLabels(svg, hours, x) {
  const every = Math.max(1, Math.ceil(hours.length / 6));
  hours.forEach((hour, i) => {
    if ((hours.length - 1 - i) % every === 0) {
      svg.append(svgEl("text", { x: x(i), y: H - 8, "text-anchor": "middle" }, hourLabel(hour.hour)));
    }
  });
}

function chart(title, label) {
  const fig = el("figure", { "data-chart": title });
  fig.append(el("h3", {}, label));
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label });
  fig.append(svg);
  return [fig, svg];
}

function emptyNote(svg, text) {
  svg.append(svgEl("text", { class: "empty", x: W / 2, y: H / 2, "text-anchor": "middle" }, text));
}

function statesChart(states) {
  const [fig, svg] = chart("states", "Files by state (all time)");
  const rows = STATES.filter((s) => states[s] > 0);
  if (!rows.length) { emptyNote(svg, "no files yet"); return fig; }
  const max = Math.max(...rows.map((s) => states[s]));
  const rowH = Math.min(26, (H - 10) / rows.length);
  rows.forEach((state, i) => {
    const y = 5 + i * rowH;
    const width = ((W - 150) * states[state]) / max;
    svg.append(svgEl("text", { x: 88, y: y + rowH / 2 + 3, "text-anchor": "end" }, state));
    const bar = svgEl("rect", { class: `state-${state}`, x: 94, y: y + 3, width: Math.max(width, 2), height: rowH - 6 });
    bar.append(svgEl("title", {}, `${state}: ${states[state]}`));
    svg.append(bar);
    svg.append(svgEl("text", { x: 98 + width, y: y + rowH / 2 + 3, "data-state": state }, count(states[state])));
  });
  return fig;
}

function rowsChart(hourly) {
  const [fig, svg] = chart("rows", "Rows loaded per hour (UTC)");
  const max = niceMax(Math.max(0, ...hourly.map((h) => h.rows_loaded)));
  frame(svg, max, (v) => (v >= 1000 ? trim(v / 1000, 2) + "k" : trim(v, 1)));
  const plotW = W - PAD.left - PAD.right, plotH = H - PAD.top - PAD.bottom;
  const slot = plotW / Math.max(hourly.length, 1);
  const x = (i) => PAD.left + slot * i + slot / 2;
  hourly.forEach((h, i) => {
    if (!h.rows_loaded) return;
    const height = (plotH * h.rows_loaded) / max;
    const bar = svgEl("rect", {
      class: "bar", x: x(i) - Math.max(slot * 0.35, 1), y: PAD.top + plotH - height,
      width: Math.max(slot * 0.7, 2), height, "data-hour": h.hour, "data-rows": h.rows_loaded,
    });
    bar.append(svgEl("title", {}, `${hourLabel(h.hour)} UTC: ${count(h.rows_loaded)} rows, ${h.files} file(s)`));
    svg.append(bar);
  });
  xLabels(svg, hourly, x);
  if (!hourly.some((h) => h.rows_loaded)) emptyNote(svg, "nothing loaded in this window");
  return fig;
}

function latencyChart(hourly) {
  const [fig, svg] = chart("latency", "End-to-end latency per hour: p50 / p95");
  const values = hourly.flatMap((h) => [h.latency_p50, h.latency_p95]).filter((v) => v !== null);
  const max = niceMax(Math.max(0, ...values));
  frame(svg, max, (v) => (max < 120 ? trim(v, 2) + "s" : seconds(v).replace(" ", "")));
  const plotW = W - PAD.left - PAD.right, plotH = H - PAD.top - PAD.bottom;
  const slot = plotW / Math.max(hourly.length, 1);
  const x = (i) => PAD.left + slot * i + slot / 2;
  const y = (v) => PAD.top + plotH - (plotH * v) / max;
  for (const [key, cls] of [["latency_p95", "95"], ["latency_p50", "50"]]) {
    let path = "";
    hourly.forEach((h, i) => {
      if (h[key] === null) { path += " "; return; }
      path += (path.endsWith(" ") || !path ? "M" : "L") + `${x(i).toFixed(1)},${y(h[key]).toFixed(1)}`;
      const dot = svgEl("circle", { class: `dot${cls}`, cx: x(i), cy: y(h[key]), r: 3, "data-hour": h.hour,
        [`data-p${cls}`]: h[key] });
      dot.append(svgEl("title", {}, `${hourLabel(h.hour)} UTC p${cls}: ${seconds(h[key])}`));
      svg.append(dot);
    });
    svg.append(svgEl("path", { class: `p${cls}`, d: path.trim().replace(/\s+/g, " ") }));
  }
  xLabels(svg, hourly, x);
  if (!values.length) emptyNote(svg, "no loads in this window");
  const legend = el("p", { class: "legend" });
  legend.append(el("span", { class: "k50" }, "━ p50"), " ", el("span", { class: "k95" }, "┅ p95"),
    " — detected in the ledger → rows queryable");
  fig.append(legend);
  return fig;
}

function failuresTable(feed) {
  const wrap = el("div", { class: "failures" });
  wrap.append(el("h3", {}, "Last failures"));
  if (!feed.failures.length) { wrap.append(el("p", { class: "muted" }, "none")); return wrap; }
  const table = el("table");
  const head = el("tr");
  for (const name of ["when (UTC)", "file", "state", "error", "log"]) head.append(el("th", {}, name));
  table.append(head);
  for (const f of feed.failures) {
    const row = el("tr", { "data-file": f.key });
    row.append(el("td", {}, f.at.replace("T", " ").slice(0, 19)));
    row.append(el("td", {}, `${f.key} (v${f.version})`));
    const state = el("td");
    state.append(el("span", { class: `pill ${f.state}` }, f.state));
    row.append(state);
    row.append(el("td", { class: "error" }, f.error || ""));
    const cell = el("td");
    const href = f.log || `/dags/${encodeURIComponent(feed.dag_id)}/runs`;
    cell.append(el("a", { href, target: "_top", class: f.log ? "log" : "runs" }, f.log ? "task log" : "runs"));
    row.append(cell);
    table.append(row);
  }
  wrap.append(table);
  return wrap;
}

function feedCard(feed) {
  const card = el("section", { class: "feed", "data-feed": feed.feed });
  const title = el("h2", {}, feed.feed);
  title.append(el("a", { href: `/dags/${encodeURIComponent(feed.dag_id)}`, target: "_top" }, feed.dag_id));
  card.append(title);
  const kpis = el("div", { class: "kpis" });
  for (const [key, label, fmt] of KPIS) {
    const value = feed.totals[key];
    const tile = el("div", { class: "kpi", "data-kpi": key, "data-value": value === null ? "" : String(value) });
    tile.append(el("span", { class: "label" }, label), el("span", { class: "value" }, fmt(value)));
    kpis.append(tile);
  }
  card.append(kpis);
  const charts = el("div", { class: "charts" });
  charts.append(statesChart(feed.states), rowsChart(feed.hourly), latencyChart(feed.hourly));
  card.append(charts, failuresTable(feed));
  return card;
}

async function load() {
  const hours = document.getElementById("window").value;
  const main = document.getElementById("feeds");
  const notice = document.getElementById("notice");
  document.body.removeAttribute("data-ready");
  let response;
  try {
    response = await fetch(`api/summary?hours=${encodeURIComponent(hours)}`, {
      credentials: "same-origin", headers: { Accept: "application/json" },
    });
  } catch (err) {
    notice.hidden = false; notice.textContent = `The dashboard's data could not be fetched: ${err}`;
    return;
  }
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    notice.hidden = false;
    notice.textContent = `HTTP ${response.status}: ${body.detail || response.statusText}` +
      (response.status === 401 ? " — log in to Airflow, then reload." : "");
    return;
  }
  const data = await response.json();
  notice.hidden = !data.notice;
  notice.textContent = data.notice || "";
  const generated = data.generated_at ? data.generated_at.replace("T", " ").slice(0, 19) + " UTC" : "—";
  document.getElementById("generated").textContent =
    `${data.feeds.length} feed(s) · last ${data.window_hours} h · as of ${generated}`;
  main.replaceChildren(...data.feeds.map(feedCard));
  if (!data.feeds.length) main.append(el("p", { class: "muted" }, "No feed you may read."));
  document.body.setAttribute("data-ready", "true");
}

document.getElementById("window").addEventListener("change", load);
load();

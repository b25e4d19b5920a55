// The console's live parts: live calls list, a call's transcript as it happens (server-sent events), the recording
// player that lights the line being played, a contact upload with progress, and charts that refresh.
// No framework and no build step: plain DOM, text set with textContent only (never innerHTML).
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const csrf = () => document.querySelector('meta[name="csrf-token"]').content;
const prefix = () => document.querySelector('meta[name="console-prefix"]').content;

function el(tag, attrs, text) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

async function getJson(url) {
  const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!answer.ok) throw new Error(`${url}: ${answer.status}`);
  return answer.json();
}

function every(ms, work) {
  const tick = async () => {
    try { await work(); } catch (e) { console.warn(e); }
    setTimeout(tick, ms);
  };
  setTimeout(tick, ms);
}

function liveCalls(table) {
  every(3000, async () => {
    const { items } = await getJson(table.dataset.refresh);
    const body = table.tBodies[0];
    body.replaceChildren();
    if (!items.length) {
      const row = el("tr", { class: "empty" });
      row.append(el("td", { colspan: "7" }, "No calls in progress."));
      body.append(row);
    }
    for (const call of items) {
      const row = el("tr");
      const link = el("a", { href: `${prefix()}/calls/${call.call_sid}/live` }, call.call_sid);
      row.append(el("td"));
      row.lastChild.append(link);
      for (const v of [call.agent_id, call.from_number, call.to_number, call.direction, call.started_at.replace("T", " ").slice(0, 19), call.transcript_lines])
        row.append(el("td", {}, String(v ?? "")));
      body.append(row);
    }
  });
}

function liveTranscript(list) {
  const source = new EventSource(list.dataset.events);
  const add = (kind, text) => {
    const item = el("li", { class: `line ${kind}` });
    item.append(el("b", {}, kind === "caller" || kind === "agent" ? kind : `[${kind}]`), document.createTextNode(" " + text));
    list.append(item);
  };
  source.addEventListener("transcript", (e) => { const d = JSON.parse(e.data); add(d.role, d.text); });
  source.addEventListener("barge_in", (e) => { const d = JSON.parse(e.data); add("barge-in", d.text || "the caller interrupted"); });
  source.addEventListener("tool", (e) => {
    const d = JSON.parse(e.data);
    add("tool", `${d.name}(${d.arguments}) ${d.ok ? "ok" : `failed: ${d.error || ""}`} in ${Math.round(d.duration_ms)} ms`);
  });
  source.addEventListener("end", (e) => {
    const d = JSON.parse(e.data || "{}");
    source.close();
    document.getElementById("call-state").textContent = `ended (${d.outcome || "ended"})`;
    const item = el("li", { class: "line ended" });
    item.append(el("a", { href: list.dataset.call, id: "finished-call" }, "The call has ended: open its record"));
    list.append(item);
  });
}

function player(audio) {
  const lines = [...document.querySelectorAll("#transcript li[data-at]")];
  const light = () => {
    let current = null;
    for (const line of lines) if (parseFloat(line.dataset.at) <= audio.currentTime) current = line;
    for (const line of lines) line.classList.toggle("playing", line === current);
    if (current) current.scrollIntoView({ block: "nearest" });
  };
  audio.addEventListener("timeupdate", light);
  audio.addEventListener("seeked", light);
  for (const line of lines) line.addEventListener("click", () => { audio.currentTime = parseFloat(line.dataset.at); audio.play(); });
}

function upload(button) {
  const input = document.getElementById("contacts-file");
  const bar = document.getElementById("upload-progress");
  const percent = document.getElementById("upload-percent");
  const summary = document.getElementById("upload-summary");
  const errors = document.getElementById("upload-errors");
  button.addEventListener("click", () => {
    const file = input.files[0];
    if (!file) { summary.textContent = "Choose a CSV file first."; return; }
    const request = new XMLHttpRequest();
    request.open("POST", button.dataset.url);
    request.setRequestHeader("Content-Type", "text/csv");
    request.setRequestHeader("X-CSRF-Token", csrf());
    request.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) { bar.value = (100 * e.loaded) / e.total; percent.textContent = `${Math.round(bar.value)} %`; }
    });
    request.addEventListener("load", () => {
      bar.value = 100; percent.textContent = "100 %";
      let body = {};
      try { body = JSON.parse(request.responseText); } catch (e) { body = { detail: request.responseText }; }
      if (request.status !== 200) { summary.textContent = `Refused (${request.status}): ${JSON.stringify(body.detail)}`; return; }
      summary.textContent = `${body.received} rows: ${body.inserted} added, ${body.rejected} rejected, ${body.duplicates} already there.`;
      const rows = errors.tBodies[0];
      rows.replaceChildren();
      for (const problem of body.errors) {
        const row = el("tr");
        for (const v of [problem.row, problem.field, problem.message]) row.append(el("td", {}, String(v)));
        rows.append(row);
      }
      errors.hidden = body.errors.length === 0;
    });
    request.addEventListener("error", () => { summary.textContent = "The upload failed (network)."; });
    request.send(file);
  });
}

function bars(svg, values, colours) {
  svg.replaceChildren();
  const total = Object.values(values).reduce((a, b) => a + b, 0) || 1;
  let x = 0;
  const width = 640;
  for (const [name, value] of Object.entries(values)) {
    const w = (width * value) / total;
    const rect = el("svg:rect", { x: 10 + x, y: 20, width: Math.max(w, 0), height: 40, class: `part ${colours[name] || ""}` });
    rect.append(el("svg:title", {}, `${name}: ${value}`));
    svg.append(rect);
    x += w;
  }
  let lx = 10;
  for (const [name, value] of Object.entries(values)) {
    svg.append(el("svg:rect", { x: lx, y: 80, width: 10, height: 10, class: `part ${colours[name] || ""}` }));
    svg.append(el("svg:text", { x: lx + 14, y: 89, class: "label" }, `${name} ${value}`));
    lx += 105;
  }
}

function line(svg, points, top, y0, height, cls) {
  if (points.length < 1) return;
  const t0 = points[0][0], t1 = points[points.length - 1][0] || t0 + 1;
  const span = Math.max(t1 - t0, 1);
  const xy = points.map(([t, v]) => `${10 + (640 * (t - t0)) / span},${y0 + height - (height * v) / top}`).join(" ");
  svg.append(el("svg:polyline", { points: xy, class: cls, fill: "none" }));
}

function campaignChart(svg) {
  const done = [];
  const colours = { done: "done", failed: "failed", in_call: "live", dialing: "dialing", pending: "pending", skipped: "skipped" };
  const draw = async () => {
    const campaign = await getJson(svg.dataset.url);
    const s = campaign.stats || {};
    document.getElementById("campaign-status").textContent = campaign.status;
    for (const cell of document.querySelectorAll("[data-stat]")) cell.textContent = s[cell.dataset.stat] ?? "";
    bars(svg, { done: s.done || 0, failed: s.failed || 0, in_call: s.in_call || 0, dialing: s.dialing || 0, pending: s.pending || 0, skipped: s.skipped || 0 }, colours);
    done.push([Date.now() / 1000, (s.done || 0) + (s.failed || 0)]);
    if (done.length > 300) done.shift();
    line(svg, done, Math.max(s.contacts || 1, 1), 100, 90, "progress-line");
  };
  draw();
  every(2000, draw);
}

function memoryChart(svg) {
  const draw = async () => {
    const h = await getJson(svg.dataset.url);
    svg.replaceChildren();
    const top = h.limit_bytes;
    for (const [name, fraction] of [["limit", 1], ["hard", h.hard], ["soft", h.soft]]) {
      const y = 10 + 190 - 190 * fraction;
      svg.append(el("svg:line", { x1: 10, x2: 650, y1: y, y2: y, class: `threshold ${name}` }));
      svg.append(el("svg:text", { x: 600, y: y - 3, class: "label" }, name));
    }
    line(svg, h.history, top, 10, 190, "memory-line");
    for (const [key, text] of [["state", h.state], ["used", `${(h.used_bytes / 1048576).toFixed(1)} MiB of ${Math.round(h.limit_bytes / 1048576)} MiB`], ["calls", `${h.active_calls} of ${h.max_calls}`], ["draining", h.draining ? "yes" : "no"]]) {
      const cell = document.querySelector(`[data-health="${key}"]`);
      if (cell) cell.textContent = text;
    }
  };
  draw();
  every(5000, draw);
}

document.addEventListener("DOMContentLoaded", () => {
  const found = (selector, behaviour) => { const node = document.querySelector(selector); if (node) behaviour(node); };
  found("#live-calls[data-refresh]", liveCalls);
  found("#live-transcript[data-events]", liveTranscript);
  found("#player", player);
  found("#contacts-upload", upload);
  found("#campaign-chart", campaignChart);
  found("#memory-chart", memoryChart);
});

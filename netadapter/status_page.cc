#include "netadapter/status_page.h"

#include <sodium.h>

namespace warren {

namespace {

constexpr std::string_view style = R"css(
:root { --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --muted: #57606a; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1f2328;
       background: #f6f8fa; }
header { display: flex; align-items: center; gap: 12px; padding: 12px 20px; background: #fff;
         border-bottom: 1px solid var(--line); }
header h1 { font-size: 18px; margin: 0; }
.badge { padding: 2px 10px; border-radius: 12px; color: #fff; font-weight: 600; }
.badge.ok { background: var(--ok); } .badge.degraded { background: var(--warn); }
.badge.error { background: var(--bad); }
#updated { color: var(--muted); margin-left: auto; }
main { padding: 16px 20px; display: grid; gap: 16px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 12px; }
.card, section { background: #fff; border: 1px solid var(--line); border-radius: 6px; }
.card { padding: 10px 12px; }
.cards.inner { padding: 12px; }
.card .label { color: var(--muted); font-size: 12px; }
.card .value { font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
section h2 { font-size: 15px; margin: 0; padding: 10px 12px; border-bottom: 1px solid var(--line); }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { text-align: right; padding: 5px 12px; border-bottom: 1px solid #eaeef2; }
th:first-child, td:first-child { text-align: left; }
td.text { text-align: left; }
th { color: var(--muted); font-weight: 600; font-size: 12px; }
.empty { color: var(--muted); padding: 10px 12px; }
.empty:empty { display: none; }
th.text { text-align: left; }
.level-warning { color: var(--warn); font-weight: 600; }
.level-critical, .level-emergency { color: var(--bad); font-weight: 600; }
#problem { display: none; background: #ffebe9; color: var(--bad); padding: 10px 20px; }
body[data-state="error"] #problem { display: block; }
)css";

constexpr std::string_view script = R"js(
"use strict";
const REFRESH_MS = 5000;
const api = (path) => new URL(path, location.origin).toString();
let previous = null;  // the last metrics and when they came, for rates

function text(id, value) { document.getElementById(id).textContent = value; }
function num(v, digits = 0) {
  return (typeof v === "number" && isFinite(v)) ? v.toFixed(digits) : "-";
}
function bytes(v) {
  if (typeof v !== "number") return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return v.toFixed(i ? 1 : 0) + " " + units[i];
}
function when(ms) { return ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "-"; }
function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = document.createElement("td");
    if (c && typeof c === "object") {
      td.textContent = c.text;
      if (c.cls) td.className = c.cls;
    } else {
      td.textContent = c;
    }
    tr.appendChild(td);
  }
  return tr;
}
function fill(id, rows, emptyText) {
  const body = document.getElementById(id);
  body.replaceChildren(...rows);
  document.getElementById(id + "-empty").textContent = rows.length ? "" : emptyText;
}
async function get(path) {
  const r = await fetch(api(path), { credentials: "same-origin", cache: "no-store" });
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}

function draw(m, report, alerts, blocks, now) {
  const seconds = previous ? (now - previous.at) / 1000 : 0;
  const rate = (cur, old) => (seconds > 0 && old !== undefined) ? (cur - old) / seconds : NaN;
  const status = report.status || "ok";
  const badge = document.getElementById("status");
  badge.textContent = status;
  badge.className = "badge " + status;
  text("connections", m.connections.open + " / " + m.connections.max);
  text("online", num(m.online_users));
  text("users", num(m.users));
  text("rooms", num(m.rooms));
  text("messages", num(m.messages_stored));
  text("rps", num(rate(m.requests, previous && previous.m.requests), 1));
  text("rss", bytes(m.process.rss_bytes));
  text("cpu", num(rate(m.process.cpu_seconds, previous && previous.m.process.cpu_seconds) * 100, 1) + " %");

  const s = m.storage;
  text("breaker", s.breaker);
  document.getElementById("breaker").className =
      "value " + (s.breaker === "closed" ? "" : "level-critical");
  text("commit-p50", num(s.last_minute_commit_latency_ms.p50, 3) + " ms");
  text("commit-p99", num(s.last_minute_commit_latency_ms.p99, 3) + " ms");
  text("batches", num(s.batches_committed));
  text("batches-failed", num(s.batches_failed));
  text("retries", num(s.commit_retries));
  text("queue", num(s.queue_depth));

  const ops = Object.entries(m.ops).sort((a, b) => b[1].count - a[1].count);
  fill("ops", ops.map(([name, o]) => {
    const old = previous && previous.m.ops[name];
    const errors = Object.entries(o.errors).map(([code, n]) => code + " " + n).join(", ");
    const l = o.last_minute_latency_ms;
    return row([name, num(o.count), num(rate(o.count, old ? old.count : 0), 1),
                { text: errors || "-", cls: "text" }, num(l.count), num(l.p50, 3),
                num(l.p90, 3), num(l.p99, 3), num(l.max, 3)]);
  }), "no requests yet");

  fill("alerts", alerts.active.map((a) => row([
    { text: a.level, cls: "text level-" + a.level }, { text: a.rule, cls: "text" },
    { text: a.subject || "-", cls: "text" }, { text: a.message, cls: "text" }, when(a.raised_ts)
  ])), "no active alerts");

  const recent = blocks.blocks.slice().sort((a, b) => b.since_ts - a.since_ts).slice(0, 20);
  fill("blocks", recent.map((b) => row([
    b.ip, when(b.since_ts), b.until_ts ? when(b.until_ts) : "until lifted", num(b.offences),
    { text: b.reason, cls: "text" }
  ])), "no active blocks");
  fill("suspensions", blocks.suspensions.map((b) => row([
    b.username, when(b.since_ts), b.until_ts ? when(b.until_ts) : "until lifted",
    num(b.offences), { text: b.reason, cls: "text" }
  ])), "no active suspensions");

  previous = { m: m, at: now };
  text("updated", "updated " + new Date(now).toLocaleTimeString());
}

async function refresh() {
  try {
    const [m, report, alerts, blocks] = await Promise.all([
      get("/api/v1/admin/performance/metrics"), get("/api/v1/admin/performance/report"),
      get("/api/v1/admin/performance/alerts"), get("/api/v1/admin/security/blocks")]);
    draw(m, report, alerts, blocks, Date.now());
    document.body.dataset.state = "live";
  } catch (e) {
    text("problem", "cannot read the admin API: " + e.message);
    document.body.dataset.state = "error";
    const badge = document.getElementById("status");
    badge.textContent = "unreachable";
    badge.className = "badge error";
  }
  setTimeout(refresh, REFRESH_MS);
}
refresh();
)js";

constexpr std::string_view head = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Warren status</title>
<link rel="icon" href="data:,">
<style>)html";

constexpr std::string_view body = R"html(</style>
</head>
<body data-state="loading">
<header><h1>Warren</h1><span id="status" class="badge">loading</span><span id="updated"></span></header>
<div id="problem"></div>
<main>
<div class="cards">
  <div class="card"><div class="label">connections</div><div class="value" id="connections">-</div></div>
  <div class="card"><div class="label">users online</div><div class="value" id="online">-</div></div>
  <div class="card"><div class="label">requests/s</div><div class="value" id="rps">-</div></div>
  <div class="card"><div class="label">CPU</div><div class="value" id="cpu">-</div></div>
  <div class="card"><div class="label">memory (RSS)</div><div class="value" id="rss">-</div></div>
  <div class="card"><div class="label">accounts</div><div class="value" id="users">-</div></div>
  <div class="card"><div class="label">rooms</div><div class="value" id="rooms">-</div></div>
  <div class="card"><div class="label">messages stored</div><div class="value" id="messages">-</div></div>
</div>
<section><h2>Storage</h2><div class="cards inner">
  <div class="card"><div class="label">breaker</div><div class="value" id="breaker">-</div></div>
  <div class="card"><div class="label">commit p50 (last minute)</div><div class="value" id="commit-p50">-</div></div>
  <div class="card"><div class="label">commit p99 (last minute)</div><div class="value" id="commit-p99">-</div></div>
  <div class="card"><div class="label">batches committed</div><div class="value" id="batches">-</div></div>
  <div class="card"><div class="label">batches failed</div><div class="value" id="batches-failed">-</div></div>
  <div class="card"><div class="label">commit retries</div><div class="value" id="retries">-</div></div>
  <div class="card"><div class="label">storage queue</div><div class="value" id="queue">-</div></div>
</div></section>
<section><h2>Requests by op (latency over the last minute, ms)</h2>
<table><thead><tr><th>op</th><th>total</th><th>per s</th><th class="text">errors</th><th>last min</th>
<th>p50</th><th>p90</th><th>p99</th><th>max</th></tr></thead><tbody id="ops"></tbody></table>
<div class="empty" id="ops-empty"></div></section>
<section><h2>Active alerts</h2>
<table><thead><tr><th class="text">level</th><th class="text">rule</th><th class="text">subject</th><th class="text">message</th><th>since (UTC)</th></tr></thead>
<tbody id="alerts"></tbody></table><div class="empty" id="alerts-empty"></div></section>
<section><h2>Recent blocks</h2>
<table><thead><tr><th>address</th><th>since (UTC)</th><th>until (UTC)</th><th>offences</th><th class="text">reason</th></tr></thead>
<tbody id="blocks"></tbody></table><div class="empty" id="blocks-empty"></div></section>
<section><h2>Suspended accounts</h2>
<table><thead><tr><th>account</th><th>since (UTC)</th><th>until (UTC)</th><th>offences</th><th class="text">reason</th></tr></thead>
<tbody id="suspensions"></tbody></table><div class="empty" id="suspensions-empty"></div></section>
</main>
<script>)html";

constexpr std::string_view tail = "</script>\n</body>\n</html>\n";

std::string sha256_base64(std::string_view text) {
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(text.data()), text.size());
    char out[sodium_base64_ENCODED_LEN(crypto_hash_sha256_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(out, sizeof out, digest, sizeof digest, sodium_base64_VARIANT_ORIGINAL);
    return out;
}

}  // namespace

std::string_view status_page_html() {
    static const std::string page = std::string(head) + std::string(style) + std::string(body) +
                                    std::string(script) + std::string(tail);
    return page;
}

const std::string& status_page_csp() {
    static const std::string csp =
        "default-src 'none'; script-src 'sha256-" + sha256_base64(script) +
        "'; style-src 'sha256-" + sha256_base64(style) +
        "'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'";
    return csp;
}

}  // namespace warren

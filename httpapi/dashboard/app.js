// Switchboard admin dashboard. Plain JavaScript, no build step, nothing
// loaded from elsewhere. Every figure comes from the admin API, called with
// the admin key the user typed in; the key lives in sessionStorage, so it
// is gone when the tab closes. Data is only ever put into the page as text
// (textContent), never as HTML: hub names and upstream errors come from
// clients and upstreams.
"use strict";

const KEY = "switchboard.adminKey";
const POLL_MS = 2000;

const $ = (sel) => document.querySelector(sel);

// el builds an element; children are nodes or strings (set as text).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

class HTTPError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// api calls the admin API with the stored key. Errors carry the status and
// the gateway's {"error": "..."} text.
async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + sessionStorage.getItem(KEY) };
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    const msg = (data && (data.error || data.message)) || `${res.status} ${res.statusText}`;
    throw new HTTPError(res.status, msg);
  }
  return data;
}

// ---- signing in and out ----

function showLogin(message) {
  sessionStorage.removeItem(KEY);
  stopPolling();
  $("#app").hidden = true;
  $("#logout").hidden = true;
  $("#ready").hidden = true;
  $("#node").textContent = "";
  $("#updated").textContent = "";
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
  $("#key").value = "";
  $("#key").focus();
}

async function signIn(key) {
  sessionStorage.setItem(KEY, key);
  try {
    await api("GET", "/admin/overview"); // proves the key before showing anything
  } catch (err) {
    showLogin(err.status === 401 ? "Refused: " + err.message : "Cannot reach the gateway: " + err.message);
    return;
  }
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#logout").hidden = false;
  startPolling();
}

$("#login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const key = $("#key").value.trim();
  if (key) signIn(key);
});
$("#logout").addEventListener("click", () => showLogin(""));

// ---- polling ----

let timer = null;
let previous = null; // the last overview, for rates

function startPolling() {
  stopPolling();
  previous = null;
  refresh();
  refreshKeys();
}

function stopPolling() {
  if (timer !== null) clearTimeout(timer);
  timer = null;
}

async function refresh() {
  timer = null;
  try {
    const ov = await api("GET", "/admin/overview");
    render(ov);
    $("#problem").hidden = true;
  } catch (err) {
    if (err.status === 401) {
      showLogin("The admin key was refused: " + err.message);
      return;
    }
    $("#problem").textContent = "Cannot refresh: " + err.message;
    $("#problem").hidden = false;
  }
  if (sessionStorage.getItem(KEY) !== null) timer = setTimeout(refresh, POLL_MS);
}

// rate turns two readings of a counter into a per-second figure.
function rate(now, before, seconds) {
  if (before === undefined || seconds <= 0 || now < before) return null;
  return (now - before) / seconds;
}

function fmtRate(r) {
  if (r === null) return "–";
  return r >= 10 ? r.toFixed(0) : r.toFixed(1);
}

function fmtMs(ms) {
  return ms >= 100 ? ms.toFixed(0) + " ms" : ms.toFixed(1) + " ms";
}

function fmtTime(t) {
  const d = new Date(t);
  return isNaN(d) ? "" : d.toLocaleTimeString();
}

function render(ov) {
  const seconds = previous ? (Date.parse(ov.time) - Date.parse(previous.time)) / 1000 : 0;
  const before = new Map((previous ? previous.hubs : []).map((h) => [h.name, h]));

  $("#node").textContent = "node " + ov.node;
  const ready = $("#ready");
  ready.hidden = false;
  ready.textContent = !ov.ready ? "not ready" : ov.reasons.length ? "degraded" : "ready";
  ready.className = "chip " + (!ov.ready ? "bad" : ov.reasons.length ? "warn" : "good");
  ready.title = ov.reasons.join("\n");
  $("#updated").textContent = "updated " + fmtTime(ov.time);

  let total = 0, inSum = null, outSum = null;
  const rows = [];
  for (const h of ov.hubs) {
    total += h.connections;
    const b = before.get(h.name);
    const rin = rate(h.messagesIn, b && b.messagesIn, seconds);
    const rout = rate(h.messagesOut, b && b.messagesOut, seconds);
    if (rin !== null) inSum = (inSum || 0) + rin;
    if (rout !== null) outSum = (outSum || 0) + rout;
    const perNode = Object.entries(h.nodes).sort().map(([n, c]) => `${n}: ${c}`).join(", ");
    rows.push(el("tr", { "data-hub": h.name },
      el("td", { class: "name" }, h.name, h.configured ? null : el("span", { class: "muted" }, " (not configured)")),
      el("td", { class: "conns num" }, h.connections),
      el("td", { class: "per-node" }, perNode),
      el("td", { class: "in num" }, fmtRate(rin)),
      el("td", { class: "out num" }, fmtRate(rout))));
  }
  $("#hubs tbody").replaceChildren(...rows);
  if (rows.length === 0) {
    $("#hubs tbody").append(el("tr", {}, el("td", { colSpan: 5, class: "muted" }, "No hub yet: add one below.")));
  }
  $("#total-conns").textContent = total;
  $("#rate-in").textContent = fmtRate(inSum);
  $("#rate-out").textContent = fmtRate(outSum);
  $("#outbox").textContent = ov.outbox ? ov.outbox.depth : "–";
  $("#outbox").title = ov.outbox ? `limit ${ov.outbox.limit} · dropped ${ov.outbox.dropped} · expired ${ov.outbox.expired}` : "";
  $("#slow").textContent = ov.slowConsumers;
  renderBus(ov.cluster);
  renderHubSelects(ov.hubs.filter((h) => h.configured).map((h) => h.name));
  renderUpstreams(ov.upstreams);
  renderNodes(ov.cluster);
  previous = ov;
}

function renderBus(cluster) {
  const bus = $("#bus");
  if (!cluster) {
    bus.textContent = "single node";
    bus.className = "figure small muted";
    return;
  }
  const b = cluster.bus;
  bus.textContent = (b.healthy ? "connected" : "DISCONNECTED") +
    ` · ${cluster.nodes.length} node${cluster.nodes.length === 1 ? "" : "s"}` +
    ` · ${b.dropped + b.bufferedDrops} dropped`;
  bus.className = "figure small " + (b.healthy ? "good-text" : "bad-text");
}

function renderNodes(cluster) {
  $("#cluster").hidden = !cluster;
  if (!cluster) return;
  $("#nodes tbody").replaceChildren(...cluster.nodes.map((n) =>
    el("tr", { "data-node": n.id },
      el("td", {}, n.id, n.self ? el("span", { class: "muted" }, " (this node)") : null),
      el("td", { class: "url" }, n.url),
      el("td", { class: "num" }, n.connections),
      el("td", {}, fmtTime(n.lastSeen)))));
}

// renderHubSelects fills the hub pickers, keeping what the user chose.
function renderHubSelects(names) {
  for (const sel of document.querySelectorAll(".hub-select")) {
    const current = [...sel.options].map((o) => o.value);
    if (current.join("\n") === names.join("\n")) continue;
    const chosen = sel.value;
    sel.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
    if (names.includes(chosen)) sel.value = chosen;
  }
}

function breakerClass(u) {
  if (u.disabled) return "bad";
  switch (u.breaker.state) {
    case "closed": return u.lastFailures.length && u.lastDelivery && u.lastDelivery.error ? "warn" : "good";
    case "open": return "bad";
    default: return "warn";
  }
}

function renderUpstreams(ups) {
  $("#no-upstreams").hidden = ups.length > 0;
  $("#upstreams").replaceChildren(...ups.map((u) => {
    const cls = breakerClass(u);
    const state = u.disabled ? "disabled" : u.breaker.state;
    const lines = [];
    if (u.disabled) lines.push(el("p", { class: "error reason" }, "Disabled: " + u.disabledReason));
    // The newest failure says why, in the upstream's or the network's
    // words; the breaker's cause only counts failures.
    if (cls !== "good" && u.lastFailures.length) {
      lines.push(el("p", { class: "error reason last-failure" }, "Last failure: " + u.lastFailures[0].error));
    }
    if (u.breaker.cause) lines.push(el("p", { class: "error reason" }, "Breaker opened: " + u.breaker.cause));
    if (u.breaker.retryAt) lines.push(el("p", { class: "muted" }, "Next probe at " + fmtTime(u.breaker.retryAt)));
    const lat = u.latency
      ? `latency last ${fmtMs(u.latency.lastMs)} · p50 ${fmtMs(u.latency.p50Ms)} · p95 ${fmtMs(u.latency.p95Ms)} (${u.latency.samples} calls)`
      : "no answered call yet";
    const failures = u.lastFailures.map((d) =>
      el("li", { class: "failure" },
        el("span", { class: "when" }, fmtTime(d.time)), " ",
        el("span", { class: "what" }, d.event + (d.target ? ":" + d.target : "")), " ",
        el("span", { class: "status" }, (d.status ? "HTTP " + d.status : "no answer") + (d.attempt > 1 ? `, attempt ${d.attempt}` : "")), " — ",
        el("span", { class: "why" }, d.error)));
    return el("article", { class: "upstream " + cls, "data-upstream": u.hub + "/" + u.name },
      el("header", {},
        el("span", { class: "state chip " + cls }, state),
        el("strong", {}, u.name), el("span", { class: "muted" }, " on hub " + u.hub)),
      el("p", { class: "url" }, u.urlTemplate || ""),
      el("p", { class: "muted" }, (u.events && u.events.length ? u.events.join(", ") : "all events") +
        ` · outbox ${u.outbox} · ${u.breaker.consecutiveFailures} consecutive failures`),
      el("p", { class: "latency" }, lat),
      ...lines,
      failures.length ? el("details", { open: cls !== "good" },
        el("summary", {}, `Last ${failures.length} failure${failures.length === 1 ? "" : "s"}`),
        el("ul", { class: "failures" }, ...failures)) : null,
      el("button", { type: "button", class: "rotate-secret secondary", "data-hub": u.hub, "data-name": u.name },
        secretArmed && secretArmed.id === u.hub + "/" + u.name ? "Click again to rotate" : "Rotate signing secret"));
  }));
}

// Rotating an upstream's signing secret also takes two clicks. The cards
// are redrawn on every poll, so the armed one is remembered here and the
// result shown outside the cards.
let secretArmed = null; // {id, timer}
$("#upstreams").addEventListener("click", async (ev) => {
  const btn = ev.target.closest(".rotate-secret");
  if (!btn) return;
  const hub = btn.dataset.hub, name = btn.dataset.name, id = hub + "/" + name;
  const out = $("#secret-result");
  if (!secretArmed || secretArmed.id !== id) {
    if (secretArmed) clearTimeout(secretArmed.timer);
    secretArmed = { id, timer: setTimeout(() => { secretArmed = null; btn.textContent = "Rotate signing secret"; }, 5000) };
    btn.textContent = "Click again to rotate";
    showResult(out, true, `A new secret for ${name} on hub ${hub} signs from now on; the current one stays active beside it until the next rotation.`);
    return;
  }
  clearTimeout(secretArmed.timer);
  secretArmed = null;
  btn.textContent = "Rotate signing secret";
  try {
    const r = await api("POST", `/admin/hubs/${encodeURIComponent(hub)}/upstreams/${encodeURIComponent(name)}/secrets/:rotate`);
    showResult(out, true,
      el("p", {}, `New signing secret for ${name} on hub ${hub} (shown once; give it to the function). ` +
        `Webhooks now carry ${r.secrets.length} signatures${r.dropped ? `; ${r.dropped} older secret dropped` : ""}.`),
      el("code", { class: "secret" }, r.secrets[0]));
  } catch (err) {
    showResult(out, false, "Not rotated: " + err.message);
  }
});

// ---- admin actions ----

function showResult(target, ok, ...parts) {
  target.replaceChildren(...parts.map((p) => (p instanceof Node ? p : el("span", {}, p))));
  target.className = "result " + (ok ? "ok" : "error");
}

$("#hub-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  const out = $("#hub-result");
  try {
    const h = await api("POST", "/admin/hubs", { name: f.name.value.trim(), allowAnonymous: f.allowAnonymous.checked });
    showResult(out, true, `Hub ${h.name} added.`);
    f.reset();
    refreshNow();
  } catch (err) {
    showResult(out, false, err.message);
  }
});

$("#upstream-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  const out = $("#upstream-result");
  const hub = f.hub.value;
  const events = f.events.value.split(",").map((s) => s.trim()).filter(Boolean);
  showResult(out, true, "Checking the receiver…");
  try {
    const u = await api("POST", `/admin/hubs/${encodeURIComponent(hub)}/upstreams`,
      { name: f.name.value.trim(), urlTemplate: f.urlTemplate.value.trim(), events, skipValidation: f.skipValidation.checked });
    const parts = [
      el("p", {}, f.skipValidation.checked
        ? `Upstream ${u.name} registered on hub ${hub} without the registration check.`
        : `Registration check passed: the receiver accepted this gateway's events. Upstream ${u.name} registered on hub ${hub}.`),
      el("p", {}, "Signing secret (shown once; give it to the function): "),
      el("code", { class: "secret" }, u.secrets[0]),
    ];
    for (const w of u.warnings || []) parts.push(el("p", { class: "warn-text" }, w));
    showResult(out, true, ...parts);
    f.name.value = "";
    refreshNow();
  } catch (err) {
    showResult(out, false, "Not registered: " + err.message);
  }
});

$("#send-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  const out = $("#send-result");
  let args;
  try {
    args = JSON.parse(f.arguments.value || "[]");
  } catch (err) {
    showResult(out, false, "Arguments are not JSON: " + err.message);
    return;
  }
  if (!Array.isArray(args)) {
    showResult(out, false, "Arguments must be a JSON array, e.g. [\"hello\"]");
    return;
  }
  const hub = f.hub.value;
  try {
    const body = { target: f.target.value.trim(), arguments: args };
    if (f.group.value.trim()) body.group = f.group.value.trim();
    const r = await api("POST", `/admin/hubs/${encodeURIComponent(hub)}/:send`, body);
    showResult(out, true, `Sent ${r.target} to ${r.group ? "group " + r.group + " of " : ""}hub ${r.hub} ` +
      `(${r.connectionsOnThisNode} connection${r.connectionsOnThisNode === 1 ? "" : "s"} on this node). ` +
      "Watch Out /s of the hub.");
    refreshNow();
  } catch (err) {
    showResult(out, false, "Not sent: " + err.message);
  }
});

async function refreshKeys() {
  try {
    const r = await api("GET", "/admin/keys");
    $("#keys").replaceChildren(...r.keys.map((k, i) =>
      el("li", {}, el("code", {}, k.id), ` created ${new Date(k.createdAt).toLocaleString()}`,
        el("span", { class: "muted" }, i === 0 ? " (primary: signs new tokens)" : " (secondary: still accepted)"))));
  } catch (err) {
    $("#keys").replaceChildren(el("li", { class: "error" }, "Cannot list keys: " + err.message));
  }
}

// Rotation asks for a second click rather than a confirm() dialog, which
// some phone browsers suppress.
let rotateArmed = null;
$("#rotate").addEventListener("click", async () => {
  const btn = $("#rotate");
  const out = $("#rotate-result");
  if (rotateArmed === null) {
    btn.textContent = "Click again to rotate";
    showResult(out, true, "The current primary key stays valid as secondary; an older secondary stops working at once.");
    rotateArmed = setTimeout(() => { rotateArmed = null; btn.textContent = "Rotate access keys"; out.textContent = ""; }, 5000);
    return;
  }
  clearTimeout(rotateArmed);
  rotateArmed = null;
  btn.textContent = "Rotate access keys";
  try {
    const r = await api("POST", "/admin/keys/:rotate");
    showResult(out, true,
      el("p", {}, `New primary key ${r.id}.` + (r.dropped.length ? ` Dropped: ${r.dropped.join(", ")}.` : "")),
      el("p", {}, "New connection string (shown once):"),
      el("code", { class: "secret" }, r.connectionString));
    refreshKeys();
  } catch (err) {
    showResult(out, false, "Not rotated: " + err.message);
  }
});

// refreshNow polls at once after an admin action, so its effect shows.
function refreshNow() {
  if (timer !== null) {
    clearTimeout(timer);
    refresh();
  }
}

// ---- start ----

if (sessionStorage.getItem(KEY)) signIn(sessionStorage.getItem(KEY));
else showLogin("");

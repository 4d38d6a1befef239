// The operator console: polls the admin API once a second and acts through it.
import { ApiError, api, el, percent, seconds, setText, token, tokenConfigured, tokenForm } from "./common.js";

const POLL_MS = 1000;
const HISTORY = 300; // points kept per series: five minutes at one a second
const ANALYTICS_EVERY = 10; // polls: the router reads its analytics files for this panel, so not every second
const COLOURS = ["blue", "green"];
const CHARTS = {
  "chart-rps": (w) => w.rps,
  "chart-errors": (w) => w.error_rate,
  "chart-p95": (w) => w.latency_p95_s,
  "chart-ttft": (w) => w.ttft_p95_s,
};
const SVG = "http://www.w3.org/2000/svg";

const history = { blue: [], green: [] };
let lastEventId = null; // null: not loaded yet (then the newest 50 are read)
let readsRefused = null; // the API's message while reads are refused (no or wrong token)
let analyticsShown = document.body.dataset.analytics === "on"; // else the router keeps none

function notice(message) {
  const node = document.getElementById("notice");
  node.textContent = message || "";
  node.hidden = !message;
}

function showMode() {
  let text;
  if (!tokenConfigured()) text = "read-only: the router has no admin token, so it refuses every change";
  else if (token()) text = "admin token set for this tab: actions enabled";
  else text = "read-only: enter the admin token to see the status and to act";
  setText("mode", text);
  document.body.classList.toggle("read-only", !token());
}

// -- drawing -----------------------------------------------------------------------------------

function showWeights(status) {
  const { blue, green } = status.weights;
  const bar = document.getElementById("weights-bar");
  bar.querySelector(".blue").style.width = `${blue}%`;
  bar.querySelector(".green").style.width = `${green}%`;
  setText("weights-text", `blue ${blue} % · green ${green} %`);
  setText("stable", status.stable);
  setText("data-plane", status.data_plane);
}

function showRollout(rollout) {
  setText("phase", rollout.phase);
  let step = "";
  if (rollout.phase !== "idle" && rollout.step >= 0) {
    step = `step ${rollout.step + 1}/${rollout.steps.length} (${rollout.canary} ${rollout.steps[rollout.step] / 100} %)`;
    if (rollout.phase === "progressing") {
      const left = Math.max(0, rollout.interval_s - (Date.now() / 1000 - rollout.step_since));
      step += `, judged in ${Math.round(left)} s`;
    }
  }
  setText("step", step);
  setText("rollout-reason", rollout.reason || "");
  const verdict = rollout.last_verdict;
  const outcome = document.getElementById("verdict");
  outcome.textContent = verdict ? verdict.outcome : "–";
  outcome.className = verdict ? `outcome-${verdict.outcome}` : "";
  document.getElementById("verdict-reasons").replaceChildren(...(verdict ? verdict.reasons : []).map((r) => el("li", {}, r)));
}

function showColours(status) {
  const rows = COLOURS.map((colour) => {
    const backend = status.backends[colour];
    const w = backend.window;
    let ready = backend.ready ? "yes" : `no: ${backend.reason}`;
    if (backend.ejection) ready = `ejected: ${backend.ejection}`;
    const name = colour + (status.stable === colour ? " (stable)" : "");
    return el("tr", { class: colour },
      el("td", {}, el("span", { class: `dot ${colour}` }), name), el("td", {}, ready),
      el("td", {}, w.requests), el("td", {}, w.errors), el("td", {}, percent(w.error_rate)),
      el("td", {}, w.rps.toFixed(1)), el("td", {}, seconds(w.latency_p50_s)), el("td", {}, seconds(w.latency_p95_s)),
      el("td", {}, seconds(w.ttft_p95_s)));
  });
  document.querySelector("#colours tbody").replaceChildren(...rows);
  setText("window", `last ${status.backends.green.window.span_s} s`);
  for (const colour of COLOURS) {
    history[colour].push(status.backends[colour].window);
    if (history[colour].length > HISTORY) history[colour].shift();
  }
  for (const [id, pick] of Object.entries(CHARTS)) drawChart(document.getElementById(id), pick);
}

// A small line chart per figure, both colours on one scale; gaps where a figure is unknown.
// The newest point sits at the right edge; the x scale spans at least 30 s, so a young chart fills from the right.
function drawChart(svg, pick) {
  const series = COLOURS.map((colour) => history[colour].map(pick));
  const span = Math.max(30, history.blue.length) - 1;
  const top = Math.max(1e-9, ...series.flat().filter((v) => v !== null && v !== undefined));
  const lines = COLOURS.map((colour, i) => {
    let d = "";
    let pen = "M";
    series[i].forEach((value, x) => {
      if (value === null || value === undefined) {
        pen = "M";
        return;
      }
      const left = 300 - ((series[i].length - 1 - x) / span) * 300;
      d += `${pen}${left.toFixed(1)},${(78 - (value / top) * 74).toFixed(1)} `;
      pen = "L";
    });
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d.trim() || "M0,78");
    path.setAttribute("class", `line ${colour}`);
    return path;
  });
  const label = document.createElementNS(SVG, "text");
  label.setAttribute("x", "4");
  label.setAttribute("y", "10");
  label.setAttribute("class", "scale");
  label.textContent = svg.id === "chart-rps" ? top.toFixed(1) : svg.id === "chart-errors" ? percent(top) : seconds(top);
  svg.replaceChildren(...lines, label);
}

const ANSWER_CHECKS = ["empty", "wrong_language", "repetitive", "truncated", "refusal"];

function showShadow(status) {
  const block = document.getElementById("shadow-block");
  const shadow = status.shadow;
  block.hidden = !shadow || !shadow.pairs;
  if (block.hidden) return;
  const canary = shadow.canary, stable = shadow.stable;  // the canary is blue when green is the stable colour
  const overRate = shadow.over_rate ? `${shadow.over_rate} skipped (over max_per_s), ` : "";
  let summary = `${shadow.pairs} mirrored pairs, ${shadow.skipped} skipped (busy), ${overRate}${shadow.canary_errors} failed on ${canary}`;
  if (shadow.length_ratio_p50 !== null && shadow.length_ratio_p50 !== undefined) {
    summary += ` · median length ${canary}/${stable} ${shadow.length_ratio_p50.toFixed(2)}`;
  }
  if (shadow.chrf_p50 !== null && shadow.chrf_p50 !== undefined) {
    summary += ` · median chrF ${shadow.chrf_p50.toFixed(1)}`;
  }
  const gaps = [shadow[canary].gap_p95_s, shadow[stable].gap_p95_s];
  if (gaps.every((gap) => gap !== null && gap !== undefined)) {
    summary += ` · stream gap p95 ${canary} ${seconds(gaps[0])} / ${stable} ${seconds(gaps[1])}`;
  }
  setText("shadow-summary", summary);
  setText("shadow-canary", canary);
  setText("shadow-stable", stable);
  const rows = ANSWER_CHECKS.map((check) =>
    el("tr", { class: shadow[canary][check] > shadow[stable][check] ? "worse" : null },
      el("td", {}, check.replaceAll("_", " ")), el("td", {}, percent(shadow[canary][check])),
      el("td", {}, percent(shadow[stable][check]))));
  document.querySelector("#shadow-checks tbody").replaceChildren(...rows);
}

function showRuntime(status) {
  const runtime = status.runtime;
  document.getElementById("runtime-block").hidden = !runtime;
  if (!runtime) return;
  const items = Object.entries(runtime).map(([colour, info]) => {
    const facts = Object.entries(info).filter(([, v]) => v !== null && typeof v !== "object").map(([k, v]) => `${k} ${v}`);
    return el("span", {}, el("span", { class: `dot ${colour}` }), `${colour}: ${facts.join(" · ")} `);
  });
  document.getElementById("runtime").replaceChildren(...items);
}

function eventItem(event) {
  const at = new Date(event.at * 1000).toLocaleTimeString();
  return el("li", { "data-id": event.id, "data-kind": event.kind },
    el("time", {}, at), el("span", { class: "actor" }, event.actor), el("span", { class: "kind" }, event.kind),
    el("span", { class: "message" }, event.message));
}

// -- polling -----------------------------------------------------------------------------------

async function pollReady() {
  const response = await fetch("/ready", { cache: "no-store" });
  const body = await response.json();
  const ready = document.getElementById("ready");
  ready.textContent = body.ready ? "ready" : "not ready";
  ready.className = body.ready ? "outcome-passed" : "outcome-failed";
  const items = Object.entries(body.backends).map(([colour, b]) =>
    el("span", { class: "colour-ready" }, el("span", { class: `dot ${colour}` }), `${colour}: ${b.ready ? "ready" : "not ready"}`,
      b.reason && !b.ready ? el("span", { class: "dim" }, ` (${b.reason})`) : null));
  document.getElementById("ready-colours").replaceChildren(...items);
}

async function pollStatus() {
  const status = await api("GET", "/admin/status");
  showWeights(status);
  showRollout(status.rollout);
  showColours(status);
  showShadow(status);
  showRuntime(status);
}

async function pollEvents() {
  const query = lastEventId === null ? "latest=50" : `since=${lastEventId}&limit=100`;
  const body = await api("GET", `/admin/events?${query}`);
  const list = document.getElementById("events");
  for (const event of body.events) list.prepend(eventItem(event));
  while (list.children.length > 200) list.lastElementChild.remove();
  lastEventId = body.events.length ? body.events[body.events.length - 1].id : (lastEventId ?? 0);
}

async function pollAnalytics() {
  if (!analyticsShown) return;
  try {
    const body = await api("GET", "/admin/analytics?by=category&days=1");
    const rows = body.rows.map((row) =>
      el("tr", {}, el("td", {}, row.key.replaceAll("_", " ")), el("td", {}, row.requests), el("td", {}, percent(row.error_rate)),
        el("td", {}, seconds(row.p95_s)),
        el("td", {}, row.mean_answer_length === null ? "–" : Math.round(row.mean_answer_length))));
    setText("analytics-total", `${body.total.requests} requests in the last day`);
    document.querySelector("#analytics tbody").replaceChildren(...rows);
    document.getElementById("analytics-block").hidden = false;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) analyticsShown = false; // a router without analytics
  }
}

let analyticsTick = 0;

async function tick() {
  try {
    await pollReady();
  } catch (error) {
    setText("ready", `unreachable: ${error.message}`);
  }
  const canRead = !tokenConfigured() || token();
  if (canRead && readsRefused === null) {
    try {
      await pollStatus();
      await pollEvents();
      if (analyticsTick++ % ANALYTICS_EVERY === 0) await pollAnalytics();
      notice("");
    } catch (error) {
      if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
        readsRefused = error.message; // asked again once the token changes, not every second
        notice(`the router refused to show its status: ${error.message}`);
      } else {
        notice(`could not read the status: ${error.message}`);
      }
    }
  }
  setTimeout(tick, POLL_MS);
}

// -- actions -----------------------------------------------------------------------------------

async function act(label, method, path, body) {
  const result = document.getElementById("action-result");
  result.textContent = `${label}…`;
  result.className = "dim";
  try {
    const answer = await api(method, path, body);
    result.textContent = `${label}: done${answer.event ? ` (${answer.event.message})` : ""}`;
    result.className = "ok";
  } catch (error) {
    result.textContent = `${label} refused: ${error.message}`;
    result.className = "refused";
  }
}

function numbers(text) {
  return text.split(/[\s,]+/).filter(Boolean).map(Number);
}

function wireActions() {
  document.getElementById("start-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const body = { steps: numbers(document.getElementById("start-steps").value),
      interval_s: Number(document.getElementById("start-interval").value) };
    act("start cutover", "POST", "/admin/rollout", body);
  });
  for (const button of document.querySelectorAll("[data-action]")) {
    const action = button.dataset.action;
    button.addEventListener("click", () => act(action, "POST", `/admin/rollout/${action}`));
  }
  document.getElementById("weights-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const body = { green: Number(document.getElementById("weights-green").value) };
    const reason = document.getElementById("weights-reason").value.trim();
    if (reason) body.reason = reason;
    act("set weights", "PUT", "/admin/weights", body);
  });
}

tokenForm(() => {
  readsRefused = null;
  showMode();
});
wireActions();
showMode();
tick();

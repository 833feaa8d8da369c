// The clinician's screen: trace, target, timeline, state and controls.
"use strict";

const WINDOW_S = 30;          // seconds of trace on screen
const RENDER_EVERY_MS = 40;   // redraw at most 25 times a second
const COLORS = { raw: "#9aa7b4", env: "#117a65", target: "#c0392b", stim: "#7d3c98",
  goal: "rgba(17,122,101,0.10)", untrusted: "rgba(120,120,120,0.22)", trigger: "#7d3c98", marker: "#1f5fbf" };

const data = [[], [], [], [], []];  // x (s), raw µV, envelope µV, target µV, stimulation mA
const goalUp = [];     // per point: the goal is above the target (a contraction cue), else at or below
const untrusted = [];  // [x0, x1] where the signal is not to be trusted (lead off, saturated, gap)
const triggers = [];   // x of ETS triggers
const marks = [];      // {x, text}: markers and cue changes
let base = null;       // device time (s) at the left of the first frame
let dirty = false, lastRender = 0, lastIndex = null;
const tone = { min_hz: 200, max_hz: 400 };

const live = new Live({ hello, frame, event, status: showStatus, reply, connection });
window.tonus = { live, data, rendered: [] };  // read by the browser tests and the benchmark

function hello(msg) {
  Object.assign(tone, msg.tone || {});
  el("who").textContent = msg.status.protocol
    ? "patient " + msg.status.protocol.patient + " · " + msg.status.protocol.id : "no protocol approved";
  for (const a of data) a.length = 0;
  goalUp.length = 0;
  untrusted.length = triggers.length = marks.length = 0;
  base = null;
  el("log").textContent = "";
}

function xOf(index) { return index / live.rate - base; }

function frame(f) {
  if (base === null) base = f.i / live.rate;
  const step = f.n / f.r.length;
  const target = f.g, stim = f.a;
  const up = !!(live.status && live.status.cue === "CONTRACT");
  for (let k = 0; k < f.r.length; k++) {
    data[0].push(xOf(f.i + k * step));
    data[1].push(f.r[k]);
    data[2].push(f.e);
    data[3].push(target);
    data[4].push(stim);
    goalUp.push(up);
  }
  const x0 = xOf(f.i), x1 = xOf(f.i + f.n);
  if (f.fl & UNTRUSTED) {
    const last = untrusted[untrusted.length - 1];
    if (last && Math.abs(last[1] - x0) < 1e-6) last[1] = x1; else untrusted.push([x0, x1]);
  }
  if (f.fl & FLAG.TRIGGER) triggers.push(x1);
  el("env").textContent = f.e.toFixed(1);
  el("stim").textContent = f.a.toFixed(1);
  showSide(f);
  lastIndex = f.i + f.n;
  window.tonus.lastReceived = { index: lastIndex, h: f.h };
  dirty = true;
}

function showSide(f) {
  const side = el("side"), trust = el("trust");
  trust.textContent = (f.fl & FLAG.LEAD_OFF) ? "lead off: check the probe" :
    (f.fl & FLAG.SATURATED) ? "signal saturated" : "";
  if (!f.g) { side.textContent = "—"; side.className = "big side"; return; }
  const above = f.e > f.g;
  side.textContent = above ? "above" : "at or below";
  const good = (live.status && live.status.cue === "CONTRACT") ? above : !above;
  side.className = "big side " + (good ? "good" : "off");
  el("target").textContent = f.g.toFixed(1) + " µV";
}

function event(msg) {
  const s = msg.status;
  if (msg.kind === "Marker" || msg.kind === "Cue") {
    if (base === null && lastIndex === null) base = msg.at_s;
    marks.push({ x: msg.at_s - base, text: msg.kind === "Marker" ? msg.text.replace(/^marker: /, "") : s.cue,
      marker: msg.kind === "Marker" });
  }
  if (msg.text) addLog(msg.at_s, msg.text, msg.kind);
  dirty = true;
}

function addLog(at_s, text, kind) {
  const li = document.createElement("li");
  li.className = "k-" + kind;
  li.textContent = (at_s != null && base !== null ? fmtClock((at_s - base) * 1000) : "") + "  " + text;
  const log = el("log");
  log.insertBefore(li, log.firstChild);
  while (log.childNodes.length > 200) log.removeChild(log.lastChild);
}

// x is device time from the session's start (pauses included), so the axis, the log and the
// timeline read alike; before a session, from the first frame this page saw.
function rebase(s) {
  if (s.session_start_ms == null) return;
  const b = s.session_start_ms / 1000;
  if (base === b) return;
  const shift = base === null ? 0 : base - b;
  base = b;
  for (let k = 0; k < data[0].length; k++) data[0][k] += shift;
  for (const u of untrusted) { u[0] += shift; u[1] += shift; }
  for (let k = 0; k < triggers.length; k++) triggers[k] += shift;
  for (const m of marks) m.x += shift;
}

function showStatus(s) {
  rebase(s);
  const state = el("state");
  state.textContent = s.state;
  state.className = "state s-" + s.state;
  const cue = s.state === "RUNNING" || s.state === "PAUSED" ? s.cue : null;
  el("cue").textContent = cue ? (CUE_WORDS[cue] || [cue])[0] : "—";
  const f = el("fault");
  if (s.fault) {
    f.hidden = false;
    el("fault-text").textContent = "Fault " + s.fault.name + ": " + s.fault.words +
      (s.fault.detail ? " (" + s.fault.detail + ")" : "") + (s.fault.latched ? " — latched until cleared" : "");
  } else {
    f.hidden = true;
    el("estop").classList.remove("pressed");
  }
  const adv = el("advice");
  adv.hidden = !s.advice;
  adv.textContent = s.advice ? "The device advises ending the session: " + s.advice : "";
  el("stim-state").textContent = s.stim.state ? s.stim.state.toLowerCase() : "off";
  el("level").textContent = s.stim.level_ma.toFixed(1);
  el("limit").textContent = s.stim.limit_ma.toFixed(1);
  el("triggers").textContent = s.triggers;
  el("recording").textContent = s.recording_error ? "RECORDING STOPPED: " + s.recording_error
    : s.recording ? "recording to " + s.recording : "not recording";
  if (s.scores) { el("scores").hidden = false; el("scores-text").textContent = s.scores.join("\n"); }
  showTimeline(s);
}

function showTimeline(s) {
  const box = el("phases"), text = el("phase-text");
  const plan = s.plan;
  const elapsed = s.elapsed_ms, total = s.duration_ms;
  const cueLeft = s.cue_ms ? s.cue_started_ms + s.cue_ms - elapsed : null;
  el("cue-left").textContent = cueLeft !== null && s.state === "RUNNING" ? fmtClock(cueLeft) + " left in this cue" : "";
  box.textContent = "";
  if (plan && plan.length) {
    let t = 0;
    const sum = plan.reduce((a, p) => a + p.seconds, 0) || 1;
    plan.forEach((p, k) => {
      const d = document.createElement("div");
      d.className = "phase p-" + p.kind + (k === s.phase ? " current" : "") + (t * 1000 + p.seconds * 1000 <= elapsed ? " done" : "");
      d.style.flex = String(p.seconds / sum);
      d.textContent = p.kind.replace("_", "/");
      d.title = p.kind + ", " + fmtClock(p.seconds * 1000);
      box.appendChild(d);
      t += p.seconds;
    });
  } else if (total) {
    const d = document.createElement("div");
    d.className = "phase current";
    d.style.flex = "1";
    d.textContent = "session";
    box.appendChild(d);
  }
  if (total) {
    const cursor = document.createElement("div");
    cursor.className = "cursor";
    cursor.style.left = (100 * Math.min(elapsed, total) / total) + "%";
    box.appendChild(cursor);
  }
  let words = total ? fmtClock(elapsed) + " of " + fmtClock(total) + " · " + fmtClock(total - elapsed) + " left" : "no session";
  if (plan && s.phase !== null && s.phase !== undefined && plan[s.phase]) {
    const start = plan.slice(0, s.phase).reduce((a, p) => a + p.seconds, 0) * 1000;
    const left = start + plan[s.phase].seconds * 1000 - elapsed;
    words = "phase " + (s.phase + 1) + " of " + plan.length + " · " + plan[s.phase].kind.replace("_", "/") +
      " · " + fmtClock(left) + " left in the phase · " + words;
  }
  text.textContent = words;
}

function reply(r) {
  const a = el("answer");
  a.textContent = r.text;
  a.className = "answer " + (r.ok ? "ok" : "refused");
  if (!r.ok) addLog(null, "refused: " + r.text, "refusal");
}

function connection(up) {
  el("link").className = "dot " + (up ? "up" : "down");
  if (!up) { el("state").textContent = "no link to tonus view"; el("state").className = "state s-FAULT"; }
}

// -- the chart (uPlot) ------------------------------------------------------------

function shade(u) {
  const ctx = u.ctx, top = u.bbox.top, h = u.bbox.height;
  const xs = u.scales.x;
  ctx.save();
  // the goal, shaded from the target line: down to the bottom while relaxing or resting, up to
  // the top while the cue is to contract
  const d = u.data, n = d[0].length;
  ctx.fillStyle = COLORS.goal;
  let k = 0;
  while (k < n) {
    if (d[3][k] == null) { k++; continue; }
    const up = goalUp[k];
    let j = k;
    while (j + 1 < n && d[3][j + 1] != null && goalUp[j + 1] === up) j++;
    const edge = up ? top : top + h;
    const stride = Math.max(1, Math.floor((j - k) / 600));
    ctx.beginPath();
    ctx.moveTo(u.valToPos(d[0][k], "x", true), edge);
    for (let i = k; i < j; i += stride) ctx.lineTo(u.valToPos(d[0][i], "x", true), u.valToPos(d[3][i], "uv", true));
    ctx.lineTo(u.valToPos(d[0][j], "x", true), u.valToPos(d[3][j], "uv", true));
    ctx.lineTo(u.valToPos(d[0][j], "x", true), edge);
    ctx.closePath();
    ctx.fill();
    k = j + 1;
  }
  ctx.fillStyle = COLORS.untrusted;
  for (const [a, b] of untrusted) {
    if (b < xs.min || a > xs.max) continue;
    const p0 = u.valToPos(Math.max(a, xs.min), "x", true), p1 = u.valToPos(Math.min(b, xs.max), "x", true);
    ctx.fillRect(p0, top, Math.max(1, p1 - p0), h);
  }
  ctx.restore();
}

function lines(u) {
  const ctx = u.ctx, top = u.bbox.top, h = u.bbox.height, xs = u.scales.x;
  ctx.save();
  ctx.font = Math.round(11 * devicePixelRatio) + "px sans-serif";
  for (const x of triggers) {
    if (x < xs.min || x > xs.max) continue;
    const p = u.valToPos(x, "x", true);
    ctx.strokeStyle = COLORS.trigger; ctx.lineWidth = 2 * devicePixelRatio;
    ctx.beginPath(); ctx.moveTo(p, top); ctx.lineTo(p, top + h); ctx.stroke();
  }
  for (const m of marks) {
    if (m.x < xs.min || m.x > xs.max) continue;
    const p = u.valToPos(m.x, "x", true);
    ctx.strokeStyle = m.marker ? COLORS.marker : "#aab";
    ctx.fillStyle = ctx.strokeStyle;
    ctx.lineWidth = devicePixelRatio;
    ctx.setLineDash(m.marker ? [] : [4 * devicePixelRatio, 4 * devicePixelRatio]);
    ctx.beginPath(); ctx.moveTo(p, top); ctx.lineTo(p, top + h); ctx.stroke();
    ctx.fillText(m.text || "", p + 4 * devicePixelRatio, top + 12 * devicePixelRatio);
  }
  ctx.restore();
}

function uvRange(u) {
  const showRaw = u.series[1].show;
  const xs = u.data[0], lo = xs.length ? xs[xs.length - 1] - WINDOW_S : 0;
  let top = 10;
  for (let k = u.data[0].length - 1; k >= 0 && xs[k] >= lo; k--) {
    top = Math.max(top, u.data[2][k] * 1.25, (u.data[3][k] || 0) * 2, showRaw ? Math.abs(u.data[1][k]) : 0);
  }
  top = Math.ceil(top / 10) * 10;
  return [showRaw ? -top : 0, top];
}

const chart = new uPlot({
  width: 800, height: 320,
  scales: { x: { time: false }, uv: { range: uvRange }, ma: { range: (u, a, b) => [0, Math.max(5, (live.status && live.status.stim.limit_ma) || 0, b || 0)] } },
  axes: [
    { scale: "x", values: (u, ticks) => ticks.map((t) => fmtClock(t * 1000)) },
    { scale: "uv", label: "EMG µV", size: 60 },
    { scale: "ma", side: 1, label: "stimulation mA", grid: { show: false }, size: 60 },
  ],
  series: [
    {},
    { label: "raw", scale: "uv", stroke: COLORS.raw, width: 1, show: false },
    { label: "envelope", scale: "uv", stroke: COLORS.env, width: 2.5 },
    { label: "target", scale: "uv", stroke: COLORS.target, width: 2, dash: [10, 6] },
    { label: "stimulation", scale: "ma", stroke: COLORS.stim, width: 1.5 },
  ],
  legend: { live: false },
  cursor: { show: false },
  hooks: { drawClear: [shade], draw: [lines] },
}, data, el("chart"));
window.tonus.chart = chart;

function fit() {
  const box = el("chart").parentElement;
  chart.setSize({ width: box.clientWidth, height: Math.max(220, Math.min(420, Math.round(box.clientWidth * 0.42))) });
}
window.addEventListener("resize", fit);
fit();

el("raw").addEventListener("change", (e) => chart.setSeries(1, { show: e.target.checked }));

function render(now) {
  requestAnimationFrame(render);
  if (!dirty || now - lastRender < RENDER_EVERY_MS) return;
  dirty = false;
  lastRender = now;
  const xs = data[0];
  if (xs.length) {
    const lo = xs[xs.length - 1] - WINDOW_S;
    let cut = 0;
    while (cut < xs.length && xs[cut] < lo) cut++;
    if (cut) {
      for (const a of data) a.splice(0, cut);
      goalUp.splice(0, cut);
    }
    while (untrusted.length && untrusted[0][1] < lo) untrusted.shift();
    while (triggers.length && triggers[0] < lo) triggers.shift();
    while (marks.length && marks[0].x < lo) marks.shift();
  }
  chart.setData(data);
  const r = window.tonus.lastReceived;
  if (r) {
    window.tonus.lastRendered = r.index;
    const stamps = window.tonus.rendered;
    stamps.push([r.index, r.h, performance.timeOrigin + performance.now()]);
    if (stamps.length > 100000) stamps.splice(0, 50000);
  }
  el("stats").textContent = live.stats.frames + " frames · " + live.stats.missed + " missed by this page" +
    (live.stats.behind ? " (" + live.stats.behind + " skipped while it fell behind)" : "");
  if (live.status) showTimeline(live.status);
}
requestAnimationFrame(render);

// -- controls ----------------------------------------------------------------------

function answer(r) { reply(r); }
bindEstop(live, el("estop"), answer);
el("clear").addEventListener("click", () => live.send("clear"));
for (const b of document.querySelectorAll("[data-cmd]")) b.addEventListener("click", () => live.send(b.dataset.cmd));
for (const b of document.querySelectorAll("[data-level]")) {
  b.addEventListener("click", () => live.send("level", { step: Number(b.dataset.level) }));
}
el("marker").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = el("marker-text");
  if (input.value.trim() && live.send("marker", { text: input.value })) input.value = "";
});

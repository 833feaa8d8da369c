// The link to `tonus view`: one WebSocket, the latest status, and what every screen shares.
// Messages (host/view/state.py): "h" hello, "f" stream frame, "e" event with status,
// "r" answer to a command, "d" frames this page missed because it fell behind.
"use strict";

const FLAG = { LEAD_OFF: 1, SATURATED: 2, GAP: 4, STIM: 8, TRIGGER: 16, BLANKED: 32, FEEDBACK: 64 };
const UNTRUSTED = FLAG.LEAD_OFF | FLAG.SATURATED | FLAG.GAP;

const CUE_WORDS = {
  RELAX: ["Relax", "let the muscle go soft and heavy"],
  REST: ["Rest", "breathe out slowly and let go"],
  CONTRACT: ["Squeeze", "lift and hold gently"],
};

function fmtClock(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
}

// The device's biofeedback tone rule (firmware/biofeedback.py feedback_hz): silent at or
// below the target, then rising from min_hz to max_hz as the envelope climbs to twice the
// target. The device says when its tone sounds (FLAG.FEEDBACK); the pitch follows the rule.
function feedbackHz(frame, tone) {
  if (!(frame.fl & FLAG.FEEDBACK) || !frame.g) return 0;
  const target = Math.round(frame.g * 10), env = Math.round(frame.e * 10);
  let over = env - target;
  if (over <= 0) return 0;
  if (over > target) over = target;
  return tone.min_hz + Math.floor((tone.max_hz - tone.min_hz) * over / target);
}

class Live {
  constructor(handlers) {
    this.handlers = handlers;
    this.status = null;
    this.rate = 2000;
    this.stats = { frames: 0, missed: 0, behind: 0, lastEnd: null, rendered: [] };
    this.connected = false;
    this.nextId = 1;
    this.connect();
  }

  connect() {
    const base = location.pathname.replace(/\/(patient)?$/, "/");
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + base + "ws";
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => { this.connected = true; this.handlers.connection && this.handlers.connection(true); };
    ws.onclose = () => {
      this.connected = false;
      this.handlers.connection && this.handlers.connection(false);
      setTimeout(() => this.connect(), 1000);
    };
    ws.onmessage = (ev) => this.take(JSON.parse(ev.data));
  }

  take(msg) {
    if (msg.t === "h") {
      this.rate = msg.rate_hz;
      this.hello = msg;
      this.stats.lastEnd = null;
      this.setStatus(msg.status);
      this.handlers.hello && this.handlers.hello(msg);
    } else if (msg.t === "f") {
      const st = this.stats;
      if (st.lastEnd !== null && msg.i > st.lastEnd && msg.i - st.lastEnd < this.rate * 3600) {
        st.missed += Math.round((msg.i - st.lastEnd) / msg.n);
      }
      if (st.lastEnd === null || msg.i >= st.lastEnd) st.lastEnd = msg.i + msg.n;
      st.frames += 1;
      if (this.status) {
        this.status.state = msg.s;
        this.status.elapsed_ms = msg.el;
        this.status.target_uv = msg.g;
      }
      this.handlers.frame && this.handlers.frame(msg);
    } else if (msg.t === "e") {
      this.setStatus(msg.status);
      this.handlers.event && this.handlers.event(msg);
    } else if (msg.t === "r") {
      this.handlers.reply && this.handlers.reply(msg);
    } else if (msg.t === "d") {
      this.stats.behind = msg.n;
    }
  }

  setStatus(s) {
    this.status = s;
    this.handlers.status && this.handlers.status(s);
  }

  send(cmd, extra) {
    if (!this.connected) return false;
    this.ws.send(JSON.stringify(Object.assign({ cmd: cmd, id: this.nextId++ }, extra || {})));
    return true;
  }
}

// Web Audio for the feedback tone; muted on request, and silent until the page was touched
// once (browsers start audio only after a gesture).
class Tone {
  constructor() { this.ctx = null; this.muted = false; this.hz = 0; }
  unlock() {
    if (this.ctx) return;
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return;
    this.ctx = new AC();
    this.osc = this.ctx.createOscillator();
    this.gain = this.ctx.createGain();
    this.osc.type = "sine";
    this.gain.gain.value = 0;
    this.osc.connect(this.gain).connect(this.ctx.destination);
    this.osc.start();
  }
  set(hz) {
    this.hz = hz;
    if (!this.ctx) return;
    const now = this.ctx.currentTime;
    if (hz > 0) this.osc.frequency.setTargetAtTime(hz, now, 0.02);
    this.gain.gain.setTargetAtTime(hz > 0 && !this.muted ? 0.15 : 0, now, 0.03);
  }
  toggle() { this.muted = !this.muted; this.set(this.hz); return this.muted; }
}

function el(id) { return document.getElementById(id); }

function bindEstop(live, button, onAnswer) {
  button.addEventListener("click", () => {
    button.classList.add("pressed");
    if (!live.send("estop")) onAnswer({ ok: false, text: "not connected: press the button on the device" });
  });
}

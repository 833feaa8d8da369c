// The patient's screen: large and calm. The level against the target as a bar, the cue in
// words, time left, the feedback tone (the device's rule), pause/continue and STOP.
"use strict";

const tone = { min_hz: 200, max_hz: 400 };
const sound = new Tone();
let scaleTop = 40;  // µV at the top of the bar; grows with the target, never jumps down fast

const live = new Live({ hello, frame, status: showStatus, reply, connection });
window.tonus = { live, sound };

function hello(msg) { Object.assign(tone, msg.tone || {}); }

function frame(f) {
  const goal = el("goal"), fill = el("fill");
  if (f.g) scaleTop = Math.max(scaleTop * 0.995, f.g * 2.5, f.e * 1.1);
  else scaleTop = Math.max(scaleTop * 0.995, f.e * 1.2, 20);
  fill.style.height = Math.min(100, 100 * f.e / scaleTop) + "%";
  const relaxing = live.status && live.status.cue !== "CONTRACT";
  if (f.g) {
    goal.hidden = false;
    goal.style.bottom = Math.min(100, 100 * f.g / scaleTop) + "%";
    const good = relaxing ? f.e <= f.g : f.e >= f.g;
    fill.className = "fill " + (good ? "good" : "work");
    el("feel").textContent = good ? (relaxing ? "Well done — soft and low" : "Good, hold it") :
      (relaxing ? "Let go a little more" : "A little stronger");
  } else {
    goal.hidden = true;
    fill.className = "fill";
    el("feel").textContent = f.s === "RUNNING" ? "Just breathe and notice" : "";
  }
  const hz = f.s === "RUNNING" ? feedbackHz(f, tone) : 0;
  window.tonus.toneHz = hz;
  sound.set(hz);
  showLeft(live.status);
}

function showLeft(s) {
  if (!s) return;
  el("left").textContent = s.duration_ms && (s.state === "RUNNING" || s.state === "PAUSED")
    ? fmtClock(s.duration_ms - s.elapsed_ms) + " left" : "";
}

function showStatus(s) {
  const active = s.state === "RUNNING" || s.state === "PAUSED";
  const words = active && s.cue ? CUE_WORDS[s.cue] || [s.cue, ""] : null;
  el("cue").textContent = s.state === "PAUSED" ? "Paused" : words ? words[0] :
    s.state === "DONE" ? "Well done" : s.state === "FAULT" ? "Stopped" : "Ready";
  el("cue-hint").textContent = s.state === "PAUSED" ? "press Continue when you are ready" : words ? words[1] :
    s.state === "DONE" ? "the session is over" : "";
  el("state").textContent = s.state.toLowerCase();
  el("state").className = "state s-" + s.state;
  el("pause").hidden = s.state !== "RUNNING";
  el("resume").hidden = s.state !== "PAUSED";
  el("start").hidden = active || s.state === "FAULT";
  const f = el("fault");
  f.hidden = !s.fault;
  el("fault-text").textContent = s.fault ? "Stopped: " + s.fault.words + ". Call your physiotherapist before you go on." : "";
  if (!s.fault) el("estop").classList.remove("pressed");
  const adv = el("advice");
  adv.hidden = !s.advice;
  adv.textContent = s.advice ? "It is fine to stop here: " + s.advice : "";
  if (!active) sound.set(0);
  showLeft(s);
}

function reply(r) {
  const a = el("answer");
  a.textContent = r.ok ? "" : r.text;
  a.className = "answer " + (r.ok ? "ok" : "refused");
}

function connection(up) {
  if (!up) { el("state").textContent = "not connected"; el("state").className = "state s-FAULT"; sound.set(0); }
}

bindEstop(live, el("estop"), reply);
for (const b of document.querySelectorAll("[data-cmd]")) b.addEventListener("click", () => live.send(b.dataset.cmd));
document.addEventListener("pointerdown", () => sound.unlock(), { once: true });
el("mute").addEventListener("click", () => {
  const muted = sound.toggle();
  el("mute").textContent = muted ? "Sound off" : "Sound on";
  el("mute").setAttribute("aria-pressed", String(muted));
});

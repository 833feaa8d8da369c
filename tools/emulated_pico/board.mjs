// The emulated tonus Pico: rp2040js running MicroPython, with the carrier board around it.
//
// Started by tools/emulated_pico/board.py with one JSON argument (see there).
// stdin/stdout carry JSON lines: requests from the controller ({"id", "op", ...},
// answered {"id", ...}) and events to it ({"ev", ...}). The board's USB CDC is
// a TCP server, so a host opens it as socket://HOST:PORT.
//
// What rp2040js 1.4.1 lacks, added here (docs/emulated-pico.md):
// - flash erase/program: the bootrom's flash_range_erase/program become BKPT
//   traps handled on the flash array, with the flash's own busy time;
// - a watchdog (or machine.reset) that resets the whole chip: a new chip is
//   built around the same flash, watchdog REASON and scratch registers;
// - pads reset to 0x56 (input enabled) as on silicon, not 0x36, and a driven pad
//   reads back its own level;
// - PIO stepped at each state machine's CLKDIV in lockstep with the CPU
//   (instruction delays included), not from a host timer.
// Around the chip: the ADS1292R on SPI0 + DRDY/DOUT/SCLK, the output stage
// (static enable AND a charge pump fed by keepalive edges, e-stop in series,
// MCP4822 DAC on SPI1, H-bridge legs and track-and-hold sense on ADC0..2,
// dummy-load relay), e-stop and buttons.

import fs from 'node:fs';
import net from 'node:net';
import readline from 'node:readline';
import { RP2040, USBCDC } from 'rp2040js';

const cfg = JSON.parse(process.argv[2]);
const CYCLE_NS = 8; // 125 MHz
const FLASH_BYTES = 2 * 1024 * 1024;
const PIN = cfg.pins; // names -> GPIO, from firmware/profiles/pico.json
const OUT = cfg.output; // the profile's output block
const HOLD_NS = cfg.hold_ms * 1e6;
const SLICE_NS = 2e6; // board time run between two turns of the host's event loop
const ERASE_NS = 45e6; // W25Q16JV sector erase, typical; no interrupt runs meanwhile
const PAGE_NS = 0.4e6; // page program, typical

function send(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}
function log(msg) {
  process.stderr.write('[emulated-pico] ' + msg + '\n');
}

// stdout is the controller's channel: the chip's complaints go to stderr, and none throws
const chipLogger = {
  debug() {},
  info() {},
  warn(component, msg) {
    log(`${component}: ${msg}`);
  },
  error(component, msg) {
    log(`${component}: ${msg}`);
  },
};

// -- flash: the part that outlives a chip ---------------------------------

const flash = new Uint8Array(FLASH_BYTES).fill(0xff);
function loadUF2(path) {
  const buf = fs.readFileSync(path);
  for (let off = 0; off + 512 <= buf.length; off += 512) {
    const v = new DataView(buf.buffer, buf.byteOffset + off, 512);
    if (v.getUint32(0, true) !== 0x0a324655 || v.getUint32(4, true) !== 0x9e5d5157) {
      throw new Error(`${path}: not a UF2 block at ${off}`);
    }
    const addr = v.getUint32(12, true) - 0x10000000;
    const size = v.getUint32(16, true);
    if (addr < 0 || addr + size > FLASH_BYTES) throw new Error(`${path}: block outside the flash`);
    flash.set(buf.subarray(off + 32, off + 32 + size), addr);
  }
}
loadUF2(cfg.firmware);
if (cfg.fs_image) {
  const img = fs.readFileSync(cfg.fs_image);
  if (cfg.fs_offset + img.length > FLASH_BYTES) throw new Error('filesystem image past the flash');
  flash.set(img, cfg.fs_offset);
}
const bootrom = (() => {
  const b = fs.readFileSync(cfg.bootrom);
  const words = new Uint32Array(b.length / 4);
  for (let i = 0; i < words.length; i++) words[i] = b.readUInt32LE(4 * i);
  return words;
})();

const BKPT_ERASE = 0x71;
const BKPT_PROGRAM = 0x72;
function patchBootrom(words) {
  const half = (a) => (words[a >> 2] >>> ((a & 2) * 8)) & 0xffff;
  const setHalf = (a, v) => {
    const sh = (a & 2) * 8;
    words[a >> 2] = ((words[a >> 2] & ~(0xffff << sh)) | (v << sh)) >>> 0;
  };
  const found = {};
  for (let p = half(0x14); half(p) !== 0; p += 4) found[half(p)] = half(p + 2) & ~1;
  const code = (s) => s.charCodeAt(0) | (s.charCodeAt(1) << 8);
  for (const [name, bkpt] of [['RE', BKPT_ERASE], ['RP', BKPT_PROGRAM]]) {
    const at = found[code(name)];
    if (at === undefined) throw new Error(`bootrom has no '${name}' function`);
    setHalf(at, 0xbe00 | bkpt); // BKPT #n
    setHalf(at + 2, 0x4770); // BX LR
  }
}
patchBootrom(bootrom);

// -- board state that outlives a chip ----------------------------------------

let timeBase = 0; // ns of board time before the current chip
let chip = null;
let clock = null;
let cdc = null;
let usbReady = false;
let stall = 0; // ns the CPU is held (flash busy)
let pendingReset = null;
const resets = [];
let estopOpen = !!cfg.estop_open;
const buttons = { start: !!cfg.hold_start, up: false, down: false }; // held at power-on: the maintenance boot
let loadOhms = cfg.load_ohms; // electrodes on tissue; null = open
let profiling = null;

// -- EMG: ring words (LOFF_STAT << 24 | code) from the controller ------------

const emg = {
  chunks: [],
  pos: 0,
  have: 0,
  asked: false,
  converted: 0,
  underruns: 0,
  frames: 0, // frames clocked out completely by the PIO
  last: 0,
};
function emgPush(words) {
  emg.chunks.push(words);
  emg.have += words.length;
  emg.asked = false;
}
function emgAsk() {
  if (emg.have < cfg.emg_low_water && !emg.asked) {
    emg.asked = true;
    send({ ev: 'emg_need', next: emg.converted + emg.have });
  }
}
function emgNext() {
  emgAsk();
  if (!emg.have) {
    emg.underruns++;
    return 0;
  }
  const c = emg.chunks[0];
  const w = c[emg.pos++];
  emg.have--;
  if (emg.pos === c.length) {
    emg.chunks.shift();
    emg.pos = 0;
  }
  return w;
}

// -- the chip ---------------------------------------------------------------

function newChip(reason) {
  chip = new RP2040(); // its own SimulationClock: board time restarts with the chip
  clock = chip.clock;
  chip.logger = chipLogger;
  chip.loadBootrom(bootrom);
  chip.flash.set(flash); // loadBootrom reset the array
  for (const g of chip.gpio) {
    g.padValue = 0x56; // RP2040 pad reset value: input enabled, pull-down
    // a driven pad reads back its own level (GPIO_IN, IRQs, PIO inputs), as on silicon;
    // rp2040js keeps output and input apart, so Pin.value() of an output read 0
    g.addListener((state) => {
      if (state === 0 || state === 1) g.setInputValue(state === 1);
    });
  }
  const wd = chip.peripherals[0x40058];
  if (reason) {
    wd.reason = reason.wd_reason;
    wd.scratchData.set(reason.scratch);
  }
  wd.onWatchdogTrigger = () => {
    // the expired timer would re-fire at the same instant for ever: stop it, the chip is going down
    wd.alarm.enable = false;
    wd.timer.enable = false;
    if (!pendingReset) {
      pendingReset = { why: wd.reason & 1 ? 'watchdog' : 'requested', wd_reason: wd.reason, scratch: wd.scratchData.slice() };
    }
  };
  chip.onBreak = onBreak;
  setupPio();
  setupInputs();
  setupFrontEnd();
  setupOutput();
  setupUsb();
  chip.core.PC = 0x10000000; // boot2 then the image, as the bootrom would after its checks
}

function onBreak(code) {
  const r = chip.core.registers;
  if (code === BKPT_ERASE) {
    const addr = r[0] >>> 0;
    const n = r[1] >>> 0;
    if (addr + n <= FLASH_BYTES) {
      flash.fill(0xff, addr, addr + n);
      chip.flash.fill(0xff, addr, addr + n);
    }
    stall += ERASE_NS * Math.ceil(n / 4096);
    flashOps.erases++;
  } else if (code === BKPT_PROGRAM) {
    const addr = r[0] >>> 0;
    const data = r[1] >>> 0;
    const n = r[2] >>> 0;
    for (let i = 0; i < n && addr + i < FLASH_BYTES; i++) {
      const v = flash[addr + i] & chip.readUint8(data + i); // NOR: programming only clears bits
      flash[addr + i] = v;
      chip.flash[addr + i] = v;
    }
    stall += PAGE_NS * Math.ceil(n / 256);
    flashOps.programs++;
  } else {
    log(`BKPT #${code} at ${(chip.core.PC >>> 0).toString(16)}`);
  }
}
const flashOps = { erases: 0, programs: 0 };

// -- PIO in lockstep ----------------------------------------------------------

let cyc = 0; // CPU cycles of this chip
const sms = [];
function setupPio() {
  sms.length = 0;
  for (const pio of chip.pio) {
    pio.run = () => {}; // no host timer: the loop below steps it
    for (const m of pio.machines) sms.push({ pio, m, next: 0, on: false });
    const write = pio.writeUint32.bind(pio);
    pio.writeUint32 = (offset, value) => {
      write(offset, value);
      refreshMachines();
    };
  }
}
let nextPio = Infinity;
function divOf(m) {
  const d = (m.clockDivInt || 65536) + m.clockDivFrac / 256;
  return d;
}
function refreshMachines() {
  nextPio = Infinity;
  for (const s of sms) {
    if (s.m.enabled && !s.on) {
      s.on = true;
      s.next = cyc;
    } else if (!s.m.enabled) {
      s.on = false;
    }
    if (s.on && s.next < nextPio) nextPio = s.next;
  }
}
function stepPio() {
  let stepped0 = false;
  let stepped1 = false;
  nextPio = Infinity;
  for (const s of sms) {
    if (!s.on) continue;
    if (cyc >= s.next) {
      const before = s.m.cycles;
      s.m.step();
      const spent = s.m.cycles - before;
      s.next += divOf(s.m) * (spent > 1 ? spent : 1);
      if (s.pio === chip.pio[0]) stepped0 = true;
      else stepped1 = true;
    }
    if (s.next < nextPio) nextPio = s.next;
  }
  if (stepped0) chip.pio[0].checkChangedPins();
  if (stepped1) chip.pio[1].checkChangedPins();
}

// -- inputs: e-stop and buttons (pulled up; closed/pressed reads 0) ----------

function setupInputs() {
  chip.gpio[PIN.estop].setInputValue(estopOpen);
  chip.gpio[PIN.btn_start].setInputValue(!buttons.start);
  chip.gpio[PIN.btn_up].setInputValue(!buttons.up);
  chip.gpio[PIN.btn_down].setInputValue(!buttons.down);
}

// -- ADS1292R --------------------------------------------------------------------

const RATE_CODES = [125, 250, 500, 1000, 2000, 4000, 8000];
const afe = {};
function afeReset() {
  afe.regs = [0x73, 0x02, 0x80, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0x0c];
  afe.rdatac = true; // the chip powers up in RDATAC
  afe.converting = false;
  afe.cmd = null; // a multi-byte command in progress
  afe.bits = null; // the frame being clocked out
  afe.bit = 0;
}
function setupFrontEnd() {
  afeReset();
  const g = chip.gpio;
  g[PIN.afe_drdy].setInputValue(true);
  g[PIN.afe_dout].setInputValue(false);
  afe.alarm = clock.createAlarm(afeConvert);
  afe.drdyAlarm = clock.createAlarm(() => {
    afeLoadFrame();
    g[PIN.afe_drdy].setInputValue(false);
  });
  const spi = chip.spi[0];
  const done = clock.createAlarm(() => spi.completeTransmit(afe.reply));
  spi.onTransmit = (b) => {
    afe.reply = afeByte(b);
    const hz = spi.clockFrequency || 1e6;
    done.schedule((8 * 1e9) / hz);
  };
  g[PIN.afe_cs].addListener(() => {
    if (csHigh()) afe.cmd = null; // CS high aborts a command
  });
  g[PIN.afe_reset].addListener((state) => {
    if (state === 0) {
      // PWDN/RESET low: the chip resets and stops
      afe.alarm.cancel();
      afeReset();
    }
  });
  g[PIN.afe_sclk].addListener((state, old) => {
    if (csHigh() || !afe.bits) return;
    if (state === 1 && old === 0) {
      // rising: the chip shifts the next bit out, MSB first
      const i = afe.bit++;
      if (i < 72) g[PIN.afe_dout].setInputValue(!!((afe.bits[(i / 24) | 0] >>> (23 - (i % 24))) & 1));
      if (i === 71) emg.frames++;
    } else if (state === 0 && old === 1 && afe.bit === 1) {
      g[PIN.afe_drdy].setInputValue(true); // DRDY rises at the first falling SCLK edge
    }
  });
}
function csHigh() {
  const p = chip.gpio[PIN.afe_cs];
  return p.value !== 0; // driven low selects; anything else (high, undriven) does not
}
function afeByte(b) {
  if (csHigh()) return 0;
  const c = afe.cmd;
  if (c) {
    if (c.n === null) {
      c.n = (b & 0x1f) + 1;
      return 0;
    }
    const reg = c.addr + c.i++;
    let out = 0;
    if (reg < afe.regs.length) {
      if (c.write) {
        if (reg !== 0) afe.regs[reg] = b;
      } else out = afe.regs[reg];
    }
    if (c.i >= c.n) afe.cmd = null;
    return out;
  }
  if ((b & 0xe0) === 0x20 || (b & 0xe0) === 0x40) {
    if (!afe.rdatac) afe.cmd = { write: (b & 0xe0) === 0x40, addr: b & 0x1f, n: null, i: 0 };
    return 0;
  }
  switch (b) {
    case 0x11: // SDATAC
      afe.rdatac = false;
      break;
    case 0x10: // RDATAC
      afe.rdatac = true;
      break;
    case 0x08: // START
      emgAsk(); // words arrive before the first conversion is due
      if (!afe.converting) {
        afe.converting = true;
        afe.alarm.schedule(afePeriod());
      }
      break;
    case 0x0a: // STOP
      afe.converting = false;
      afe.alarm.cancel();
      break;
    case 0x06: // RESET
      afeReset();
      break;
  }
  return 0;
}
function afePeriod() {
  return 1e9 / RATE_CODES[afe.regs[1] & 7];
}
function afeConvert() {
  afe.alarm.schedule(afePeriod());
  afe.pending = emgNext();
  emg.converted++;
  const drdy = chip.gpio[PIN.afe_drdy];
  if (!drdy.rawInputValue) {
    drdy.setInputValue(true); // an unread frame: DRDY pulses high before the next
    afe.drdyAlarm.schedule(1000);
  } else {
    afeLoadFrame();
    drdy.setInputValue(false);
  }
}
function afeLoadFrame() {
  const w = afe.pending;
  const loff = (w >>> 24) & 0x1f;
  const status = 0xc00000 | (loff << 15) | (((afe.regs[11] >> 2) & 3) << 13);
  afe.bits = [status, w & 0xffffff, 0];
  afe.bit = 0;
  if (afe.rdatac) emg.last = w;
}

// -- output stage --------------------------------------------------------------

const out = {
  pumpUntil: 0, // charge pump holds the enable until then (board ns)
  dac: 0,
  dacBytes: [],
  dacLatches: 0, // DAC writes that took effect
  dacInPulse: 0, // of them, inside a pulse (its two phases then differ)
  pulses: 0,
  lastPulse: null,
  history: [], // the latest pulses that reached the load, oldest first
  phase: null,
  lapses: 0,
  enables: 0,
  lastEdge: null, // board ns at which the static enable last went low
  lastKeepalive: null,
  intervals: [], // ns between keepalive edges
  estopAt: null, // board ns of the last e-stop press
  estopToOffNs: null, // from that press to the enable going low
};
function now() {
  return timeBase + clock.nanos;
}
function outEnable() {
  return chip.gpio[PIN.out_enable].value === 1;
}
function outLive() {
  return outEnable() && now() < out.pumpUntil && !estopOpen;
}
function dacUa() {
  return Math.round((out.dac * OUT.dac_full_scale_ua) / 4096);
}
function setupOutput() {
  const g = chip.gpio;
  out.pumpUntil = 0;
  out.dac = 0;
  out.dacBytes = [];
  out.phase = null;
  out.pumpAlarm = clock.createAlarm(() => {
    if (outEnable()) {
      out.lapses++;
      // what the CPU did since the last keepalive edge: the samples of a running profile
      if (profiling && !profiling.lapse) {
        const since = now() - HOLD_NS - 5e6;
        profiling.lapse = profiling.recent.filter(([t]) => t >= since);
      }
    }
    updateSense();
  });
  g[PIN.out_enable].addListener((state, old) => {
    if (state === 1 && old !== 1) out.enables++;
    if (state !== 1) {
      out.lastEdge = now();
      out.lastKeepalive = null;
      if (out.estopAt !== null && out.estopToOffNs === null) out.estopToOffNs = out.lastEdge - out.estopAt;
    }
    updateSense();
  });
  g[PIN.out_keepalive].addListener(() => {
    if (!outEnable()) return;
    const t = now();
    // one edge per main-loop pass while the output is enabled: the pass period, seen from outside
    if (out.lastKeepalive !== null && out.intervals.length < 100000) out.intervals.push(t - out.lastKeepalive);
    out.lastKeepalive = t;
    out.pumpUntil = now() + HOLD_NS;
    out.pumpAlarm.schedule(HOLD_NS);
    updateSense();
  });
  const spi = chip.spi[1];
  const done = clock.createAlarm(() => spi.completeTransmit(0));
  spi.onTransmit = (b) => {
    if (g[PIN.dac_cs].value === 0) out.dacBytes.push(b & 0xff);
    done.schedule((8 * 1e9) / (spi.clockFrequency || 1e7));
  };
  g[PIN.dac_cs].addListener((state) => {
    if (state === 1) {
      const [hi, lo] = out.dacBytes;
      // MCP4822: bit 15 channel B, bit 12 output on; latched on CS rising (LDAC low)
      if (out.dacBytes.length === 2 && !(hi & 0x80)) {
        out.dac = hi & 0x10 ? ((hi & 0x0f) << 8) | lo : 0;
        out.dacLatches++;
        if (out.phase) out.dacInPulse++;
      }
      out.dacBytes = [];
    }
  });
  // the legs and track-and-hold gates the pulse engine drives
  g[PIN.leg_a].addListener(legs);
  g[PIN.leg_b].addListener(legs);
  for (const [pin, ch, what] of [
    [PIN.th_i1, 0, 'ua'],
    [PIN.th_i2, 1, 'ua'],
    [PIN.th_v, 2, 'mv'],
  ]) {
    g[pin].addListener((state, old) => {
      if (state === 0 && old === 1) hold(ch, what);
    });
  }
  updateSense();
}
function updateSense() {
  const on = outEnable() && now() < out.pumpUntil;
  chip.gpio[PIN.out_sense].setInputValue(on && !estopOpen);
}
function loadNow() {
  if (chip.gpio[PIN.dummy_load].value === 1) return OUT.dummy_load_ohm;
  return loadOhms;
}
function deliveredUa() {
  const r = loadNow();
  if (!outLive() || r === null) return 0;
  return Math.min(dacUa(), Math.floor((OUT.compliance_mv * 1000) / r));
}
function legs() {
  const a = chip.gpio[PIN.leg_a].value === 1;
  const b = chip.gpio[PIN.leg_b].value === 1;
  const t = now();
  if (a && !out.phase) out.phase = { t0: t, live: outLive(), set: dacUa(), ua1: deliveredUa(), ua2: 0, p1: 0, p2: 0, b: false };
  const p = out.phase;
  if (!p) return;
  if (!a && !p.p1 && !b) p.p1 = t - p.t0;
  if (b && !p.b) {
    p.b = true;
    p.tb = t;
    p.ua2 = deliveredUa();
  }
  if (!b && p.b) {
    p.p2 = t - p.tb;
    out.pulses++;
    out.lastPulse = { t_ns: p.t0, set_ua: p.set, ua1: p.ua1, ua2: p.ua2, phase1_ns: p.p1, phase2_ns: p.p2 };
    if (p.live) {
      out.history.push(out.lastPulse);
      if (out.history.length > 4096) out.history.shift();
    }
    out.phase = null;
  }
}
function hold(ch, what) {
  const ua = ch === 1 ? (out.phase ? out.phase.ua2 : 0) : out.phase ? out.phase.ua1 : 0;
  const r = loadNow();
  let code;
  if (what === 'ua') code = (ua * 4096) / OUT.sense_full_scale_ua;
  else {
    const mv = r === null ? (outLive() ? OUT.compliance_mv : 0) : (ua * r) / 1000;
    code = (mv * 4096) / OUT.sense_full_scale_mv;
  }
  chip.adc.channelValues[ch] = Math.max(0, Math.min(4095, Math.round(code)));
}

// -- USB CDC as a TCP server ------------------------------------------------------

let client = null;
const rx = []; // bytes from the host not yet in the CDC FIFO
// What the board wrote on USB since its last reset, whether or not a host listened: a boot that
// fails prints its traceback there before any host connects (the tail, CONSOLE_BYTES at most).
const CONSOLE_BYTES = 4096;
let consoleTail = Buffer.alloc(0);
function setupUsb() {
  usbReady = false;
  cdc = new USBCDC(chip.usbCtrl);
  cdc.onDeviceConnected = () => {
    usbReady = true;
    send({ ev: 'usb', connected: true, t_ns: now() });
  };
  cdc.onSerialData = (data) => {
    const b = Buffer.from(data);
    consoleTail = Buffer.concat([consoleTail, b]).subarray(-CONSOLE_BYTES);
    if (client) client.write(b);
  };
}
function pumpRx() {
  if (!usbReady) return;
  const fifo = cdc.txFIFO;
  let n = 0;
  while (rx.length && !fifo.full && n < 64) {
    cdc.sendSerialByte(rx.shift());
    n++;
  }
}
const server = net.createServer((sock) => {
  if (client) {
    sock.destroy(); // one host at a time, like a serial port opened exclusively
    return;
  }
  client = sock;
  sock.setNoDelay(true);
  sock.on('data', (d) => {
    for (const b of d) rx.push(b);
  });
  const gone = () => {
    if (client === sock) {
      client = null;
      rx.length = 0;
    }
  };
  sock.on('close', gone);
  sock.on('error', gone);
});

// -- the run loop ---------------------------------------------------------------

function resetChip(r) {
  timeBase += clock.nanos;
  resets.push({ t_ns: timeBase, why: r.why });
  send({ ev: 'reset', why: r.why, t_ns: timeBase });
  // The host keeps its socket, as a port behind a USB-serial bridge would (a Pico's native USB
  // re-enumerates); what it sends before the new chip's USB is up is lost, as on the wire.
  rx.length = 0;
  consoleTail = Buffer.alloc(0);
  cyc = 0;
  stall = 0;
  nextPio = Infinity;
  newChip(r.why === 'power' ? null : r);
}

function runSlice() {
  const core = chip.core;
  const end = clock.nanos + SLICE_NS;
  pumpRx();
  const wall0 = Date.now();
  let iters = 0;
  while (clock.nanos < end && !pendingReset) {
    if ((++iters & 0xfffff) === 0 && Date.now() - wall0 > 3000) {
      log(`slow slice: pc=${(core.PC >>> 0).toString(16)} waiting=${core.waiting} nanos=${clock.nanos} end=${end} cyc=${cyc} nextPio=${nextPio} stall=${stall} alarm=${clock.nextAlarm && clock.nextAlarm.nanos}`);
    }
    if (stall > 0) {
      // the flash is busy: the CPU waits, peripherals and PIO go on
      const c = Math.ceil(stall / CYCLE_NS);
      const step = Math.min(c, Number.isFinite(nextPio) ? Math.max(1, Math.ceil(nextPio - cyc)) : c);
      cyc += step;
      clock.tick(step * CYCLE_NS);
      stall -= step * CYCLE_NS;
    } else if (core.waiting) {
      let dt = clock.nanosToNextAlarm;
      let c = dt > 0 ? Math.ceil(dt / CYCLE_NS) : 1;
      if (Number.isFinite(nextPio)) c = Math.min(c, Math.max(1, Math.ceil(nextPio - cyc)));
      cyc += c;
      clock.tick(c * CYCLE_NS);
    } else {
      const c = core.executeInstruction();
      cyc += c;
      clock.tick(c * CYCLE_NS);
      if (profiling && cyc >= profiling.next) {
        profiling.next = cyc + profiling.every;
        const pc = core.PC >>> 0;
        profiling.hist.set(pc, (profiling.hist.get(pc) || 0) + 1);
        profiling.recent[profiling.at] = [now(), pc];
        profiling.at = (profiling.at + 1) % profiling.recent.length;
      }
    }
    if (cyc >= nextPio) stepPio();
  }
  if (pendingReset) {
    const r = pendingReset;
    pendingReset = null;
    resetChip(r);
  }
}

// The patient's EMG comes from the Python side when asked for; on a loaded machine the answer can
// come late, and board time must wait for it rather than run the front end dry (board time never
// depends on the machine's load). EMG_WAIT_BELOW words are many slices' worth at 2 kHz.
const EMG_WAIT_BELOW = 64;

let running = true;
function loop() {
  if (!running) return;
  if (emg.asked && emg.have < EMG_WAIT_BELOW) {
    setTimeout(loop, 1);
    return;
  }
  runSlice();
  setImmediate(loop);
}

// -- requests from the controller ----------------------------------------------------

function state() {
  return {
    t_ns: now(),
    resets,
    usb: usbReady,
    host: !!client,
    estop_open: estopOpen,
    buttons,
    load_ohms: loadOhms,
    out: {
      enable: outEnable(),
      sense: chip.gpio[PIN.out_sense].inputValue,
      live: outLive(),
      dac_ua: dacUa(),
      dac_latches: out.dacLatches,
      dac_in_pulse: out.dacInPulse,
      pulses: out.pulses,
      last_pulse: out.lastPulse,
      lapses: out.lapses,
      enables: out.enables,
      off_since_ns: out.lastEdge,
      estop_to_off_ns: out.estopToOffNs,
      dummy_load: chip.gpio[PIN.dummy_load].value === 1,
    },
    led: chip.gpio[PIN.led].value === 1,
    emg: { converted: emg.converted, buffered: emg.have, underruns: emg.underruns, frames: emg.frames },
    flash: flashOps,
  };
}

const ops = {
  state: () => state(),
  estop(req) {
    estopOpen = !!req.open;
    if (estopOpen) {
      out.estopAt = now();
      out.estopToOffNs = outEnable() ? null : 0;
    }
    chip.gpio[PIN.estop].setInputValue(estopOpen);
    updateSense();
    return { t_ns: now() };
  },
  button(req) {
    if (!(req.name in buttons)) throw new Error('no button ' + req.name);
    buttons[req.name] = !!req.pressed;
    chip.gpio[PIN['btn_' + req.name]].setInputValue(!req.pressed);
    return { t_ns: now() };
  },
  load(req) {
    loadOhms = req.ohms === null ? null : Number(req.ohms);
    return {};
  },
  emg(req) {
    const b = Buffer.from(req.data, 'base64');
    const words = new Uint32Array(b.length / 4);
    for (let i = 0; i < words.length; i++) words[i] = b.readUInt32LE(4 * i);
    emgPush(words);
    return null;
  },
  power_cycle() {
    pendingReset = { why: 'power' };
    return {};
  },
  profile(req) {
    if (req.on) {
      // recent: the last samples with their board time, kept for the first lapse of the output hold
      profiling = { every: req.every || 997, next: cyc, hist: new Map(), recent: new Array(16384).fill([0, 0]), at: 0, lapse: null };
      return {};
    }
    const p = profiling;
    profiling = null;
    if (!p) return { samples: [] };
    return {
      samples: [...p.hist.entries()].sort((a, b) => b[1] - a[1]).slice(0, req.top || 200),
      lapse: p.lapse ? p.lapse.sort((a, b) => a[0] - b[0]) : null,
    };
  },
  keepalive_intervals() {
    const v = out.intervals;
    out.intervals = [];
    return { ns: v };
  },
  console() {
    return { data: consoleTail.toString('base64') };
  },
  pulses(req) {
    return { pulses: out.history.slice(-(req.last || 4096)) };
  },
  engine() {
    // the pulse engine as the chip holds it: PIO1's state machine 0 and the DMA channels it paces
    const pio = chip.pio[1];
    const m = pio.machines[0];
    const dmas = chip.dma.channels
      .map((c, i) => ({ i, treq: c.treqValue, en: !!(c.ctrl & 1), busy: !!(c.ctrl & (1 << 24)), count: c.transCount, read: c.readAddr >>> 0 }))
      .filter((c) => c.treq === 8 || c.treq === 12);
    const f = m.txFIFO;
    const words = [];
    for (let i = 0; i < f.used; i++) words.push(f.buffer[(f.start + i) % f.buffer.length] >>> 0);
    return {
      enabled: m.enabled,
      pc: m.pc,
      x: m.x >>> 0,
      osr: m.outputShiftReg >>> 0,
      tx: words,
      rx: m.rxFIFO.itemCount,
      irq: pio.irq,
      fdebug: pio.fdebug,
      waiting: m.waiting,
      dmas,
    };
  },
  read(req) {
    // a few words of RAM, for measurement scripts that leave figures in a buffer
    const outw = [];
    for (let i = 0; i < req.words; i++) outw.push(chip.readUint32(req.addr + 4 * i) >>> 0);
    return { words: outw };
  },
  quit() {
    running = false;
    server.close();
    setImmediate(() => process.exit(0));
    return {};
  },
};

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    log('bad request: ' + line.slice(0, 80));
    return;
  }
  let reply;
  try {
    const fn = ops[req.op];
    if (!fn) throw new Error('unknown op ' + req.op);
    reply = fn(req);
    if (reply === null) return;
    send({ id: req.id, ok: true, ...reply });
  } catch (e) {
    send({ id: req.id, ok: false, error: String(e.message || e) });
  }
});
rl.on('close', () => process.exit(0));

newChip(null);
server.listen(cfg.port || 0, cfg.host || '127.0.0.1', () => {
  send({ ev: 'ready', port: server.address().port });
  loop();
});

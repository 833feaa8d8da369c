// Run Python (read from stdin) on the MicroPython WebAssembly port.
// usage: node mp_run.mjs <micropython.mjs> <repo>
// Copies the folders named in TONUS_COPY into the port's in-memory
// filesystem under /repo and puts /repo and /repo/tests/dual on sys.path.
import fs from 'fs';
import path from 'path';

const [mpjs, repo] = process.argv.slice(2);
const { loadMicroPython } = await import(path.resolve(mpjs));
const heapsize = parseInt(process.env.TONUS_HEAP_MB || '16', 10) * 1024 * 1024;
const out = (l) => process.stdout.write(l + '\n');
const mp = await loadMicroPython({ heapsize, stdout: out, stderr: out });

function mkdirs(p) {
  let cur = '';
  for (const part of p.split('/').filter(Boolean)) {
    cur += '/' + part;
    try { mp.FS.mkdir(cur); } catch (e) { /* exists */ }
  }
}
function copy(src, dst) {
  if (!fs.existsSync(src)) return;
  mkdirs(dst);
  for (const e of fs.readdirSync(src, { withFileTypes: true })) {
    if (e.name.startsWith('.') || e.name === '__pycache__' || e.name === 'node_modules') continue;
    const s = path.join(src, e.name);
    const d = dst + '/' + e.name;
    if (e.isDirectory()) copy(s, d);
    else if (/\.(py|json|cddl)$/.test(e.name)) mp.FS.writeFile(d, fs.readFileSync(s));
  }
}
for (const dir of (process.env.TONUS_COPY || '').split(':').filter(Boolean)) {
  copy(path.join(repo, dir), '/repo/' + dir);
}

const code = fs.readFileSync(0, 'utf8');
const prelude = "import sys\nsys.path.insert(0, '/repo/tests/dual')\nsys.path.insert(0, '/repo')\n";
try {
  mp.runPython(prelude + code);
} catch (e) {
  out(String(e.message || e));
  process.exit(1);
}

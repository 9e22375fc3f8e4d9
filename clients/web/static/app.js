// TuiTalk browser client, boot stage: load Pyodide from ./pyodide/ (self-hosted, never a CDN),
// install our two wheels (the shared core and the browser layer, see ../build_wheel.py) and
// hand over to Python (tuitalk_web.app), which drives the WebSocket and the DOM.
//
// Every URL is relative to this page, so the client works wherever static/ is served, as long
// as ./pyodide/ holds the Pyodide files and the WebSocket endpoint is <host>/ws.

const $ = (id) => document.getElementById(id);

// -- read-only hooks for tests and debugging: they read the DOM and performance entries ---------

function marks() {
  const out = {};
  for (const m of performance.getEntriesByType("mark")) {
    if (m.name.startsWith("tuitalk:")) out[m.name.slice(8)] = m.startTime;
  }
  return out;
}

function roomLog(room) {
  for (const log of document.querySelectorAll("#logs section[role=log]")) {
    if (log.dataset.room === room) return log;
  }
  return null;
}

const hook = Object.freeze({
  /** [[epoch, seq, id], ...] of the room messages shown in ``room``, in page order. */
  shown(room) {
    const log = roomLog(room);
    if (!log) return [];
    return [...log.querySelectorAll("ol.msgs > li.msg")].map(
      (li) => [li.dataset.epoch, Number(li.dataset.seq), li.dataset.id]);
  },
  /** Texts of the user's own messages not yet shown as room messages. */
  pending(room) {
    const log = roomLog(room);
    if (!log) return [];
    return [...log.querySelectorAll("ol.pending-list > li")].map((li) => ({
      id: li.dataset.id, state: li.className.replace("msg ", ""),
      text: li.querySelector(".body").textContent,
    }));
  },
  rooms() {
    return [...document.querySelectorAll("#rooms button")].map((b) => ({
      room: b.dataset.room, current: b.getAttribute("aria-current") === "true",
      unread: b.querySelector(".unread").textContent,
    }));
  },
  state() {
    const d = document.body.dataset;
    return { state: d.state, ready: d.ready === "1", user: d.user || "", name: d.name || "",
             active: d.active || "", backend: d.backend || "" };
  },
  timings: marks,
  /** The start-up snapshot (see below): "none", "restored", "fetched", "making", "stored"
   *  or "failed: <why>". */
  snapshot() { return snapshotState; },
  /** Bytes received for this page load (HTTP; WebSocket traffic is not included). */
  bytes() {
    let total = 0;
    for (const e of performance.getEntriesByType("navigation")) total += e.transferSize;
    for (const e of performance.getEntriesByType("resource")) total += e.transferSize;
    return total;
  },
});
Object.defineProperty(window, "tuitalk", { value: hook, writable: false, configurable: false });

// -- loading progress -------------------------------------------------------------------------------

const progress = { expected: 0, got: new Map(), step: "" };

function mb(n) { return (n / 1e6).toFixed(1); }

function received() {
  let n = 0;
  for (const got of progress.got.values()) n += got;
  return n;
}

function showProgress(step, fraction) {
  if (step) progress.step = step;
  const got = received();
  const bar = $("boot-progress");
  const byBytes = progress.expected ? Math.min(1, got / progress.expected) : 0;
  // Downloads fill the first 60 %; starting Python and the chat the rest.
  bar.value = Math.max(bar.value, Math.round(100 * Math.max(fraction ?? 0, 0.6 * byBytes)));
  $("boot-label").textContent = progress.step;
  $("boot-detail").textContent = progress.expected && byBytes < 1
    ? `${mb(got)} of ${mb(progress.expected)} MB` : "";
}

// Count the bytes of what Pyodide fetches while it boots. The response itself is handed on
// untouched (a clone is read), so streaming compilation and Chromium's code cache still apply.
const realFetch = window.fetch.bind(window);
function countingFetch(input, init) {
  return realFetch(input, init).then((resp) => {
    if (resp.ok && resp.body) {
      const key = resp.url;
      const reader = resp.clone().body.getReader();
      const pump = (n) => reader.read().then(({ done, value }) => {
        if (done) return;
        progress.got.set(key, n + value.length);
        showProgress(progress.got.size && received() >= progress.expected
          ? "Starting Python\u2026" : null);
        return pump(n + value.length);
      });
      pump(0).catch(() => {});
    }
    return resp;
  });
}

function fail(err) {
  console.error(err);
  document.body.dataset.state = "failed";
  const status = $("status");
  status.dataset.state = "failed";
  status.textContent = `TuiTalk could not start: ${err && err.message ? err.message : err}`;
  $("boot-label").textContent = "Could not start. Reload the page to try again.";
  $("boot-detail").textContent = String(err && err.message ? err.message : err).slice(0, 300);
}

// -- start-up snapshot ---------------------------------------------------------------------------
//
// Booting Pyodide and importing our modules takes most of the start-up time (3-4 s on a
// 2-core machine). A memory snapshot of an interpreter that has imported the client restores
// in about a third of that. Where one comes from, first choice first:
// 1. Cache Storage, from an earlier visit ("restored");
// 2. the server: build_snapshot.py makes one per build and the manifest names it
//    ("fetched"); once the chat is up it is kept in Cache Storage for the next visit;
// 3. none (a server without it, or a snapshot that fails to restore): boot Python afresh,
//    and once the chat is up a worker (snapshot-worker.js) boots a second, private
//    interpreter, imports our modules and keeps its snapshot in Cache Storage ("making",
//    then "stored"). (Not taken in the page's own interpreter: one started with
//    _makeSnapshot cannot use the DOM.)
// A snapshot holds nothing about the user (no token, no message: the client is imported,
// never run). The key names the Pyodide build and both wheels' hashes, so a new release of
// either never restores a stale interpreter. The snapshot options are Pyodide's internal
// API: package.json pins the exact version, and any failure falls back to a normal boot.

const SNAPSHOTS = "tuitalk-start-up";
let snapshotState = "none";

function snapshotKey(manifest) {
  const wheels = manifest.wheels.map((w) => w.sha256.slice(0, 16)).join("-");
  return new URL(`tuitalk-snapshot/${manifest.pyodide.version}/${wheels}`, location).href;
}

async function cachedSnapshot(key) {
  if (!self.caches) return null;  // Cache Storage needs a secure context (https, localhost)
  try {
    return (await (await caches.open(SNAPSHOTS)).match(key)) || null;
  } catch {
    return null;
  }
}

/** Run ``fn`` once the chat is up (or after a minute at most), not to slow the start down. */
function afterReady(fn) {
  const started = performance.now();
  const wait = () => {
    if (document.body.dataset.ready !== "1" && performance.now() - started < 60000) {
      setTimeout(wait, 500);
      return;
    }
    fn();
  };
  setTimeout(wait, 1000);
}

/** Keep the snapshot the server shipped in Cache Storage, for the next visit. */
async function keepSnapshot(key, bytes) {
  try {
    const cache = await caches.open(SNAPSHOTS);
    for (const old of await cache.keys()) if (old.url !== key) await cache.delete(old);
    await cache.put(key, new Response(await bytes));
    snapshotState = "stored";
  } catch (err) {
    snapshotState = `failed: ${err && err.message || err}`;
  }
}

/** Make the snapshot in a worker, once the chat is up. */
function snapshotLater(key, manifest) {
  if (!self.caches || !self.Worker) return;
  afterReady(() => {
    const worker = new Worker(new URL("snapshot-worker.js", import.meta.url), { type: "module" });
    snapshotState = "making";
    worker.onmessage = (e) => {
      worker.terminate();
      snapshotState = e.data.ok ? "stored" : `failed: ${e.data.error}`;
      if (!e.data.ok) console.warn("tuitalk: no start-up snapshot:", e.data.error);
    };
    worker.postMessage({
      key, cache: SNAPSHOTS, base: pyodideOptions().indexURL,
      wheels: manifest.wheels.map((w) => new URL(`wheels/${w.name}?v=${w.sha256.slice(0, 16)}`,
                                                 document.baseURI).href),
    });
  });
}

async function dropSnapshots() {
  try { await caches.delete(SNAPSHOTS); } catch { /* nothing to drop */ }
}

// -- boot ---------------------------------------------------------------------------------------------

function wsUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

async function fetchManifest() {
  const resp = await realFetch("wheels/manifest.json", { cache: "no-cache" });
  if (!resp.ok) throw new Error(`wheels/manifest.json: HTTP ${resp.status}`);
  return resp.json();
}

function fetchWheels(manifest) {
  return Promise.all(manifest.wheels.map(async (w) => {
    const r = await realFetch(`wheels/${w.name}?v=${w.sha256.slice(0, 16)}`);
    if (!r.ok) throw new Error(`wheels/${w.name}: HTTP ${r.status}`);
    return r.arrayBuffer();
  }));
}

function pyodideOptions() {
  const base = new URL("pyodide/", document.baseURI).href;
  return {
    indexURL: base,
    // Both set explicitly: without them Pyodide falls back to its CDN for packages.
    packageBaseUrl: base,
    lockFileURL: `${base}pyodide-lock.json`,
    stdout: (s) => console.log(s),
    stderr: (s) => console.warn(s),
  };
}

/** Pyodide's boot downloads (and ``extra`` bytes more) for the progress bar. */
function expectBytes(manifest, extra) {
  const sizes = manifest.pyodide.sizes;
  progress.expected = (sizes["pyodide.asm.wasm"] || 0) + (sizes["python_stdlib.zip"] || 0)
    + (sizes["pyodide-lock.json"] || 0) + extra;
}

/** Restore the interpreter from ``bytes`` (a promise of the snapshot); null if that fails. */
async function fromSnapshot(loadPyodide, bytes, how) {
  try {
    const pyodide = await loadPyodide({ ...pyodideOptions(), _loadSnapshot: bytes });
    const app = pyodide.pyimport("tuitalk_web.app");
    performance.mark("tuitalk:from-snapshot");
    snapshotState = how;
    return app;
  } catch (err) {
    console.warn("tuitalk: start-up snapshot unusable, booting afresh", err);
    await dropSnapshots();
    return null;
  }
}

/** A first visit: restore the snapshot the server ships (see build_snapshot.py). */
async function shipped(loadPyodide, manifest, key) {
  expectBytes(manifest, manifest.snapshot.size);
  let resp;
  try {
    resp = await countingFetch(manifest.snapshot.file);
  } catch {
    return null;
  }
  if (!resp.ok) return null;
  const bytes = resp.arrayBuffer();
  window.fetch = countingFetch;
  let app;
  try {
    app = await fromSnapshot(loadPyodide, bytes, "fetched");
  } finally {
    window.fetch = realFetch;
  }
  if (app && self.caches) afterReady(() => keepSnapshot(key, bytes));
  return app;
}

async function fresh(loadPyodide, manifest) {
  expectBytes(manifest, 0);
  const wheels = fetchWheels(manifest);
  window.fetch = countingFetch;
  let pyodide;
  try {
    pyodide = await loadPyodide(pyodideOptions());
  } finally {
    window.fetch = realFetch;
  }
  performance.mark("tuitalk:pyodide");
  showProgress("Loading TuiTalk\u2026", 0.85);
  // Into site-packages (the default is the working directory, which is on sys.path only by
  // accident of the current directory).
  const extractDir = pyodide.runPython("__import__('site').getsitepackages()[0]");
  for (const buf of await wheels) pyodide.unpackArchive(buf, "wheel", { extractDir });
  return pyodide.pyimport("tuitalk_web.app");
}

async function boot() {
  showProgress("Loading the Python runtime\u2026", 0.02);
  const loader = import("./pyodide/pyodide.mjs");
  const manifest = await fetchManifest();
  const key = snapshotKey(manifest);
  const hit = await cachedSnapshot(key);
  const { loadPyodide } = await loader;
  let app = null;
  if (hit) {
    showProgress("Starting Python\u2026", 0.5);
    app = await fromSnapshot(loadPyodide, hit.arrayBuffer(), "restored");
  }
  if (!app && manifest.snapshot) app = await shipped(loadPyodide, manifest, key);
  if (!app) {
    app = await fresh(loadPyodide, manifest);
    snapshotLater(key, manifest);
  }
  performance.mark("tuitalk:core");
  showProgress("Connecting\u2026", 0.95);
  // Resolves only when the app stops; Python hides the progress panel once it runs.
  await app.main(wsUrl());
}

boot().catch(fail);

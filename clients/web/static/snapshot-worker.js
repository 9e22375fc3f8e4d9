// TuiTalk start-up snapshot, made off the page's main thread (see app.js, "start-up
// snapshot"): boot a private Pyodide with _makeSnapshot, install the same wheels, import the
// app's modules (without running anything), snapshot the interpreter and keep it in Cache
// Storage under the key the page gave. Replies {ok, size} or {ok: false, error}.
// build_snapshot.py runs this worker at build time with ``upload`` instead of a cache: the
// snapshot is PUT there, for the server to ship to first-time visitors.

self.onmessage = async (event) => {
  const { key, cache: cacheName, base, wheels, upload } = event.data;
  try {
    const { loadPyodide } = await import(`${base}pyodide.mjs`);
    const pyodide = await loadPyodide({
      indexURL: base, packageBaseUrl: base, lockFileURL: `${base}pyodide-lock.json`,
      _makeSnapshot: true, stdout: () => {}, stderr: (s) => console.warn(s),
    });
    const extractDir = pyodide.runPython("__import__('site').getsitepackages()[0]");
    for (const url of wheels) {
      const resp = await fetch(url);
      if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status}`);
      pyodide.unpackArchive(await resp.arrayBuffer(), "wheel", { extractDir });
    }
    pyodide.pyimport("tuitalk_web.app");
    const bytes = pyodide.makeMemorySnapshot();
    if (upload) {
      const resp = await fetch(upload, { method: "PUT", body: bytes });
      if (!resp.ok) throw new Error(`${upload}: HTTP ${resp.status}`);
      self.postMessage({ ok: true, size: bytes.length });
      return;
    }
    const cache = await caches.open(cacheName);
    for (const old of await cache.keys()) if (old.url !== key) await cache.delete(old);
    await cache.put(key, new Response(bytes));
    self.postMessage({ ok: true, size: bytes.length });
  } catch (err) {
    self.postMessage({ ok: false, error: String(err && err.message || err) });
  }
};

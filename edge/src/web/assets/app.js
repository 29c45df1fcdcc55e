// The technician's calibration page. Plain JavaScript, no dependencies: it is served by the rig
// itself and must work pitch-side without internet.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

const app = {
  token: sessionStorage.getItem("pv-token"),
  state: null,        // /api/state
  view: null,         // name of the shown view
  size: [1, 1],       // its image size
  points: [],         // [{pixel:[u,v], landmark}] of the shown view
  fit: null,          // last /api/solve answer
  pending: null,      // pixel waiting for its landmark
  picked: null,       // landmark chosen in the picker
  scale: 1, tx: 0, ty: 0,
  solveSeq: 0,
  viewSeq: 0,         // the latest showView call
  noMatchControl: false, // no daemon behind the page: /api/match is not asked again
  ready: false,       // the shown view is loaded, fitted to the screen and solved
};

// ---------- API ----------

async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (app.token) headers.Authorization = "Bearer " + app.token;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401 && path !== "/api/login") {
    app.token = null;
    sessionStorage.removeItem("pv-token");
    showLogin();
    throw new Error("log in with the technician PIN");
  }
  if (!res.ok) {
    let message = res.statusText;
    try { message = (await res.json()).error || message; } catch (_) { /* not JSON */ }
    const err = new Error(message);
    err.status = res.status;
    throw err;
  }
  return res;
}

const getJson = async (path) => (await api("GET", path)).json();
const postJson = async (path, body) => (await api("POST", path, body)).json();

function say(text, isError) {
  const m = $("message");
  m.textContent = text;
  m.className = isError ? "error" : "";
}

// ---------- login ----------

function showLogin() {
  const d = $("login");
  if (!d.open) d.showModal();
  $("pin").focus();
}

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("login-error").textContent = "";
  try {
    const res = await api("POST", "/api/login", { pin: $("pin").value });
    app.token = (await res.json()).token;
    sessionStorage.setItem("pv-token", app.token);
    $("pin").value = "";
    $("login").close();
    await load();
  } catch (err) {
    $("login-error").textContent = err.message;
  }
});

// ---------- loading views ----------

// ---------- match control (only inside the daemon) ----------

async function refreshMatch() {
  if (app.noMatchControl) return;
  let m;
  try {
    m = await getJson("/api/match");
  } catch (err) {
    $("match").hidden = true;
    // 404: the page runs without the daemon (polyvision-edge calibrate): stop asking.
    if (err.status === 404) app.noMatchControl = true;
    return;
  }
  $("match").hidden = false;
  app.match = m;
  const state = $("match-state");
  if (m.running_match) state.textContent = "recording " + m.running_match.slice(-6);
  else if (m.disk_alarm) state.textContent = `disk full (${m.disk_free_mb} MB free)`;
  else state.textContent = "no match";
  state.className = "chip" + (m.disk_alarm ? " bad" : m.running_match ? " good" : "");
  $("match-toggle").textContent = m.running_match ? "Stop match" : "Start match";
}

$("match-toggle").addEventListener("click", async () => {
  const running = app.match && app.match.running_match;
  try {
    const r = await postJson(running ? "/api/match/stop" : "/api/match/start", {});
    say(running ? `Stopping match ${r.match}.` : `Match ${r.match} started.`);
  } catch (err) {
    say(err.message, true);
  }
  await refreshMatch();
});

setInterval(() => { if (app.token) refreshMatch(); }, 3000);

async function load(keepView) {
  refreshMatch();
  app.state = await getJson("/api/state");
  renderStatus(app.state.status);
  const nav = $("views");
  nav.replaceChildren();
  for (const v of app.state.views) {
    const b = document.createElement("button");
    b.textContent = v.name[0].toUpperCase() + v.name.slice(1) + (v.calibrated ? " ✓" : "");
    b.setAttribute("role", "tab");
    b.dataset.view = v.name;
    b.addEventListener("click", () => showView(v.name));
    nav.append(b);
  }
  const errors = Object.entries(app.state.frame_errors || {});
  if (errors.length) say(errors.map(([k, v]) => `${k}: ${v}`).join("; "), true);
  // The picker depends on the pitch only, not on a frame: a slow or failed frame load must not
  // leave the technician with nothing to pick.
  buildPicker();
  const names = app.state.views.map((v) => v.name);
  const next = keepView && names.includes(app.view) ? app.view : names[0];
  if (next) await showView(next);
  else say("No camera frames: check [capture] in the configuration.", true);
}

function renderStatus(s) {
  const chip = $("status");
  if (s.sha256) {
    chip.textContent = `calibration #${s.generation} · ${s.sha256.slice(0, 8)}`;
    chip.className = "chip ok";
  } else {
    chip.textContent = "not calibrated";
    chip.className = "chip";
  }
  chip.title = s.last_error ? "refused: " + s.last_error : (s.file || "");
}

// Shows a view; a failed frame load is reported with a retry, never thrown. Only the latest call
// marks the page ready: a slow earlier load finishing late must not stand for a newer view.
async function showView(name) {
  const v = app.state.views.find((x) => x.name === name);
  if (!v) return;
  const seq = ++app.viewSeq;
  app.ready = false;
  app.view = name;
  $("frame-retry").hidden = true;
  app.size = v.size;
  app.points = (v.points || []).filter((p) => p.landmark).map((p) => ({ pixel: p.pixel, landmark: p.landmark }));
  app.fit = null;
  for (const b of $("views").children) b.setAttribute("aria-selected", String(b.dataset.view === name));
  const img = $("frame");
  try {
    const blob = await (await api("GET", "/api/frame/" + name)).blob();
    const url = URL.createObjectURL(blob);
    await new Promise((resolve, reject) => {
      img.onload = resolve;
      img.onerror = () => reject(new Error("the image could not be decoded"));
      img.src = url;
    });
  } catch (err) {
    if (seq !== app.viewSeq) return;
    say(`The ${name} frame did not load: ${err.message}.`, true);
    const retry = $("frame-retry");
    retry.dataset.view = name;
    retry.hidden = false;
    return;
  }
  if (seq !== app.viewSeq) return;
  img.width = v.size[0];
  img.height = v.size[1];
  const svg = $("overlay");
  svg.setAttribute("width", v.size[0]);
  svg.setAttribute("height", v.size[1]);
  svg.setAttribute("viewBox", `0 0 ${v.size[0]} ${v.size[1]}`);
  fit();
  await solve();
  if (seq === app.viewSeq) app.ready = true;
}

$("frame-retry").addEventListener("click", () => {
  say("");
  showView($("frame-retry").dataset.view);
});

// ---------- zoom and pan ----------

function apply() {
  $("content").style.transform = `translate(${app.tx}px, ${app.ty}px) scale(${app.scale})`;
  drawMarks();
}

function fit() {
  const r = $("viewport").getBoundingClientRect();
  app.scale = Math.min(r.width / app.size[0], r.height / app.size[1]);
  app.tx = (r.width - app.size[0] * app.scale) / 2;
  app.ty = (r.height - app.size[1] * app.scale) / 2;
  apply();
}

function zoomAt(factor, cx, cy) {
  const next = Math.min(Math.max(app.scale * factor, 0.05), 40);
  const f = next / app.scale;
  app.tx = cx - (cx - app.tx) * f;
  app.ty = cy - (cy - app.ty) * f;
  app.scale = next;
  apply();
}

// Image pixel (top-left corner at 0,0) <-> position in the page.
function clientToImage(x, y) {
  const r = $("viewport").getBoundingClientRect();
  return [(x - r.left - app.tx) / app.scale, (y - r.top - app.ty) / app.scale];
}
function imageToClient(u, v) {
  const r = $("viewport").getBoundingClientRect();
  return { x: r.left + app.tx + u * app.scale, y: r.top + app.ty + v * app.scale };
}

const pointers = new Map();
let gesture = null;
const vp = $("viewport");

vp.addEventListener("pointerdown", (e) => {
  vp.setPointerCapture(e.pointerId);
  pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
  if (pointers.size === 1) {
    gesture = { kind: "tap", x: e.clientX, y: e.clientY, t: performance.now(), tx: app.tx, ty: app.ty };
  } else if (pointers.size === 2) {
    const [a, b] = [...pointers.values()];
    gesture = { kind: "pinch", d: Math.hypot(a.x - b.x, a.y - b.y), scale: app.scale };
  }
});

vp.addEventListener("pointermove", (e) => {
  if (!pointers.has(e.pointerId)) return;
  pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
  if (!gesture) return;
  if (gesture.kind === "pinch" && pointers.size === 2) {
    const [a, b] = [...pointers.values()];
    const d = Math.hypot(a.x - b.x, a.y - b.y);
    const r = vp.getBoundingClientRect();
    zoomAt((gesture.scale * d) / gesture.d / app.scale, (a.x + b.x) / 2 - r.left, (a.y + b.y) / 2 - r.top);
  } else if (gesture.kind !== "pinch") {
    const dx = e.clientX - gesture.x, dy = e.clientY - gesture.y;
    if (gesture.kind === "pan" || Math.hypot(dx, dy) > 8) {
      gesture.kind = "pan";
      app.tx = gesture.tx + dx;
      app.ty = gesture.ty + dy;
      apply();
    }
  }
});

function endPointer(e) {
  const wasTap = gesture && gesture.kind === "tap" && pointers.size === 1 && performance.now() - gesture.t < 600;
  pointers.delete(e.pointerId);
  if (wasTap && e.type === "pointerup") {
    const [u, v] = clientToImage(e.clientX, e.clientY);
    if (u >= 0 && v >= 0 && u <= app.size[0] && v <= app.size[1]) openPicker([u, v]);
  }
  if (pointers.size === 0) gesture = null;
}
vp.addEventListener("pointerup", endPointer);
vp.addEventListener("pointercancel", endPointer);
vp.addEventListener("wheel", (e) => {
  e.preventDefault();
  const r = vp.getBoundingClientRect();
  zoomAt(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
}, { passive: false });
$("zoom-in").addEventListener("click", () => { const r = vp.getBoundingClientRect(); zoomAt(1.6, r.width / 2, r.height / 2); });
$("zoom-out").addEventListener("click", () => { const r = vp.getBoundingClientRect(); zoomAt(1 / 1.6, r.width / 2, r.height / 2); });
$("zoom-fit").addEventListener("click", fit);
for (const id of ["zoom-in", "zoom-out", "zoom-fit"]) $(id).addEventListener("pointerdown", (e) => e.stopPropagation());
window.addEventListener("resize", () => { if (app.view) fit(); });

// ---------- landmark picker ----------

function landmark(name) {
  return app.state.landmarks.find((l) => l.name === name);
}

function buildPicker() {
  const { length_m: L, width_m: W, markings } = app.state.pitch;
  const m = 4;
  const map = $("pitch-map");
  map.setAttribute("viewBox", `${-L / 2 - m} ${-W / 2 - m} ${L + 2 * m} ${W + 2 * m}`);
  map.replaceChildren();
  // Pitch y points away from the rig; the screen's y points down: flip so the near side is at the bottom.
  const g = document.createElementNS(SVG, "g");
  g.setAttribute("transform", "scale(1,-1)");
  for (const line of markings) {
    const p = document.createElementNS(SVG, line.length === 1 ? "circle" : "polyline");
    if (line.length === 1) { p.setAttribute("cx", line[0][0]); p.setAttribute("cy", line[0][1]); p.setAttribute("r", 0.4); p.setAttribute("fill", "#fff"); }
    else { p.setAttribute("points", line.map((q) => q.join(",")).join(" ")); p.setAttribute("class", "line"); }
    g.append(p);
  }
  for (const l of app.state.landmarks) {
    const c = document.createElementNS(SVG, "circle");
    c.setAttribute("cx", l.position[0]);
    c.setAttribute("cy", l.position[1]);
    c.setAttribute("r", 1.4);
    c.setAttribute("class", "lm");
    c.dataset.name = l.name;
    c.addEventListener("click", () => pick(l.name));
    const t = document.createElementNS(SVG, "title");
    t.textContent = l.description;
    c.append(t);
    g.append(c);
  }
  map.append(g);
  const list = $("landmark-list");
  list.replaceChildren(new Option("— choose a landmark —", ""));
  for (const l of app.state.landmarks) list.append(new Option(`${l.name.replaceAll("_", " ")} — ${l.description}`, l.name));
}

$("landmark-list").addEventListener("change", (e) => pick(e.target.value || null));

function pick(name) {
  app.picked = name;
  $("landmark-list").value = name || "";
  for (const c of $("pitch-map").querySelectorAll(".lm")) c.classList.toggle("sel", c.dataset.name === name);
  const l = name && landmark(name);
  $("picked").textContent = l ? `${l.description} (${l.position[0].toFixed(2)}, ${l.position[1].toFixed(2)} m)` : "Tap it on the pitch, or choose from the list.";
  $("picker-ok").disabled = !l;
}

function openPicker(pixel) {
  app.pending = pixel;
  const used = new Set(app.points.map((p) => p.landmark));
  for (const c of $("pitch-map").querySelectorAll(".lm")) c.classList.toggle("used", used.has(c.dataset.name));
  pick(null);
  drawMarks();
  $("picker").showModal();
}

$("picker-cancel").addEventListener("click", () => { app.pending = null; $("picker").close(); drawMarks(); });
$("picker-ok").addEventListener("click", async () => {
  const name = app.picked;
  if (!name || !app.pending) return;
  // One click per landmark: a second click of the same landmark replaces the first.
  app.points = app.points.filter((p) => p.landmark !== name);
  app.points.push({ pixel: app.pending.map((x) => Math.round(x * 100) / 100), landmark: name });
  app.pending = null;
  $("picker").close();
  await solve();
});

// ---------- solving and drawing ----------

function quality(p) {
  if (!p || p.inlier === undefined) return "new";
  if (!p.inlier || p.error_px >= 3) return "bad";
  return p.error_px < 1.5 ? "good" : "fair";
}

async function solve() {
  const seq = ++app.solveSeq;
  app.fit = null;
  if (app.points.length >= 4) {
    try {
      const fit = await postJson("/api/solve", { view: app.view, points: app.points });
      if (seq !== app.solveSeq) return;
      app.fit = fit;
      say("");
    } catch (err) {
      if (seq !== app.solveSeq) return;
      say(err.message, true);
    }
  }
  render();
}

function render() {
  const list = $("points");
  list.replaceChildren();
  app.points.forEach((p, i) => {
    const r = app.fit && app.fit.points[i];
    const li = document.createElement("li");
    li.dataset.landmark = p.landmark;
    const dot = document.createElement("span");
    dot.className = "dot " + quality(r);
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = p.landmark.replaceAll("_", " ");
    const err = document.createElement("span");
    err.className = "err";
    err.textContent = r ? (r.left_out ? "left out" : r.inlier ? `${r.error_cm.toFixed(1)} cm` : "outlier") : "";
    // Why a point is left out, or where it seems to be instead, on hover and long press.
    const why = r && (r.left_out || r.note);
    if (why) { li.title = why; err.title = why; }
    const del = document.createElement("button");
    del.textContent = "×";
    del.setAttribute("aria-label", "Remove " + p.landmark);
    del.addEventListener("click", async () => { app.points.splice(i, 1); await solve(); });
    li.append(dot, name, err, del);
    list.append(li);
  });
  const s = $("summary");
  if (app.fit) {
    const e = app.fit.expected_error_cm;
    s.innerHTML = "";
    const big = document.createElement("span");
    big.className = "big";
    big.textContent = `Expected error ${e.median.toFixed(1)} cm (95 %: ${e.p95.toFixed(1)} cm)`;
    s.append(big, document.createTextNode(` over the visible pitch · ${app.fit.inliers}/${app.points.length} points fit, rms ${app.fit.rms_px.toFixed(2)} px`));
    const h = app.fit.held_out_cm;
    if (h) {
      s.append(document.createTextNode(` · each point held out: ${h.median.toFixed(0)} cm median (expected ${h.expected_median.toFixed(0)} cm)`));
    }
    const notes = app.fit.points.filter((r) => r.note).length;
    if (notes) s.append(document.createTextNode(` · ${notes} click(s) off their landmark (hover for details)`));
  } else {
    s.textContent = app.points.length < 4 ? `Tap at least ${4 - app.points.length} more landmark(s).` : "No fit.";
  }
  $("save").disabled = !app.fit;
  drawOverlay();
  drawMarks();
}

function drawOverlay() {
  const svg = $("overlay");
  for (const el of svg.querySelectorAll(".line, .spot, .grid")) el.remove();
  if (!app.fit) return;
  const frag = document.createDocumentFragment();
  if ($("show-grid").checked) {
    const worst = Math.max(...app.fit.uncertainty_grid.map((c) => c.error_cm), 1);
    for (const c of app.fit.uncertainty_grid) {
      const d = document.createElementNS(SVG, "circle");
      d.setAttribute("cx", c.pixel[0]);
      d.setAttribute("cy", c.pixel[1]);
      d.setAttribute("r", 4 / app.scale);
      const t = c.error_cm / worst;
      d.setAttribute("fill", `hsl(${120 - 120 * t}, 90%, 50%)`);
      d.setAttribute("class", "grid");
      frag.append(d);
    }
  }
  for (const line of app.fit.overlay) {
    if (line.length === 1) {
      const c = document.createElementNS(SVG, "circle");
      c.setAttribute("cx", line[0][0]);
      c.setAttribute("cy", line[0][1]);
      c.setAttribute("r", 2 / app.scale);
      c.setAttribute("class", "spot");
      frag.append(c);
    } else {
      const p = document.createElementNS(SVG, "polyline");
      p.setAttribute("points", line.map((q) => q[0].toFixed(2) + "," + q[1].toFixed(2)).join(" "));
      p.setAttribute("class", "line");
      frag.append(p);
    }
  }
  svg.prepend(frag);
}

function drawMarks() {
  const svg = $("overlay");
  for (const el of svg.querySelectorAll(".mark, text")) el.remove();
  const r = 7 / app.scale;
  const add = (pixel, cls, label) => {
    const c = document.createElementNS(SVG, "circle");
    c.setAttribute("cx", pixel[0]);
    c.setAttribute("cy", pixel[1]);
    c.setAttribute("r", r);
    c.setAttribute("class", "mark " + cls);
    svg.append(c);
    if (label) {
      // Sizes in image pixels, divided by the zoom, so labels stay the same size on screen.
      const t = document.createElementNS(SVG, "text");
      t.setAttribute("x", pixel[0] + r * 1.3);
      t.setAttribute("y", pixel[1] - r * 1.3);
      t.setAttribute("font-size", 13 / app.scale);
      t.setAttribute("stroke-width", 3 / app.scale);
      t.textContent = label;
      svg.append(t);
    }
  };
  app.points.forEach((p, i) => {
    const f = app.fit && app.fit.points[i];
    add(p.pixel, quality(f), f ? (f.inlier ? `${f.error_cm.toFixed(0)} cm` : "outlier") : "");
  });
  if (app.pending) add(app.pending, "new", "");
}

$("show-grid").addEventListener("change", drawOverlay);
$("undo").addEventListener("click", async () => { app.points.pop(); await solve(); });
$("clear").addEventListener("click", async () => {
  if (app.points.length && !confirm("Remove all points of this view?")) return;
  app.points = [];
  await solve();
});

$("save").addEventListener("click", async () => {
  $("save").disabled = true;
  say("Saving…");
  try {
    const res = await postJson("/api/save", { view: app.view, points: app.points });
    renderStatus(res.status);
    const kept = res.previous_version ? ` The previous calibration is kept as version ${res.previous_version}.` : "";
    say(`Saved and in use (calibration #${res.status.generation}).${kept} ${res.notes.join(" ")}`);
    await load(true);
  } catch (err) {
    say("Not saved: " + err.message, true);
    $("save").disabled = !app.fit;
  }
});

// ---------- history ----------

$("history-open").addEventListener("click", async () => {
  const list = $("history-list");
  list.replaceChildren();
  try {
    const { versions } = await getJson("/api/history");
    if (!versions.length) list.append(Object.assign(document.createElement("li"), { textContent: "No earlier versions." }));
    for (const v of versions) {
      const li = document.createElement("li");
      const text = document.createElement("span");
      const c = v.created || {};
      text.textContent = `#${v.number} · ${c.at || "?"} · ${c.note || c.by || ""}`;
      const b = document.createElement("button");
      b.textContent = "Restore";
      b.addEventListener("click", async () => {
        if (!confirm(`Use calibration #${v.number} again? The current one is kept.`)) return;
        try {
          const res = await postJson("/api/restore", { number: v.number });
          renderStatus(res.status);
          $("history").close();
          say(`Version ${v.number} restored and in use.`);
          await load(true);
        } catch (err) { say(err.message, true); }
      });
      li.append(text, b);
      list.append(li);
    }
  } catch (err) { say(err.message, true); return; }
  $("history").showModal();
});
$("history-close").addEventListener("click", () => $("history").close());

// For automated checks: where an image pixel is on the page right now.
window.pvCalibration = { imageToClient, app };

if (app.token) load().catch((err) => { say(err.message, true); });
else showLogin();

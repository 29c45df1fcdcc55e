"use strict";
// The coaches' page: everything it shows comes from this service's /v1 API with the user's token.
const PITCH = { length: 105, width: 68 };
const TEAM_COLOUR = { team_a: "#1f6feb", team_b: "#d92d20", goalkeeper: "#e3a008", referee: "#222", unknown: "#98a2b3" };
const CLASS_TEAM = { 1: "unknown", 2: "goalkeeper", 3: "referee" };
const TEAM_LABEL = { team_a: "Team A", team_b: "Team B", goalkeeper: "Goalkeeper", referee: "Referee", unknown: "Unknown" };
const $ = (id) => document.getElementById(id);

const state = {
  token: sessionStorage.getItem("polyvision.token") || localStorage.getItem("polyvision.token") || "",
  match: null, fps: 25, duration: 0, tracks: [], players: [], playerOfTrack: new Map(),
  time: 0, playing: false, speed: 4, lastTick: 0, selected: null, heat: null,
  sort: { key: "distance_m", dir: -1 },
};
window.polyvision = state; // read by the browser test and handy in the console

class ApiError extends Error { constructor(status, message) { super(message); this.status = status; } }

async function api(path, raw = false) {
  const r = await fetch(path, { headers: { Authorization: "Bearer " + state.token } });
  if (!r.ok) {
    let message = r.status + " " + r.statusText;
    try { message = (await r.json()).error || message; } catch (_) { /* not JSON */ }
    if (r.status === 401) { signOut("Your token was refused: " + message); }
    throw new ApiError(r.status, message);
  }
  return raw ? r : r.json();
}

function claims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part.padEnd(part.length + (4 - part.length % 4) % 4, "=")));
  } catch (_) { return null; }
}

function show(section) {
  for (const id of ["login", "matches", "match"]) $(id).hidden = id !== section;
  $("back").hidden = section !== "match";
  $("logout").hidden = section === "login";
}

function signOut(message) {
  state.token = "";
  sessionStorage.removeItem("polyvision.token");
  localStorage.removeItem("polyvision.token");
  state.playing = false;
  $("who").textContent = "";
  $("login-error").textContent = message || "";
  show("login");
}

const clock = (s) => {
  s = Math.max(0, Math.floor(s));
  const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, sec = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
};

async function openMatches() {
  const c = claims(state.token);
  $("who").textContent = c ? `${c.sub || ""} · ${c.role || ""}` : "";
  show("matches");
  $("matches-error").textContent = "";
  const list = $("match-list");
  list.textContent = "Loading…";
  try {
    const { matches } = await api("/v1/matches");
    list.textContent = "";
    if (!matches.length) list.textContent = "No matches yet: a rig sends a match while and after it records it.";
    for (const m of matches) {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.dataset.match = m.match_id;
      const when = new Date(m.started_ms).toLocaleString();
      b.innerHTML = `<strong></strong><span class="muted"></span><span class="muted"></span>`;
      b.children[0].textContent = when;
      b.children[1].textContent = `${clock(m.frames / m.fps)} · ${m.tracks} tracks`;
      b.children[2].textContent = `rig ${m.device_serial}`;
      b.addEventListener("click", () => openMatch(m));
      li.appendChild(b);
      list.appendChild(li);
    }
  } catch (e) {
    list.textContent = "";
    $("matches-error").textContent = "Could not load the matches: " + e.message;
  }
}

async function openMatch(m) {
  state.match = m; state.fps = m.fps; state.duration = m.frames / m.fps;
  state.time = 0; state.playing = false; state.selected = null; state.heat = null;
  state.tracks = []; state.players = []; state.playerOfTrack = new Map();
  $("match-title").textContent = new Date(m.started_ms).toLocaleString();
  $("match-status").textContent = "loading…";
  $("match-error").textContent = "";
  $("heat-of").value = ""; $("heat-status").textContent = "";
  $("scrub").max = state.duration.toFixed(2);
  show("match");
  updatePlayButton();
  try {
    // Every Nth frame so that a whole match stays under the API's 500,000 positions.
    const every = Math.max(1, Math.ceil((m.frames * m.tracks) / 400000));
    const [summary, paths] = await Promise.all([
      api(`/v1/matches/${m.match_id}/summary`),
      api(`/v1/matches/${m.match_id}/trajectories?every=${every}`),
    ]);
    state.players = summary.players.map((p) => ({
      ...p, seconds: p.frames / state.fps, top_speed_kmh: p.top_speed_mps * 3.6,
    }));
    for (const p of state.players) for (const t of p.fragments) state.playerOfTrack.set(t, p);
    state.tracks = paths.tracks.map((t) => ({
      track: t.track, cls: t.class,
      t: Float64Array.from(t.points, (q) => q[0]),
      x: Float64Array.from(t.points, (q) => q[1]),
      y: Float64Array.from(t.points, (q) => q[2]),
    }));
    state.gap = (every / state.fps) * 2.5;
    $("summary-note").hidden = summary.complete;
    $("match-status").textContent = `${clock(state.duration)} · ${state.players.length} players`
      + (paths.truncated ? " · replay shortened" : "");
    renderTable();
    renderPlayerCard();
  } catch (e) {
    $("match-status").textContent = "";
    $("match-error").textContent = "Could not load the match: " + e.message;
  }
  draw();
}

// Table.
const COLUMNS = [
  ["player", (p) => "#" + p.player],
  ["team", (p) => TEAM_LABEL[p.team] || p.team],
  ["seconds", (p) => clock(p.seconds)],
  ["distance_m", (p) => p.distance_m.toFixed(1)],
  ["walking_m", (p) => p.walking_m.toFixed(0)],
  ["jogging_m", (p) => p.jogging_m.toFixed(0)],
  ["running_m", (p) => p.running_m.toFixed(0)],
  ["high_speed_running_m", (p) => p.high_speed_running_m.toFixed(0)],
  ["sprinting_m", (p) => p.sprinting_m.toFixed(0)],
  ["top_speed_kmh", (p) => p.top_speed_kmh.toFixed(1)],
  ["sprints", (p) => String(p.sprints)],
  ["accelerations", (p) => String(p.accelerations)],
  ["decelerations", (p) => String(p.decelerations)],
];

function renderTable() {
  const { key, dir } = state.sort;
  const rows = [...state.players].sort((a, b) => {
    const x = a[key], y = b[key];
    return (typeof x === "string" ? x.localeCompare(y) : x - y) * dir || a.player - b.player;
  });
  const body = $("players").tBodies[0];
  body.textContent = "";
  for (const p of rows) {
    const tr = document.createElement("tr");
    tr.dataset.player = p.player;
    if (state.selected === p.player) tr.classList.add("selected");
    for (const [k, fmt] of COLUMNS) {
      const td = document.createElement("td");
      td.dataset.key = k;
      td.dataset.value = p[k];
      if (k === "team") {
        const chip = document.createElement("span");
        chip.className = "chip";
        chip.style.background = TEAM_COLOUR[p.team] || "#999";
        chip.textContent = fmt(p);
        td.appendChild(chip);
      } else td.textContent = fmt(p);
      tr.appendChild(td);
    }
    tr.addEventListener("click", () => select(p.player));
    body.appendChild(tr);
  }
  for (const th of $("players").tHead.rows[0].cells) {
    th.setAttribute("aria-sort", th.dataset.key === key ? (dir > 0 ? "ascending" : "descending") : "none");
  }
}

const ZONES = [
  ["walking_m", "walk", "#b7d4f7"], ["jogging_m", "jog", "#6ea8ea"], ["running_m", "run", "#2f7fd9"],
  ["high_speed_running_m", "high-speed", "#f29d38"], ["sprinting_m", "sprint", "#d92d20"],
];
function renderPlayerCard() {
  const p = state.players.find((q) => q.player === state.selected);
  $("player-detail").hidden = !p;
  $("player-hint").hidden = !!p;
  if (!p) { $("player-title").textContent = "Player"; return; }
  $("player-title").textContent = `#${p.player} · ${TEAM_LABEL[p.team] || p.team} · ${clock(p.seconds)}`;
  $("pd-distance").textContent = p.distance_m.toFixed(1);
  $("pd-top").textContent = p.top_speed_kmh.toFixed(1);
  $("pd-sprints").textContent = String(p.sprints);
  $("pd-acc").textContent = `${p.accelerations} / ${p.decelerations}`;
  const bar = $("pd-zones"), legend = $("pd-zone-legend");
  bar.textContent = ""; legend.textContent = "";
  const total = ZONES.reduce((t, [k]) => t + p[k], 0) || 1;
  for (const [k, name, colour] of ZONES) {
    const part = document.createElement("span");
    part.style.width = `${(100 * p[k]) / total}%`;
    part.style.background = colour;
    part.title = `${name}: ${p[k].toFixed(0)} m`;
    bar.appendChild(part);
    const item = document.createElement("span");
    item.innerHTML = `<span class="dot"></span>`;
    item.firstChild.style.background = colour;
    item.append(`${name} ${p[k].toFixed(0)} m`);
    legend.appendChild(item);
  }
}

function select(player) {
  state.selected = state.selected === player ? null : player;
  renderTable();
  renderPlayerCard();
  if ($("heat-of").value === "player") loadHeatmap();
  draw();
}

for (const th of document.querySelectorAll("#players th")) {
  th.addEventListener("click", () => {
    const key = th.dataset.key;
    // Numbers start from the largest, names from A.
    state.sort = state.sort.key === key ? { key, dir: -state.sort.dir } : { key, dir: th.dataset.type === "num" ? -1 : 1 };
    renderTable();
  });
}

// Heatmap.
let heatRequest = 0;
async function loadHeatmap() {
  const of = $("heat-of").value;
  const request = ++heatRequest; // a later choice wins even when its answer comes first
  state.heat = null;
  $("heat-status").textContent = "";
  if (!of || !state.match) { draw(); return; }
  const params = new URLSearchParams({ cell_m: $("heat-cell").value });
  if (of === "player") {
    if (state.selected === null) { $("heat-status").textContent = "pick a player in the table"; draw(); return; }
    params.set("player", state.selected);
  } else params.set("team", of);
  const half = $("heat-period").value, mid = state.duration / 2;
  if (half === "1") params.set("to_s", mid.toFixed(3));
  if (half === "2") params.set("from_s", mid.toFixed(3));
  const period = { "": "", 1: ", first half", 2: ", second half" }[half];
  try {
    const map = await api(`/v1/matches/${state.match.match_id}/heatmap?${params}`);
    if (request !== heatRequest) return;
    state.heat = map;
    const who = of === "player" ? `player #${state.selected}` : TEAM_LABEL[of];
    $("heat-status").textContent = `${who}${period}: ${clock(map.total_s)} on the pitch`;
  } catch (e) {
    if (request !== heatRequest) return;
    $("heat-status").textContent = "heatmap: " + e.message;
  }
  draw();
}
for (const id of ["heat-of", "heat-period", "heat-cell"]) $(id).addEventListener("change", loadHeatmap);

// Drawing.
const canvas = $("pitch"), ctx = canvas.getContext("2d");
const MARGIN = 3; // metres around the pitch
function scale() { return canvas.width / (PITCH.length + 2 * MARGIN); }
// Pitch metres (origin at the centre spot, x along the touchline, y away from the rig) to canvas
// pixels, the rig's touchline at the bottom as the camera sees it.
function px(x, y) {
  const s = scale();
  return [(x + PITCH.length / 2 + MARGIN) * s, (PITCH.width / 2 - y + MARGIN) * s];
}

function drawPitch() {
  const s = scale(), L = PITCH.length, W = PITCH.width, hl = L / 2, hw = W / 2;
  ctx.fillStyle = "#2f7d3a"; ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = "#2c7537";
  for (let i = 0; i < 10; i += 2) { // mowing stripes
    const [u, v] = px(-hl + (L / 10) * i, hw);
    ctx.fillRect(u, v, (L / 10) * s, W * s);
  }
  ctx.strokeStyle = "rgba(255,255,255,.85)"; ctx.lineWidth = Math.max(1.5, s * 0.12);
  const line = (pts) => { ctx.beginPath(); pts.forEach(([x, y], i) => { const [u, v] = px(x, y); i ? ctx.lineTo(u, v) : ctx.moveTo(u, v); }); ctx.stroke(); };
  const box = (x0, x1, halfWidth) => line([[x0, -halfWidth], [x1, -halfWidth], [x1, halfWidth], [x0, halfWidth]]);
  line([[-hl, -hw], [hl, -hw], [hl, hw], [-hl, hw], [-hl, -hw]]);
  line([[0, -hw], [0, hw]]);
  const arc = (x, y, r, a0 = 0, a1 = 2 * Math.PI) => { const [u, v] = px(x, y); ctx.beginPath(); ctx.arc(u, v, r * s, a0, a1); ctx.stroke(); };
  arc(0, 0, 9.15);
  ctx.fillStyle = "#fff";
  for (const dir of [-1, 1]) {
    const goal = dir * hl;
    box(goal, goal - dir * 16.5, 20.16);
    box(goal, goal - dir * 5.5, 9.16);
    const spot = goal - dir * 11;
    const [u, v] = px(spot, 0); ctx.fillRect(u - 2, v - 2, 4, 4);
    const a = Math.acos(5.5 / 9.15); // the arc outside the penalty area
    if (dir < 0) arc(spot, 0, 9.15, -a, a); else arc(spot, 0, 9.15, Math.PI - a, Math.PI + a);
  }
  const [u, v] = px(0, 0); ctx.fillRect(u - 2, v - 2, 4, 4);
}

function drawHeat() {
  const map = state.heat;
  if (!map || !map.cells.length) return;
  const max = Math.max(...map.cells.map((c) => c[2]));
  const s = scale();
  for (const [i, j, sec] of map.cells) {
    const f = Math.sqrt(sec / max); // square root: short stays still show
    const [u, v] = px(i * map.cell_m, (j + 1) * map.cell_m); // the cell's corner away from the rig
    ctx.fillStyle = `rgba(${255}, ${Math.round(230 - 200 * f)}, 0, ${0.15 + 0.65 * f})`;
    ctx.fillRect(u, v, map.cell_m * s + 0.5, map.cell_m * s + 0.5);
  }
}

function positionAt(tr, t) {
  const T = tr.t; let lo = 0, hi = T.length - 1;
  if (!T.length || t < T[0] - state.gap / 2 || t > T[hi] + state.gap / 2) return null;
  while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (T[mid] <= t) lo = mid; else hi = mid; }
  if (t <= T[lo] || lo === hi) return [tr.x[lo], tr.y[lo]];
  if (T[hi] - T[lo] > state.gap) return null; // not seen in between
  const f = (t - T[lo]) / (T[hi] - T[lo]);
  return [tr.x[lo] + f * (tr.x[hi] - tr.x[lo]), tr.y[lo] + f * (tr.y[hi] - tr.y[lo])];
}

function drawPlayers() {
  const s = scale();
  let selected = null;
  for (const tr of state.tracks) {
    const p = positionAt(tr, state.time);
    if (!p) continue;
    const [u, v] = px(p[0], p[1]);
    if (tr.cls === 4) {
      ctx.fillStyle = "#fff"; ctx.strokeStyle = "#222"; ctx.lineWidth = 1;
      ctx.beginPath(); ctx.arc(u, v, Math.max(3, 0.45 * s), 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
      continue;
    }
    const player = state.playerOfTrack.get(tr.track);
    const team = player ? player.team : CLASS_TEAM[tr.cls] || "unknown";
    const r = Math.max(5, 0.9 * s);
    ctx.fillStyle = TEAM_COLOUR[team] || "#999";
    ctx.strokeStyle = "#fff"; ctx.lineWidth = 1.5;
    ctx.beginPath(); ctx.arc(u, v, r, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
    const id = player ? player.player : tr.track;
    ctx.fillStyle = "#fff"; ctx.font = `${Math.round(r * 1.1)}px system-ui, sans-serif`;
    ctx.textAlign = "center"; ctx.textBaseline = "middle"; ctx.fillText(String(id), u, v + 0.5);
    if (player && player.player === state.selected) selected = [u, v, r];
  }
  if (selected) {
    const [u, v, r] = selected;
    ctx.strokeStyle = "#ffeb3b"; ctx.lineWidth = 3;
    ctx.beginPath(); ctx.arc(u, v, r + 5, 0, 2 * Math.PI); ctx.stroke();
  }
}

function draw() {
  drawPitch();
  drawHeat();
  drawPlayers();
  $("clock").textContent = `${clock(state.time)} / ${clock(state.duration)}`;
  $("scrub").value = state.time.toFixed(2);
}

// Replay.
function updatePlayButton() {
  $("play").textContent = state.playing ? "❚❚ Pause" : "▶ Play";
  $("play").setAttribute("aria-label", state.playing ? "Pause" : "Play");
}
function tick(now) {
  if (!state.playing) return;
  const dt = (now - state.lastTick) / 1000;
  state.lastTick = now;
  state.time = Math.min(state.duration, state.time + dt * state.speed);
  if (state.time >= state.duration) { state.playing = false; updatePlayButton(); }
  draw();
  if (state.playing) requestAnimationFrame(tick);
}
$("play").addEventListener("click", () => {
  state.playing = !state.playing;
  if (state.playing) {
    if (state.time >= state.duration) state.time = 0;
    state.lastTick = performance.now();
    requestAnimationFrame(tick);
  }
  updatePlayButton();
});
$("scrub").addEventListener("input", () => { state.time = Number($("scrub").value); draw(); });
$("speed").addEventListener("change", () => { state.speed = Number($("speed").value); });
state.speed = Number($("speed").value);

$("export").addEventListener("click", async () => {
  try {
    const r = await api(`/v1/matches/${state.match.match_id}/export?format=csv`, true);
    const url = URL.createObjectURL(await r.blob());
    const a = document.createElement("a");
    a.href = url; a.download = `match-${state.match.match_id}.csv`; a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (e) { $("match-error").textContent = "Export failed: " + e.message; }
});

$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const token = $("token").value.trim();
  const c = claims(token);
  if (!c) { $("login-error").textContent = "That is not a token (three dot-separated parts)."; return; }
  if (c.exp && c.exp * 1000 < Date.now()) { $("login-error").textContent = "This token has expired; ask for a new one."; return; }
  state.token = token;
  ($("remember").checked ? localStorage : sessionStorage).setItem("polyvision.token", token);
  $("token").value = "";
  $("login-error").textContent = "";
  openMatches();
});
$("logout").addEventListener("click", () => signOut(""));
$("back").addEventListener("click", () => { state.playing = false; updatePlayButton(); openMatches(); });

if (state.token) openMatches(); else show("login");
draw();

// The technician's calibration page in a real browser (Debian's headless Chromium, driven by
// Playwright): log in, tap the landmarks of rendered frames, save, and check the file on disk and
// that the daemon runs with it.
//
// Needs, from scripts/test.sh: POLYVISION_BIN (release binaries), POLYVISION_WEB_WORK (a folder
// with match/ rendered by rig-sim and clicks/ from `rig-sim clicks`), POLYVISION_ARTIFACTS.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const BIN = process.env.POLYVISION_BIN;
const WORK = process.env.POLYVISION_WEB_WORK;
const ARTIFACTS = process.env.POLYVISION_ARTIFACTS;
const PIN = "482913";

let daemon;
let daemonLog = "";
let base;
let browser;
const calibrationFile = () => path.join(WORK, "rig", "calibration.json");
const readJson = (p) => JSON.parse(fs.readFileSync(p, "utf8"));

function writeConfig() {
  const truth = readJson(path.join(WORK, "clicks", "truth-calibration.json"));
  const lens = (name) => {
    const l = truth.cameras.find((c) => c.name === name).lens;
    return "{ " + Object.entries(l).map(([k, v]) => `${k} = ${v}`).join(", ") + " }";
  };
  const dir = path.join(WORK, "rig");
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  // The lens comes from the plumb-line fit (`polyvision-calibrate lines`); here the true one.
  fs.writeFileSync(
    path.join(dir, "edge.toml"),
    `[calibration]
file = "calibration.json"
[capture.left]
source = "${path.join(WORK, "match", "camera-left.mkv")}"
lens = ${lens("left")}
[capture.right]
source = "${path.join(WORK, "match", "camera-right.mkv")}"
lens = ${lens("right")}
[web]
listen = "127.0.0.1:0"
technician_pin = "${PIN}"
`,
  );
  return path.join(dir, "edge.toml");
}

before(async () => {
  for (const [name, v] of Object.entries({ BIN, WORK, ARTIFACTS })) assert.ok(v, `${name} is not set`);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const config = writeConfig();
  daemon = spawn(path.join(BIN, "polyvision-edge"), ["calibrate", "--config", config], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, RUST_LOG: "info" },
  });
  base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("daemon did not start:\n" + daemonLog)), 60000);
    const onData = (chunk) => {
      daemonLog += chunk;
      const m = /technician page ready address=(\S+)/.exec(daemonLog);
      if (m) {
        clearTimeout(timer);
        resolve("http://" + m[1]);
      }
    };
    daemon.stdout.on("data", onData);
    daemon.stderr.on("data", onData);
    daemon.on("exit", (code) => reject(new Error(`daemon exited ${code}:\n${daemonLog}`)));
  });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  daemon?.kill("SIGINT");
  fs.writeFileSync(path.join(ARTIFACTS, "calibration-daemon.log"), daemonLog);
});

async function apiStatus(page) {
  return page.evaluate(async () => {
    const token = sessionStorage.getItem("pv-token");
    const res = await fetch("/api/status", { headers: { Authorization: "Bearer " + token } });
    return res.json();
  });
}

/** Taps every click of a rig-sim points file on the shown view and names its landmark. */
async function tapLandmarks(page, clicksFile) {
  const clicks = readJson(clicksFile);
  for (const [i, c] of clicks.points.entries()) {
    const at = await page.evaluate(([u, v]) => window.pvCalibration.imageToClient(u, v), c.pixel);
    await page.touchscreen.tap(at.x, at.y);
    try {
      await page.locator("#picker").waitFor({ state: "visible", timeout: 15000 });
    } catch (e) {
      await page.screenshot({ path: path.join(ARTIFACTS, "calibration-page-failed-tap.png") });
      throw new Error(`tap ${i} at image ${c.pixel} = page (${at.x.toFixed(1)}, ${at.y.toFixed(1)}) opened no picker: ${e.message}`);
    }
    await page.selectOption("#landmark-list", c.landmark);
    await page.click("#picker-ok");
    await page.waitForFunction((n) => document.querySelectorAll("#points li").length === n, i + 1);
  }
  // Solved: every point has its error in centimetres and the pitch is drawn back.
  await page.waitForFunction((n) => {
    const errs = [...document.querySelectorAll("#points .err")].map((e) => e.textContent);
    return errs.length === n && errs.every((t) => /cm|outlier|left out/.test(t));
  }, clicks.points.length);
  return clicks;
}

/** Median position error over the view's scoring grid, cm, of a pitch_from_image matrix. */
function medianErrorCm(h, gridFile) {
  const errs = readJson(gridFile).map(({ pitch, pixel }) => {
    const [u, v] = pixel;
    const w = h[2][0] * u + h[2][1] * v + h[2][2];
    const x = (h[0][0] * u + h[0][1] * v + h[0][2]) / w;
    const y = (h[1][0] * u + h[1][1] * v + h[1][2]) / w;
    return 100 * Math.hypot(x - pitch[0], y - pitch[1]);
  }).sort((a, b) => a - b);
  return errs[Math.floor(errs.length / 2)];
}

test("the API refuses requests without the technician PIN", async () => {
  assert.equal((await fetch(base + "/api/state")).status, 401);
  const wrong = await fetch(base + "/api/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ pin: "000000" }),
  });
  assert.equal(wrong.status, 401);
  assert.equal((await fetch(base + "/healthz")).status, 200);
});

test("a technician calibrates both cameras by tapping landmarks, and the daemon picks it up", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, hasTouch: true });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on("pageerror", (e) => consoleErrors.push(e.message));
  // Under `calibrate` there is no daemon: the page asks for match control once, not every few s.
  let matchRequests = 0;
  page.on("request", (r) => { if (new URL(r.url()).pathname === "/api/match") matchRequests += 1; });
  await page.goto(base + "/");
  await page.locator("#login").waitFor({ state: "visible" });
  await page.fill("#pin", "111111");
  await page.click("#login-submit");
  await page.waitForFunction(() => document.querySelector("#login-error").textContent.includes("wrong PIN"));
  await page.fill("#pin", PIN);
  await page.click("#login-submit");
  await page.waitForFunction(() => document.querySelectorAll("#views button").length === 2);

  const saved = [];
  for (const view of ["left", "right"]) {
    await page.click(`#views button[data-view="${view}"]`);
    await page.waitForFunction((v) => window.pvCalibration.app.view === v && window.pvCalibration.app.ready, view);
    await tapLandmarks(page, path.join(WORK, "clicks", `${view}-000.json`));
    const lines = await page.locator("#overlay polyline.line").count();
    assert.ok(lines > 10, `${view}: only ${lines} pitch lines drawn back`);
    const summary = await page.textContent("#summary");
    assert.match(summary, /Expected error \d+\.\d cm/);
    // Ten clicks: every one held out in turn, the measured error beside the expected one.
    assert.match(summary, /each point held out: \d+ cm median \(expected \d+ cm\)/);
    if (view === "right") await page.screenshot({ path: path.join(ARTIFACTS, "calibration-page-camera.png") });
    await page.click("#save");
    await page.waitForFunction(() => /Saved and in use/.test(document.querySelector("#message").textContent));
    saved.push(await apiStatus(page));
  }

  // The file on disk: both cameras fitted to the tapped points, accurate against the truth.
  const bytes = fs.readFileSync(calibrationFile());
  const cal = JSON.parse(bytes);
  for (const view of ["left", "right"]) {
    const cam = cal.cameras.find((c) => c.name === view);
    assert.ok(cam, `${view} missing from the saved file`);
    assert.equal(cam.fit.points.length, 10);
    const median = medianErrorCm(cam.pitch_from_image, path.join(WORK, "clicks", `${view}-grid.json`));
    assert.ok(median < 25, `${view}: median position error ${median.toFixed(1)} cm`);
    console.log(`# ${view}: median position error over the visible pitch ${median.toFixed(1)} cm`);
  }
  assert.ok(cal.panorama, "no panorama planned after both cameras");

  // The daemon runs with exactly that file, stitching table included.
  const status = await apiStatus(page);
  const sha = createHash("sha256").update(bytes).digest("hex");
  assert.equal(status.sha256, sha);
  assert.equal(status.generation, saved[0].generation + 1);
  assert.equal(status.stitching_table, true);
  assert.equal(status.last_error, null);

  // The panorama, stitched with the new calibration, with the pitch drawn over it.
  await page.waitForFunction(() => document.querySelector('#views button[data-view="panorama"]'));
  await page.click('#views button[data-view="panorama"]');
  await page.waitForFunction(() => window.pvCalibration.app.view === "panorama" && window.pvCalibration.app.ready);
  await tapLandmarks(page, path.join(WORK, "clicks", "panorama-000.json"));
  assert.ok((await page.locator("#overlay polyline.line").count()) > 10);
  await page.screenshot({ path: path.join(ARTIFACTS, "calibration-page.png") });

  // Roll back to the left-only version from the history, on the page.
  page.on("dialog", (d) => d.accept());
  await page.click("#history-open");
  await page.locator("#history-list button").first().waitFor();
  const versions = await page.locator("#history-list li").count();
  assert.equal(versions, 1, "one earlier version after two saves");
  await page.locator("#history-list button").first().click();
  await page.waitForFunction(() => /restored and in use/.test(document.querySelector("#message").textContent));
  const rolled = readJson(calibrationFile());
  assert.deepEqual(rolled.cameras.map((c) => c.name), ["left"]);
  const afterRestore = await apiStatus(page);
  assert.equal(afterRestore.generation, status.generation + 1);

  // A change made outside the page (the command line) is picked up by the file watcher.
  execFileSync(path.join(BIN, "polyvision-calibrate"), ["restore", "--calibration", calibrationFile(), "--version", "2"]);
  const deadline = Date.now() + 10000;
  let watched = afterRestore;
  while (watched.generation === afterRestore.generation && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    watched = await apiStatus(page);
  }
  assert.equal(watched.generation, afterRestore.generation + 1, "the watcher did not reload the file");
  assert.equal(watched.sha256, createHash("sha256").update(fs.readFileSync(calibrationFile())).digest("hex"));
  assert.deepEqual(consoleErrors, []);
  assert.ok(matchRequests <= 1, `/api/match asked ${matchRequests} times without a daemon`);
  await context.close();
});

test("a frame that fails to load is shown as an error with a retry, and the picker is filled regardless", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, hasTouch: true });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on("pageerror", (e) => consoleErrors.push(e.message));
  // The first request for the first camera's frame fails, as on a slow or dropped phone connection.
  let failed = 0;
  await page.route("**/api/frame/left", async (route) => {
    if (failed++ === 0) await route.fulfill({ status: 503, contentType: "application/json", body: '{"error":"camera busy"}' });
    else await route.continue();
  });
  await page.goto(base + "/");
  await page.fill("#pin", PIN);
  await page.click("#login-submit");
  await page.locator("#frame-retry").waitFor({ state: "visible", timeout: 15000 });
  assert.match(await page.textContent("#message"), /left frame did not load: camera busy/);
  assert.equal(await page.evaluate(() => window.pvCalibration.app.ready), false);
  const options = await page.locator("#landmark-list option").count();
  assert.ok(options > 30, `the landmark list has ${options} options while the frame is missing`);

  await page.click("#frame-retry");
  await page.waitForFunction(() => window.pvCalibration.app.view === "left" && window.pvCalibration.app.ready);
  assert.equal(await page.locator("#frame-retry").isVisible(), false);
  assert.equal(failed, 2, "the retry fetched the frame again");
  // The picker works on the reloaded view (cleared first: the view may hold saved points).
  page.on("dialog", (d) => d.accept());
  await page.click("#clear");
  await page.waitForFunction(() => document.querySelectorAll("#points li").length === 0);
  const c = readJson(path.join(WORK, "clicks", "left-000.json")).points[0];
  const at = await page.evaluate(([u, v]) => window.pvCalibration.imageToClient(u, v), c.pixel);
  await page.touchscreen.tap(at.x, at.y);
  await page.locator("#picker").waitFor({ state: "visible", timeout: 15000 });
  await page.selectOption("#landmark-list", c.landmark);
  await page.click("#picker-ok");
  await page.waitForFunction((name) => {
    const items = document.querySelectorAll("#points li");
    return items.length === 1 && items[0].dataset.landmark === name;
  }, c.landmark);
  assert.deepEqual(consoleErrors, []);
  await context.close();
});

test("the page fits a phone screen", async () => {
  const context = await browser.newContext({
    viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, hasTouch: true, isMobile: true,
  });
  const page = await context.newPage();
  await page.goto(base + "/");
  await page.fill("#pin", PIN);
  await page.click("#login-submit");
  await page.waitForFunction(() => document.querySelectorAll("#views button").length >= 2 && window.pvCalibration.app.ready);
  for (const id of ["#viewport", "#save", "#views"]) {
    const box = await page.locator(id).boundingBox();
    assert.ok(box && box.width > 0 && box.x >= 0 && box.x + box.width <= 391, `${id} is off screen: ${JSON.stringify(box)}`);
  }
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow} px`);
  await page.screenshot({ path: path.join(ARTIFACTS, "calibration-page-phone.png") });
  await context.close();
});

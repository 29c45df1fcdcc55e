// The coaches' page in a real browser (Debian's headless Chromium, driven by Playwright): sign
// in with a coach token, open the match, play and scrub the replay, show heatmaps, sort the
// table, and check that every number on the page is the rig's own (its metrics.csv). On a laptop
// and on a tablet.
//
// Started by edge/tests/coaches_page.rs, which records the match, syncs it to a cloud service it
// runs, and sets POLYVISION_CLOUD, POLYVISION_TOKEN, POLYVISION_MATCH, POLYVISION_EDGE_METRICS
// and POLYVISION_ARTIFACTS.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const BASE = process.env.POLYVISION_CLOUD;
const TOKEN = process.env.POLYVISION_TOKEN;
const MATCH = process.env.POLYVISION_MATCH;
const METRICS = process.env.POLYVISION_EDGE_METRICS;
const ARTIFACTS = process.env.POLYVISION_ARTIFACTS;

let browser;

/** The rig's metrics.csv as objects keyed by column. */
function edgeMetrics() {
  const [head, ...lines] = fs.readFileSync(METRICS, "utf8").trim().split("\n");
  const keys = head.split(",");
  return lines.map((l) => Object.fromEntries(l.split(",").map((v, i) => [keys[i], v])));
}

before(async () => {
  for (const [name, v] of Object.entries({ BASE, TOKEN, MATCH, METRICS, ARTIFACTS })) assert.ok(v, `${name} is not set`);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
});

after(async () => {
  await browser?.close();
});

async function signIn(page) {
  const requests = [];
  page.on("request", (r) => requests.push(r.url()));
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  await page.goto(BASE + "/");
  await page.locator("#login").waitFor();
  await page.fill("#token", TOKEN);
  await page.click("#login-form button[type=submit]");
  await page.locator(`#match-list button[data-match="${MATCH}"]`).waitFor();
  return { requests, problems };
}

test("a coach signs in, replays the match, reads the heatmaps and the rig's numbers", async () => {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  const { requests, problems } = await signIn(page);
  await page.click(`#match-list button[data-match="${MATCH}"]`);
  await page.locator("#players tbody tr").first().waitFor();

  // Every number in the table is the rig's.
  const rig = edgeMetrics();
  const rows = await page.$$eval("#players tbody tr", (trs) =>
    trs.map((tr) => Object.fromEntries([...tr.cells].map((td) => [td.dataset.key, { value: td.dataset.value, text: td.textContent }]))),
  );
  assert.equal(rows.length, rig.length, "one row per player of the rig");
  const fixed = (v, d) => Number(v).toFixed(d);
  for (const r of rig) {
    const row = rows.find((x) => x.player.value === r.track_id);
    assert.ok(row, `player ${r.track_id} is on the page`);
    const same = (pageKey, csvKey, decimals) =>
      assert.equal(fixed(row[pageKey].value, decimals), r[csvKey], `player ${r.track_id} ${csvKey}`);
    same("distance_m", "distance_m", 2);
    same("walking_m", "walking_m", 2);
    same("jogging_m", "jogging_m", 2);
    same("running_m", "running_m", 2);
    same("high_speed_running_m", "high_speed_running_m", 2);
    same("sprinting_m", "sprinting_m", 2);
    assert.equal(fixed(Number(row.top_speed_kmh.value) / 3.6, 3), r.top_speed_mps, `player ${r.track_id} top speed`);
    assert.equal(row.sprints.value, r.sprints);
    assert.equal(row.accelerations.value, r.accelerations);
    assert.equal(row.decelerations.value, r.decelerations);
    assert.equal(row.team.value, r.team);
    // What is shown is the same number, rounded for reading.
    assert.equal(row.distance_m.text, fixed(row.distance_m.value, 1));
    assert.equal(row.top_speed_kmh.text, fixed(row.top_speed_kmh.value, 1));
  }
  console.log(`# ${rig.length} players: every figure on the page equals the rig's metrics.csv`);

  // Sorting: by distance at first (largest first); a click turns it round; team names from A.
  const column = (key) => page.$$eval(`#players tbody td[data-key="${key}"]`, (tds) => tds.map((td) => td.dataset.value));
  let d = (await column("distance_m")).map(Number);
  assert.deepEqual(d, [...d].sort((a, b) => b - a), "descending distance");
  await page.click('#players th[data-key="distance_m"]');
  d = (await column("distance_m")).map(Number);
  assert.deepEqual(d, [...d].sort((a, b) => a - b), "ascending distance");
  await page.click('#players th[data-key="team"]');
  const teams = await column("team");
  assert.deepEqual(teams, [...teams].sort(), "teams A to Z");
  await page.click('#players th[data-key="top_speed_kmh"]');
  const top = (await column("top_speed_kmh")).map(Number);
  assert.deepEqual(top, [...top].sort((a, b) => b - a), "descending top speed");
  assert.equal(await page.getAttribute('#players th[data-key="top_speed_kmh"]', "aria-sort"), "descending");

  // The replay: play for a while at 8x, pause, scrub.
  await page.selectOption("#speed", "8");
  await page.click("#play");
  await page.waitForFunction(() => window.polyvision.time > 4, null, { timeout: 15000 });
  await page.click("#play");
  const paused = await page.evaluate(() => window.polyvision.time);
  await page.waitForTimeout(300);
  assert.equal(await page.evaluate(() => window.polyvision.time), paused, "pause stops the clock");
  assert.equal(await page.evaluate(() => window.polyvision.playing), false);
  const before = await page.$eval("#pitch", (c) => c.toDataURL());
  await page.$eval("#scrub", (el) => { el.value = "95"; el.dispatchEvent(new Event("input")); });
  assert.ok(Math.abs((await page.evaluate(() => window.polyvision.time)) - 95) < 0.05, "scrubbed to 1:35");
  assert.match(await page.textContent("#clock"), /^1:35 \/ 3:00$/);
  assert.notEqual(await page.$eval("#pitch", (c) => c.toDataURL()), before, "players moved on the pitch");

  // Heatmaps: the fastest player (now first in the table), then a team's second half.
  const fastest = await page.$eval("#players tbody tr", (tr) => tr.dataset.player);
  await page.click(`#players tbody tr[data-player="${fastest}"]`);
  assert.equal(await page.evaluate(() => window.polyvision.selected), Number(fastest));
  await page.selectOption("#heat-of", "player");
  await page.waitForFunction(() => window.polyvision.heat && window.polyvision.heat.cells.length > 0);
  const heat = await page.evaluate(() => window.polyvision.heat);
  const seconds = Number(rows.find((x) => x.player.value === fastest).seconds.value);
  // The map counts the player's rows (every frame of every fragment); the rig's time spans the
  // first to the last measurement: equal within the coasted ends.
  assert.ok(Math.abs(heat.total_s - seconds) < 2, `heatmap ${heat.total_s} s vs ${seconds} s on the pitch`);
  assert.match(await page.textContent("#heat-status"), new RegExp(`player #${fastest}`));
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(ARTIFACTS, "coaches-page.png"), fullPage: true });

  await page.selectOption("#heat-of", "team_b");
  await page.selectOption("#heat-period", "2");
  await page.waitForFunction(() => (document.querySelector("#heat-status").textContent || "").startsWith("Team B, second half"));
  const team = await page.evaluate(() => window.polyvision.heat);
  assert.ok(team.total_s > 600 && team.total_s < 1100, `team B, second half: ${team.total_s} player-seconds`);

  // Only this service was asked for anything, and nothing went wrong in the page.
  const elsewhere = requests.filter((u) => !u.startsWith(BASE) && !u.startsWith("blob:") && !u.startsWith("data:"));
  assert.deepEqual(elsewhere, [], "no request leaves the service");
  assert.deepEqual(problems, []);
  await page.close();
});

test("on a tablet the page fits the screen and a refused token returns to sign-in", async () => {
  const context = await browser.newContext({ viewport: { width: 820, height: 1180 }, hasTouch: true, isMobile: true });
  const page = await context.newPage();
  await signIn(page);
  await page.click(`#match-list button[data-match="${MATCH}"]`);
  await page.locator("#players tbody tr").first().waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `page wider than the screen by ${overflow} px`);
  const canvas = await page.$eval("#pitch", (c) => c.getBoundingClientRect().width);
  assert.ok(canvas > 700, `pitch ${canvas} px wide on a tablet`);
  await page.tap("#play");
  await page.waitForFunction(() => window.polyvision.time > 1);
  await page.tap("#play");
  await page.screenshot({ path: path.join(ARTIFACTS, "coaches-page-tablet.png"), fullPage: true });

  // A token the service refuses (here: a damaged signature) sends the coach back to sign in.
  await page.evaluate(() => {
    const bad = window.polyvision.token.slice(0, -4) + "AAAA";
    window.polyvision.token = bad;
  });
  await page.click("#back");
  await page.locator("#login").waitFor();
  assert.match(await page.textContent("#login-error"), /refused/);
  await context.close();
});

// The /docs page in a real browser (Debian's headless Chromium, driven by playwright-core):
// it lists every operation of the served document, takes the demo's token, executes
// GET /v1/me against the same stack (under the stage prefix, as on an execute-api URL) and
// shows the 200 answer with its curl line; `/docs#problems` lands on the problems section.
// Nothing is loaded from anywhere but the stack. tools/test.sh runs it against its stack:
//   KOPPEL_E2E_BASE_URL=http://127.0.0.1:PORT KOPPEL_E2E_DEMO=.koppel/test/demo.json \
//   node --test tests/browser/docs.test.mjs
// Screenshots go to KOPPEL_SCREENSHOTS (default .koppel/screenshots, ignored by git).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const BASE = need("KOPPEL_E2E_BASE_URL").replace(/\/$/, "");
const DEMO = JSON.parse(readFileSync(need("KOPPEL_E2E_DEMO"), "utf8"));
const SHOTS = process.env.KOPPEL_SCREENSHOTS || join(ROOT, ".koppel", "screenshots");
const CHROMIUM = process.env.KOPPEL_CHROMIUM || "/usr/bin/chromium";
// template.yaml's default StageName: the page must work under it as on an execute-api URL.
const STAGE = "/live";
const STEP_MS = 20_000;
const METHODS = ["get", "put", "post", "delete", "patch", "options", "head", "trace"];

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run this through tools/test.sh`);
  return v;
}

let context;
let profile;
let doc;
const foreign = [];
const pageErrors = [];

before(async () => {
  const r = await fetch(`${BASE}/openapi.json`, { signal: AbortSignal.timeout(STEP_MS) });
  assert.equal(r.status, 200, "GET /openapi.json without a credential");
  doc = await r.json();
  mkdirSync(SHOTS, { recursive: true });
  profile = mkdtempSync(join(tmpdir(), "koppel-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: STEP_MS,
    viewport: { width: 1280, height: 900 },
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  context.setDefaultTimeout(STEP_MS);
  // Only the stack itself may be asked for anything: no CDN, no validator, no fonts.
  const own = new URL(BASE).host;
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith("data:") || new URL(url).host === own) return route.continue();
    foreign.push(url);
    return route.abort();
  });
});

after(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

async function open(path) {
  const page = await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(`${path}: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") pageErrors.push(`${path}: console: ${m.text()}`);
  });
  const resp = await page.goto(`${BASE}${path}`, { waitUntil: "load" });
  assert.equal(resp.status(), 200, `GET ${path}`);
  await page.waitForFunction(() => window.koppelDocs && window.koppelDocs.ready === true);
  return page;
}

/** `operations-<tag>-<operationId>`: the element id Swagger UI gives each operation. */
function expectedOperations() {
  const ids = [];
  for (const [, item] of Object.entries(doc.paths)) {
    for (const m of METHODS) {
      const op = item[m];
      if (op) ids.push(`operations-${op.tags[0]}-${op.operationId}`);
    }
  }
  return ids.sort();
}

test("the page lists every operation of the document and nothing else", async () => {
  const page = await open(`${STAGE}/docs`);
  const expected = expectedOperations();
  assert.ok(expected.length >= 59, `${expected.length} operations in openapi.json`);
  await page.waitForFunction(
    (n) => document.querySelectorAll(".opblock-tag-section .opblock").length >= n,
    expected.length
  );
  const listed = (
    await page.$$eval(".opblock-tag-section .opblock", (els) => els.map((e) => e.id))
  ).sort();
  assert.deepEqual(listed, expected);
  // The document's description is shown (the overview, the problems section).
  const first = doc.info.description.split("\n").find((l) => l.trim()).replace(/[`*_#[\]]/g, "").trim();
  const shown = await page.textContent(".information-container .info");
  assert.ok(
    shown.replace(/\s+/g, " ").includes(first.slice(0, 40).replace(/\s+/g, " ")),
    `info.description not shown: ${first}`
  );
  await page.screenshot({ path: join(SHOTS, "docs-top.png") });
  await page.close();
});

test("GET /v1/me executes with the demo's token and answers 200 with a curl line", async () => {
  const page = await open(`${STAGE}/docs`);
  const token = DEMO.connector.token;
  assert.ok(token, "the demo has a connector token");

  await page.click("button.btn.authorize");
  const bearer = page.locator(".modal-ux .auth-container").filter({ hasText: "bearer" });
  await bearer.locator("input").first().fill(token);
  await bearer.locator("button.authorize").click();
  await bearer.getByText("Authorized").first().waitFor();
  await page.click(".modal-ux button.btn-done");

  const op = page.locator("#operations-identity-get_v1_me");
  await op.locator(".opblock-summary").first().click();
  await op.locator("button.try-out__btn").click();
  await op.locator("button.execute").click();
  const status = op.locator(".live-responses-table .response .response-col_status").first();
  await status.waitFor();
  assert.equal((await status.textContent()).trim(), "200");
  const body = await op
    .locator(".live-responses-table .response .response-col_description")
    .first()
    .textContent();
  assert.ok(body.includes(DEMO.workspace_id), `the answer names the demo workspace: ${body}`);
  assert.ok(body.includes(DEMO.connector.id), "and the connector whose token it is");

  // The curl line to copy: this stack, under the stage, with the pasted credential.
  const curl = (await op.locator(".curl-command .curl, .curl-command").first().textContent()).replace(/\s+/g, " ");
  assert.ok(curl.includes(`${BASE}${STAGE}/v1/me`), `curl line: ${curl}`);
  assert.ok(curl.includes(`Authorization: Bearer ${token}`), `curl line: ${curl}`);
  assert.ok(await op.locator(".curl-command .copy-to-clipboard").count() > 0, "a copy button");

  await op.scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(SHOTS, "docs.png") });
  await page.close();
});

test("/docs#problems and each problem type's fragment land on their section", async (t) => {
  const text = doc.info.description || "";
  if (!/^#+\s*Problems\b/im.test(text) && !/id=["']problems["']/.test(text)) {
    t.skip("openapi.json's info.description has no Problems section yet");
    return;
  }
  // The section, and the first problem type the description links to (`#problem-<slug>`).
  const slug = (text.match(/\(#(problem-[a-z0-9-]+)\)/) || [])[1];
  for (const fragment of ["problems", slug].filter(Boolean)) {
    const page = await open(`/docs#${fragment}`);
    await page.locator(`.information-container [id="${fragment}"]`).waitFor({ state: "attached" });
    // The section's heading is marked and scrolled to the top of the window.
    await page.waitForFunction(() => {
      const el = document.querySelector(".information-container .koppel-target");
      const r = el && el.getBoundingClientRect();
      return r && r.top > -2 && r.top < window.innerHeight / 2;
    });
    const marked = await page.$eval(".information-container .koppel-target", (el) => {
      let next = "";
      for (let n = el.nextElementSibling; n && !/^H[1-4]$/.test(n.tagName); n = n.nextElementSibling) {
        next += n.textContent + " ";
      }
      return { tag: el.tagName, text: el.textContent, next };
    });
    assert.match(marked.tag, /^H[1-4]$/, `#${fragment} marks a heading: ${JSON.stringify(marked)}`);
    if (fragment === "problems") {
      assert.match(marked.text, /Problems/);
      await page.screenshot({ path: join(SHOTS, "docs-problems.png") });
    } else {
      const urn = `urn:koppel:problem:${fragment.replace(/^problem-/, "")}`;
      assert.ok(marked.next.includes(urn), `#${fragment} explains ${urn}: ${JSON.stringify(marked)}`);
    }
    await page.close();
  }
});

test("the page asked nothing of other hosts and raised no errors", () => {
  assert.deepEqual(foreign, []);
  assert.deepEqual(pageErrors, []);
});

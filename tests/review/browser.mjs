// Opens review pages in Debian's headless Chromium (playwright-core, never a downloaded
// browser) and prints, per page, what the tests check: console errors, requests other
// than the page itself, what the map drew, the rows after filtering by a ballot id, the
// load time, and whether a screenshot is blank.
//   node tests/review/browser.mjs SPEC.json             (the tests: several pages)
//   node tests/review/browser.mjs PAGE.html SHOT.png    (docs/review.md's screenshot)
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";

const [first, second] = process.argv.slice(2);
const spec = first.endsWith(".html")
  ? { pages: [{ url: pathToFileURL(resolve(first)).href, screenshot: second }] }
  : JSON.parse(readFileSync(first, "utf8"));
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const results = [];
try {
  for (const job of spec.pages) {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const errors = [];
    const requests = [];
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("request", (r) => { if (r.url() !== job.url) requests.push(r.url()); });
    const started = Date.now();
    await page.goto(job.url, { waitUntil: "load", timeout: 60000 });
    try {
      await page.waitForFunction(() => window.review && window.review.ready, null,
        { timeout: spec.timeoutMs || 30000 });
    } catch (e) {
      results.push({ url: job.url, errors: errors.concat([String(e)]), requests });
      await page.close();
      continue;
    }
    const loadMs = Date.now() - started;
    const drawn = await page.evaluate(() => ({ ...window.review }));
    let hover = null;
    if (job.clickRow) {
      // a row of the table zooms the map to its point and opens the point's tooltip
      const first = page.locator("#rows tbody tr").first();
      const address = await first.locator("td").nth(2).textContent();
      await first.click();
      const tip = page.locator(".leaflet-tooltip").first();
      await tip.waitFor({ timeout: 15000 });
      hover = { address, tooltip: await tip.textContent() };
    }
    let filtered = null;
    if (job.filter) {
      await page.fill("#filter", job.filter);
      filtered = await page.evaluate(() => ({
        rows: window.review.rows,
        points: window.review.points,
        domRows: document.querySelectorAll("#rows tbody tr").length,
      }));
      await page.fill("#filter", "");
    }
    let screenshot = null;
    if (job.screenshot) {
      const png = await page.screenshot({ path: job.screenshot, fullPage: false });
      // decoded by the browser itself: distinct colours and non-white pixels of the image
      screenshot = await page.evaluate(async (b64) => {
        const img = new Image();
        img.src = "data:image/png;base64," + b64;
        await img.decode();
        const c = document.createElement("canvas");
        c.width = img.width; c.height = img.height;
        const ctx = c.getContext("2d");
        ctx.drawImage(img, 0, 0);
        const d = ctx.getImageData(0, 0, c.width, c.height).data;
        const colours = new Set();
        let ink = 0;
        for (let i = 0; i < d.length; i += 4) {
          colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
          if (d[i] < 240 || d[i + 1] < 240 || d[i + 2] < 240) ink++;
        }
        return { colours: colours.size, ink: ink / (d.length / 4) };
      }, png.toString("base64"));
    }
    results.push({ url: job.url, errors, requests, loadMs, drawn, hover, filtered, screenshot });
    await page.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(results));

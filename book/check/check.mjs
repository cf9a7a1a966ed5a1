// Opens pages of the built book (book/book/) in Debian's headless Chromium, served from
// localhost, and fails unless their math rendered: KaTeX's HTML is there, KaTeX's fonts
// loaded from the book itself, and no request left localhost (no CDN). It also counts each
// page's cell outputs (text and figures, drawn as SVG): a page may not show a cell without its
// output, and must show at least the figures and outputs that book/check/cells.json asks of it.
// Saves a screenshot of each page in book/book/screenshots/ for a person to look at.
//
//   node book/check/check.mjs PORT page.html [page.html ...]
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";

const expected = JSON.parse(readFileSync(new URL("./cells.json", import.meta.url), "utf8"));

const [port, ...pages] = process.argv.slice(2);
const shots = new URL("../book/screenshots/", import.meta.url).pathname;
mkdirSync(shots, { recursive: true });
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"],
});
let failures = 0;
for (const page_name of pages) {
  const page = await browser.newPage({ viewport: { width: 1100, height: 1400 } });
  const outside = [];
  page.on("request", (r) => {
    const host = new URL(r.url()).hostname;
    if (host !== "127.0.0.1" && host !== "localhost") outside.push(r.url());
  });
  await page.goto(`http://127.0.0.1:${port}/${page_name}`, { waitUntil: "networkidle" });
  const result = await page.evaluate(async () => {
    await document.fonts.ready;
    const math = document.querySelectorAll(".katex").length;
    const display = document.querySelectorAll(".katex-display").length;
    const first = document.querySelector(".katex-display .katex, .katex");
    const family = first ? getComputedStyle(first).fontFamily : "";
    const loaded = [...document.fonts].filter((f) => f.family.includes("KaTeX") && f.status === "loaded").length;
    const errors = document.querySelectorAll(".katex-error").length;
    const outputs = document.querySelectorAll("pre.cell-output, div.cell-figure").length;
    const figures = [...document.querySelectorAll("div.cell-figure svg")]
      .filter((svg) => svg.getBoundingClientRect().width > 100).length;
    const missing = document.querySelectorAll(".cell-missing").length;
    return { math, display, family, loaded, errors, outputs, figures, missing };
  });
  const problems = [];
  if (result.math === 0) problems.push("no rendered math (.katex) on the page");
  if (result.errors > 0) problems.push(`${result.errors} KaTeX errors (.katex-error)`);
  if (!result.family.includes("KaTeX")) problems.push(`math font is ${result.family}, not KaTeX's`);
  if (result.loaded === 0) problems.push("no KaTeX font loaded");
  if (outside.length > 0) problems.push(`requests beyond localhost: ${outside.join(", ")}`);
  if (result.missing > 0) problems.push(`${result.missing} cells without their output`);
  const want = expected[page_name] || { outputs: 0, figures: 0 };
  if (result.outputs < want.outputs) problems.push(`${result.outputs} cell outputs, fewer than ${want.outputs}`);
  if (result.figures < want.figures) problems.push(`${result.figures} figures drawn, fewer than ${want.figures}`);
  await page.screenshot({ path: `${shots}${page_name.replace(/\//g, "_")}.png`, fullPage: false });
  console.log(`${page_name}: ${result.math} formulas (${result.display} displayed), ${result.loaded} KaTeX fonts loaded, ` +
    `${result.outputs} cell outputs, ${result.figures} figures` +
    (problems.length ? ` -- FAILED: ${problems.join("; ")}` : " -- ok"));
  failures += problems.length > 0;
  await page.close();
}
await browser.close();
process.exit(failures ? 1 : 0);

// Inspect one page of the built book as a reader sees it (run by tools/check_book.py
// in headless Chromium after the page's load event).  Resolves to
//   {problems: [{kind, detail}], links: [[href, text]], ids: [id], images}
// Kinds are described in check_book.py; images are checked there, from
//   images: [{url, src, loaded, alt, where}].
(async () => {
  const problems = [];
  const add = (kind, detail) => problems.push({ kind, detail });
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const short = (text, n = 90) => {
    text = (text || "").replace(/\s+/g, " ").trim();
    return text.length > n ? text.slice(0, n - 1) + "\u2026" : text;
  };
  const where = (el) => {
    const section = el.closest && el.closest("section[id]");
    return section ? ` (in #${section.id})` : "";
  };

  // 1. MathJax: wait until it has typeset the page (if the page loads it at all).
  const usesMathJax = [...document.scripts].some((s) => /mathjax/i.test(s.src));
  const started = () => window.MathJax && MathJax.startup && MathJax.startup.promise;
  if (usesMathJax) {
    const t0 = Date.now();
    while (!started() && Date.now() - t0 < 30000) await sleep(50);
    if (!started()) add("math-untypeset", "MathJax did not start within 30 s");
    else {
      try {
        await MathJax.startup.promise;
      } catch (error) {
        add("math-error", `MathJax failed: ${error}`);
      }
    }
  }

  // 2. Open everything a reader can open: hidden cells, dropdowns, solutions.
  document.querySelectorAll("details").forEach((d) => (d.open = true));
  document.querySelectorAll(".toggle-hidden").forEach((el) => el.classList.remove("toggle-hidden"));
  document.querySelectorAll("img[loading=lazy]").forEach((img) => (img.loading = "eager"));

  // 3. Images: wait for each to load or fail.
  const images = [...document.images];
  await Promise.all(images.map((img) => img.complete ? null : new Promise((resolve) => {
    img.addEventListener("load", resolve, { once: true });
    img.addEventListener("error", resolve, { once: true });
    setTimeout(resolve, 10000);
  })));
  const imageReport = [];
  for (const img of images) {
    const src = img.getAttribute("src");
    if (!src) {
      add("missing-image", `<img> without src${where(img)}`);
      continue;
    }
    const loaded = img.naturalWidth > 0 || (await img.decode().then(() => true, () => false));
    imageReport.push({ url: img.src, src, loaded, alt: short(img.alt, 40), where: where(img) });
  }
  await sleep(100); // let the opened content lay out
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));

  // 4. Formulas: MathJax errors and formulas left untypeset.
  const texOf = new Map(); // mjx-container -> TeX source
  const mathDoc = window.MathJax && MathJax.startup && MathJax.startup.document;
  const reported = new Set();
  if (mathDoc && mathDoc.math) {
    for (const item of mathDoc.math) {
      if (item.typesetRoot) texOf.set(item.typesetRoot, item.math);
      let error = null;
      if (item.root && item.root.walkTree) {
        item.root.walkTree((node) => {
          if (error) return;
          if (node.isKind("merror")) {
            error = node.attributes.get("data-mjx-error") || "TeX error";
          } else if (node.isKind("mtext") && node.attributes.get("mathcolor") === "red") {
            // MathJax's noundefined extension shows an undefined macro as red text
            const text = node.childNodes.map((c) => (c.getText ? c.getText() : "")).join("");
            error = `undefined control sequence ${text}`;
          }
        });
      }
      if (error) {
        if (item.typesetRoot) reported.add(item.typesetRoot);
        add("math-error", `${error}: ${short(item.math)}${where(item.typesetRoot || document.body)}`);
      }
    }
  }
  for (const el of document.querySelectorAll("mjx-merror, [data-mml-node=merror], [data-mjx-error]")) {
    const container = el.closest("mjx-container");
    if (container && reported.has(container)) continue;
    if (container) reported.add(container);
    const message = el.getAttribute("data-mjx-error") || el.getAttribute("title") || "TeX error";
    add("math-error", `${message}: ${short(texOf.get(container) || el.textContent)}${where(el)}`);
  }
  for (const el of document.querySelectorAll(".math")) {
    if (!el.querySelector("mjx-container") && el.tagName !== "MJX-CONTAINER") {
      add("math-untypeset", `${short(el.textContent)}${where(el)}`);
    }
  }

  // 5. Raw TeX in the text a reader sees (code, formulas and scripts excluded).
  const skip = "script, style, noscript, textarea, template, pre, code, kbd, samp, tt, " +
               "mjx-container, .math, .highlight, .pre, svg, title";
  const rawTex = [
    /\$\$/,
    /(^|[^\\$\w])\$(?=[^\s$])[^$\n]{0,120}?[^\s$\\]\$(?![\w$])/,
    /(^|[^\\$\w])\$[^\s$\d]\$(?![\w$])/,
    /\\(begin|end)\{/,
    /\\[([]/,
    new RegExp("\\\\(frac|dfrac|sqrt|mathbf|mathrm|mathcal|mathbb|boldsymbol|operatorname|" +
               "text|left|right|sum|prod|int|log|exp|hat|tilde|bar|cdot|times|quad|top|" +
               "alpha|beta|gamma|delta|epsilon|varepsilon|theta|lambda|Lambda|mu|pi|" +
               "sigma|Sigma|partial|nabla|leq?|geq?|neq|approx|sim|mid|" +
               "bbeta|btheta|bLambda|bSigma|bb|uu|bV|bI|bL|bR|bW|RZX|RX|trans|[XZyeNYBU])" +
               "(?![A-Za-z])"),
  ];
  // One report per block (paragraph, list item, cell): a formula broken by Markdown
  // splits into many text nodes.
  const block = "p, li, dt, dd, td, th, h1, h2, h3, h4, h5, h6, caption, figcaption, div, section";
  const rawBlocks = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.nodeValue;
    if (!text || !/[$\\]/.test(text)) continue;
    const parent = node.parentElement;
    if (!parent || parent.closest(skip)) continue;
    const owner = parent.closest(block) || parent;
    if (rawBlocks.has(owner)) continue;
    for (const pattern of rawTex) {
      const match = pattern.exec(text);
      if (match) {
        rawBlocks.add(owner);
        const at = Math.max(0, match.index - 30);
        const snippet = short(text.slice(at, match.index + match[0].length + 30), 100);
        add("raw-tex", `"${snippet}" in ${owner.tagName.toLowerCase()} "${short(owner.textContent, 60)}"${where(owner)}`);
        break;
      }
    }
  }

  // 6. Wide displays at this window width: display math, code blocks, tables.
  const column = document.querySelector("article.bd-article") ||
                 document.querySelector("[role=main]") || document.querySelector("main") ||
                 document.body;
  const columnStyle = getComputedStyle(column);
  const columnRight = column.getBoundingClientRect().right - parseFloat(columnStyle.paddingRight || 0);
  const px = (v) => Math.round(v);
  const tooWide = (el) => {
    // widest right edge of el or its content, and whether el scrolls sideways
    const rect = el.getBoundingClientRect();
    if (rect.width === 0 && rect.height === 0) return null; // not displayed
    const scrolls = el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1;
    const right = Math.max(rect.right, rect.left + (el.scrollWidth || 0));
    if (scrolls) return `scrolls: content ${el.scrollWidth} px in a box ${el.clientWidth} px wide`;
    if (right > columnRight + 1) return `right edge at ${px(right)} px, past the text column's ${px(columnRight)} px`;
    return null;
  };
  const displays = [];
  for (const el of document.querySelectorAll("div.math, mjx-container[display=true]")) {
    if (el.tagName === "MJX-CONTAINER" && el.closest("div.math")) continue;
    const container = el.tagName === "MJX-CONTAINER" ? el : el.querySelector("mjx-container");
    const parts = [el, container, container && container.querySelector("svg")].filter(Boolean);
    const tex = container && texOf.get(container);
    displays.push([`display math ${short(tex || el.textContent, 70)}`, el, parts]);
  }
  for (const el of document.querySelectorAll("pre")) {
    if (el.parentElement.closest("pre")) continue;
    const kind = el.closest(".cell_output, .output") ? "cell output" : "code block";
    const firstLine = (el.textContent || "").split("\n").find((l) => l.trim()) || "";
    displays.push([`${kind} "${short(firstLine, 60)}"`, el, [el]]);
  }
  for (const el of document.querySelectorAll("table")) {
    if (el.parentElement.closest("table")) continue;
    const firstRow = el.querySelector("tr");
    displays.push([`table "${short(firstRow ? firstRow.textContent : "", 60)}"`, el, [el]]);
  }
  for (const [label, el, parts] of displays) {
    if (el.closest(".bd-sidebar-primary, .bd-sidebar-secondary, .margin, aside.sidebar, .full-width")) continue;
    for (const part of parts) {
      const why = tooWide(part);
      if (why) {
        add("too-wide", `${label}: ${why}${where(el)}`);
        break;
      }
    }
  }
  const page = document.documentElement;
  if (page.scrollWidth > window.innerWidth + 1) {
    add("too-wide", `the page scrolls sideways: ${page.scrollWidth} px wide in a ${window.innerWidth} px window`);
  }

  // 7. Links and ids, for the cross-page check done in Python.
  const links = [];
  for (const a of document.querySelectorAll("a[href]")) {
    const href = a.getAttribute("href");
    if (!href || /^(javascript|mailto|tel|data):/i.test(href)) continue;
    links.push([new URL(href, document.baseURI).href, short(a.textContent, 50)]);
  }
  const ids = [...document.querySelectorAll("[id]")].map((el) => el.id);
  for (const a of document.querySelectorAll("a[name]")) ids.push(a.getAttribute("name"));
  return {
    problems,
    links,
    ids,
    images: imageReport,
  };
})()

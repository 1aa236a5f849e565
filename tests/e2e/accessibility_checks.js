// The page checks of tests/e2e/test_accessibility.py, run in the page by Playwright:
// labels, alt texts, one h1, landmarks, the skip link and WCAG contrast. Returns
// {problems: [...], checked: <elements whose contrast was measured>}.
([selectors, minContrast]) => {
  const problems = [];
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    const s = getComputedStyle(el);
    return r.width > 1 && r.height > 1 && s.visibility !== "hidden" && s.display !== "none"
      && !el.closest("[hidden], .visually-hidden, details:not([open]) > :not(summary)");
  };
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
    + (el.className && typeof el.className === "string" ? "." + el.className.trim().replace(/\s+/g, ".") : "")
    + (el.name ? "[name=" + el.name + "]" : "");

  // Form controls: an accessible name from a label, aria-label or aria-labelledby.
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (["hidden", "submit", "button", "reset", "image"].includes(el.type) || !visible(el)) continue;
    const byLabel = el.labels && [...el.labels].some((l) => l.textContent.trim());
    const byAria = (el.getAttribute("aria-label") || "").trim();
    const byIds = (el.getAttribute("aria-labelledby") || "").split(/\s+/).filter(Boolean)
      .some((id) => (document.getElementById(id)?.textContent || "").trim());
    if (!byLabel && !byAria && !byIds) problems.push("no label: " + describe(el));
  }
  for (const img of document.querySelectorAll("img")) {
    if (!img.hasAttribute("alt")) problems.push("img without alt: " + img.getAttribute("src"));
  }
  const h1s = document.querySelectorAll("h1").length;
  if (h1s !== 1) problems.push(h1s + " h1 elements (one expected)");
  const main = document.querySelector("main, [role=main]");
  if (!main) problems.push("no <main> landmark");
  const skip = document.querySelector("a.skip-link, a[href='#main']");
  if (!skip || !main || skip.getAttribute("href") !== "#" + main.id) problems.push("no skip link to <main>");

  // Contrast (WCAG 2): relative luminance of sRGB colours.
  const parse = (c) => {
    const m = c.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const lum = ({ r, g, b }) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const over = (top, bottom) => ({
    r: top.r * top.a + bottom.r * (1 - top.a),
    g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a), a: 1,
  });
  // The colour behind an element: its own and its ancestors' backgrounds, blended down
  // to the page's (white if none is set).
  const background = (el) => {
    const layers = [];
    for (let node = el; node; node = node.parentElement) {
      const c = parse(getComputedStyle(node).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let colour = { r: 255, g: 255, b: 255, a: 1 };
    for (const layer of layers.reverse()) colour = over(layer, colour);
    return colour;
  };
  const ratio = (a, b) => {
    const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  const seen = new Set();
  const contrasts = [];
  for (const selector of selectors) {
    for (const el of [...document.querySelectorAll(selector)].slice(0, 25)) {
      if (seen.has(el) || !visible(el) || el.disabled || el.closest(":disabled")) continue;
      const hasText = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
      if (!hasText) continue;
      seen.add(el);
      const bg = background(el);
      const fg = over(parse(getComputedStyle(el).color), bg);
      const value = ratio(fg, bg);
      contrasts.push(value);
      if (value < minContrast) {
        problems.push(`contrast ${value.toFixed(2)} < ${minContrast}: ${selector} ${describe(el)} "${el.textContent.trim().slice(0, 30)}"`);
      }
    }
  }
  return { problems, checked: contrasts.length };
}

// No page wider than the screen: the innermost elements that stick out past its right edge
// (`width`), or whose own text runs past their box, unless a box of theirs scrolls them
// (a wide table in .table-scroll, a code sample), and the document's width.
// Used by tests/e2e/test_phone_width.py and `screenshots.py --audit`.
(width) => {
  const scrolls = (el) => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o !== "visible") return true;
    }
    return false;
  };
  const name = (el) => {
    const classes = typeof el.className === "string" ? el.className.trim().split(/\s+/) : [];
    return el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + classes.map((c) => c && "." + c).join("");
  };
  const found = [];
  for (const el of document.querySelectorAll("body *")) {
    const r = el.getBoundingClientRect();
    if (!r.width || scrolls(el)) continue;
    const text = (el.textContent || "").trim().slice(0, 40);
    if (r.right > width + 1) {
      if ([...el.children].some((c) => c.getBoundingClientRect().right > width + 1)) continue;
      found.push([el, `${name(el)} ends at ${Math.round(r.right)} px: ${text}`]);
    } else if (getComputedStyle(el).overflowX === "visible" && r.left + el.scrollWidth > width + 1
               && el.scrollWidth > el.clientWidth + 1) {
      // Its own text runs past its box (a long URL or word that does not wrap).
      found.push([el, `${name(el)}'s content ends at ${Math.round(r.left + el.scrollWidth)} px: ${text}`]);
    }
  }
  // The innermost culprits: an element whose content sticks out because of another one
  // is left out.
  const out = found.filter(([el]) => !found.some(([other]) => other !== el && el.contains(other)))
    .map(([, what]) => what.replace(/\s+/g, " "));
  return { width: document.documentElement.scrollWidth, culprits: out.slice(0, 5) };
}

// A Raman spectrum's identification, drawn (docs/raman.md): the overlay of
// the measured spectrum and the candidates' reference spectra, the minerals
// (RRUFF ids, confidence) and the elements the sample probably contains.

import { fmt, h, meter } from "./dom.js";
import { BY_SYMBOL } from "./elements.js";
import { phaseColor } from "./overlay.js";
import { ramanOverlayView } from "./ramanplot.js";

// Elements listed: at least MIN_LISTED, then every one down to LISTED_FROM.
const MIN_LISTED = 5;
const LISTED_FROM = 0.1;
const LIKELY = 0.5;

const th = (text, attrs = {}) => h("th", { scope: "col", ...attrs }, text);

/** A RRUFF reference's sample id ("R050127"), from its source id (the file's name). */
export function rruffId(candidate) {
  if (candidate.source !== "rruff") return null;
  const match = /(?:^|__)(R\d{6})(?:__|$)/.exec(candidate.source_id);
  return match ? match[1] : null;
}

/** The verdict in words. */
export function ramanHeadline(result) {
  const best = result.candidates[0];
  if (result.verdict === "match" && best) return best.name;
  return `no mineral of the Raman library (${result.library.size} spectra) fits credibly; the nearest are listed, with the elements the sample probably contains`;
}

/** Where a reference comes from: a RRUFF sample id (the file's name on hover), else source: id. */
export function referenceCell(candidate) {
  const id = rruffId(candidate);
  if (!id) return `${candidate.source}: ${candidate.source_id}`;
  return h("span", { title: `The RRUFF sample ${id}: library spectrum ${candidate.source_id}` }, id);
}

function mineralsTable(result) {
  const drawn = new Set((result.profiles?.references || []).map((r) => r.reference_id));
  const rows = result.candidates.map((c, i) => {
    const swatch = drawn.has(c.reference_id) ? h("span", { class: "swatch", "aria-hidden": "true" }) : null;
    if (swatch) swatch.style.background = phaseColor(i);
    return h(
      "tr",
      {},
      h("td", { class: "num" }, String(c.rank)),
      h(
        "th",
        { scope: "row" },
        swatch,
        c.name,
        c.formula && c.formula !== c.name ? h("span", { class: "formula" }, ` ${c.formula}`) : null,
      ),
      h("td", {}, referenceCell(c)),
      h(
        "td",
        {},
        c.confidence === null
          ? h("span", { title: "The server's Raman ranking settings give no confidences for its model" }, "—")
          : meter(c.confidence, "confidence"),
      ),
      h("td", { class: "num" }, fmt(c.score, 3)),
      h("td", { class: "num" }, fmt(c.profile_correlation, 3)),
    );
  });
  return h(
    "table",
    { class: "data minerals-table" },
    h("caption", { class: "visually-hidden" }, "Minerals, best first"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        th("#", { class: "num" }),
        th("Mineral"),
        th("RRUFF id", { title: "The library spectrum that fits best (its sample at rruff.info)" }),
        th("Confidence"),
        th("Score", { class: "num", title: "Similarity of the embeddings + weighted profile correlation" }),
        th("Profile r", { class: "num", title: "Best correlation of the spectra over shifts of ±10 cm⁻¹" }),
      ),
    ),
    h("tbody", {}, rows),
  );
}

function elementsList(result) {
  const elements = result.elements || [];
  const listed = elements.filter((e, i) => i < MIN_LISTED || e.probability >= LISTED_FROM);
  const rest = elements.length - listed.length;
  const rows = listed.map((e) => {
    const name = BY_SYMBOL.get(e.symbol.toLowerCase())?.name || e.symbol;
    return h(
      "tr",
      { class: e.probability >= LIKELY ? "likely" : null },
      h("th", { scope: "row" }, h("span", { class: "symbol" }, e.symbol), ` ${name}`),
      h("td", {}, meter(e.probability, `${name}:`)),
    );
  });
  return [
    h(
      "table",
      { class: "data elements-table" },
      h("caption", { class: "visually-hidden" }, "Probability that the sample contains each element"),
      h("thead", {}, h("tr", {}, th("Element"), th("Probability"))),
      h("tbody", {}, rows),
    ),
    h(
      "p",
      { class: "hint" },
      `In bold: more likely than not. ${rest ? `${rest} other elements below ${100 * LISTED_FROM} %. ` : ""}` +
        "From the chemistry of the nearest library minerals and the model's own estimate; most useful when no mineral matches.",
    ),
  ];
}

/** The sections of a Raman result, below its header. */
export function ramanSections(result) {
  return [
    h(
      "section",
      { class: "overlay-section", "aria-labelledby": "overlay-title" },
      h("h3", { id: "overlay-title", class: "visually-hidden" }, "Overlay"),
      result.profiles
        ? ramanOverlayView(result.profiles, result.candidates)
        : h("p", { class: "hint" }, "No overlay: identify the file again to draw it."),
    ),
    h(
      "div",
      { class: "raman-tables" },
      h(
        "section",
        { class: "minerals", "aria-labelledby": "minerals-title" },
        h("h3", { id: "minerals-title" }, "Minerals, best first"),
        mineralsTable(result),
      ),
      h(
        "section",
        { class: "elements", "aria-labelledby": "elements-title" },
        h("h3", { id: "elements-title" }, "Elements"),
        elementsList(result),
      ),
    ),
  ];
}

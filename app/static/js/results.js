// One file's identification, drawn: the verdict, the phases (weight-percent
// bar and table), the overlay, the fit and the materials table; for a Raman
// spectrum, its own sections (raman.js).

import { sentence } from "./api.js";
import { download, fmt, h, meter, stem } from "./dom.js";
import { toCsv, toJson } from "./export.js";
import { overlayView, phaseColor } from "./overlay.js";
import { ramanHeadline, ramanSections } from "./raman.js";

const VERDICTS = {
  match: "Match",
  mixture: "Mixture",
  no_match: "No match",
};

const ORIGINS = { request: "as requested", file: "from the file", default: "assumed (the file states none)" };

const percent = (value, digits = 1) =>
  value === null || value === undefined ? "—" : `${(100 * value).toFixed(digits)} %`;
const th = (text, attrs = {}) => h("th", { scope: "col", ...attrs }, text);

/** The verdict in words: "Mixture: 3 phases — Anatase, NiO, …". */
function headline(result) {
  if (result.technique === "raman") return ramanHeadline(result);
  const names = (
    result.phases.length ? result.phases.map((p) => p.reference.name) : result.materials.map((m) => m.name)
  ).slice(0, 4);
  if (result.verdict === "match") return names[0] || "";
  if (result.verdict === "mixture") {
    const count = result.phases.length || names.length;
    return `${count} phases: ${names.join(", ")}${count > names.length ? ", …" : ""}`;
  }
  return `nothing in the library of ${result.library.size} references fits credibly`;
}

function meta(result) {
  const q = result.query;
  if (result.technique === "raman") return ramanMeta(result);
  const [c0, c1] = q.covered_two_theta_deg;
  return [
    `${q.wavelength.label}, ${ORIGINS[q.wavelength.origin] || q.wavelength.origin}`,
    `compared over 2θ ${c0.toFixed(1)}–${c1.toFixed(1)}° (Cu Kα1)`,
    `${q.points} points`,
    `background: ${q.baseline}`,
    `${result.library.size} references`,
    `${(result.timings_ms.total_ms / 1000).toFixed(2)} s`,
  ].join(" · ");
}

/** A Raman spectrum's line (docs/raman.md): the compared range, laser and background. */
function ramanMeta(result) {
  const q = result.query;
  const [c0, c1] = q.covered_shift_cm1;
  return [
    `Raman spectrum compared over ${c0.toFixed(0)}–${c1.toFixed(0)} cm⁻¹`,
    q.laser_wavelength_nm ? `${q.laser_wavelength_nm} nm laser` : "laser not stated",
    `${q.points} points`,
    `background: ${q.baseline}`,
    q.spikes_removed ? `${q.spikes_removed} cosmic-ray spike${q.spikes_removed === 1 ? "" : "s"} removed` : null,
    `${result.library.size} Raman references`,
    `${(result.timings_ms.total_ms / 1000).toFixed(2)} s`,
  ]
    .filter(Boolean)
    .join(" · ");
}

// ---------------------------------------------------------------------- phases

function phaseBar(result) {
  const phases = result.phases;
  const byWeight = phases.every((p) => p.weight_percent !== null);
  const parts = phases.map((p, i) => ({
    name: p.reference.name,
    value: byWeight ? p.weight_percent : 100 * p.explained,
    color: phaseColor(i),
  }));
  const total = parts.reduce((sum, p) => sum + p.value, 0);
  let rest = null;
  if (byWeight && result.amorphous_percent !== null)
    rest = { name: "Amorphous or unidentified", value: result.amorphous_percent };
  else if (!byWeight && total < 99.5) rest = { name: "Unexplained", value: 100 - total };
  const scale = Math.max(total + (rest ? rest.value : 0), 1e-9);
  const segments = [...parts, ...(rest ? [{ ...rest, rest: true }] : [])];
  const label = segments.map((s) => `${s.name} ${s.value.toFixed(1)} %`).join(", ");
  const bar = h("div", {
    class: "phase-bar",
    role: "img",
    "aria-label": `${byWeight ? "Weight percents" : "Shares of the scan's intensity"}: ${label}`,
  });
  for (const s of segments) {
    const share = (100 * s.value) / scale;
    const segment = h(
      "div",
      { class: `segment${s.rest ? " segment-rest" : ""}`, title: `${s.name}: ${s.value.toFixed(1)} %` },
      share > 9 ? h("span", {}, `${s.name} ${s.value.toFixed(s.value < 10 ? 1 : 0)} %`) : null,
    );
    segment.style.width = `${share}%`;
    if (s.color) segment.style.background = s.color;
    bar.append(segment);
  }
  const title = byWeight
    ? result.amorphous_percent !== null
      ? "Weight percents (absolute, from the internal standard)"
      : "Weight percents of the crystalline phases found"
    : "Share of the scan's intensity each phase explains (no weight percents: see the notes)";
  return h("figure", { class: "phase-bar-figure" }, h("figcaption", {}, title), bar);
}

/** The materials the scan cannot tell from a phase: "or Magnetite Fe3O4 (misfit ×0.88)". */
function lookalikes(phase) {
  if (!phase.lookalikes.length) return null;
  const names = phase.lookalikes.map((a) => {
    const r = a.reference;
    const formula = r.formula && r.formula !== r.name ? ` ${r.formula}` : "";
    return `${r.name}${formula} (misfit ×${a.misfit_ratio.toFixed(2)})`;
  });
  return h(
    "div",
    {
      class: "lookalikes",
      title:
        "Look-alikes the scan cannot tell from this phase: each, refined in its place beside the other " +
        "phases as fitted, passes the same evidence, its misfit relative to the phase's in brackets. " +
        "The sample's chemistry decides (element filters).",
    },
    `or ${names.join(", ")}`,
  );
}

function phaseTable(result) {
  const notes = [];
  const noteMark = (note) => {
    if (!note) return null;
    let index = notes.indexOf(note);
    if (index < 0) index = notes.push(note) - 1;
    return h(
      "sup",
      {},
      h(
        "a",
        { href: `#note-${index + 1}`, class: "note-ref", "aria-label": `note ${index + 1}` },
        String(index + 1),
      ),
    );
  };
  const rows = result.phases.map((p, i) => {
    const r = p.reference;
    const swatch = h("span", { class: "swatch", "aria-hidden": "true" });
    swatch.style.background = phaseColor(i);
    const cell = p.cell
      ? `a ${p.cell.a.toFixed(4)}, b ${p.cell.b.toFixed(4)}, c ${p.cell.c.toFixed(4)} Å`
      : "";
    return h(
      "tr",
      {},
      h(
        "th",
        { scope: "row" },
        swatch,
        r.name,
        r.formula && r.formula !== r.name ? h("span", { class: "formula" }, ` ${r.formula}`) : null,
        lookalikes(p),
      ),
      h("td", {}, r.space_group || "—"),
      h("td", { class: "num" }, fmt(p.weight_percent, 1), noteMark(p.weight_percent_note)),
      h("td", { class: "num" }, p.weight_percent_sd === null ? "—" : `± ${fmt(p.weight_percent_sd, 1)}`),
      h("td", { class: "num" }, percent(p.explained)),
      h("td", { class: "num" }, percent(p.confidence, 0)),
      h("td", { class: "num", title: cell }, `${p.shift_deg >= 0 ? "+" : ""}${p.shift_deg.toFixed(3)}°`),
      h("td", { class: "num" }, `${fmt(100 * p.strain, 2)} %`),
      h("td", {}, `${r.source}: ${r.source_id}`),
    );
  });
  const table = h(
    "table",
    { class: "data phases-table" },
    h("caption", { class: "visually-hidden" }, "Phases found"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        th("Phase"),
        th("Space group"),
        th("Weight %", { class: "num" }),
        th("± sd", { class: "num" }),
        th("Of the scan", { class: "num", title: "Share of the scan's intensity this phase explains" }),
        th("Confidence", { class: "num" }),
        th("2θ shift", { class: "num" }),
        th("Strain", { class: "num" }),
        th("Reference"),
      ),
    ),
    h("tbody", {}, rows),
  );
  const noteList = notes.length
    ? h(
        "ol",
        { class: "footnotes" },
        notes.map((n, i) => h("li", { id: `note-${i + 1}` }, sentence(n))),
      )
    : null;
  return [table, noteList];
}

function fitLine(result) {
  const fit = result.fit;
  if (!fit) return null;
  const at = (p) => `${p.two_theta_deg.toFixed(2)}° (d ${p.d_angstrom.toFixed(3)} Å)`;
  // A residual on a phase's own fitted peak is that peak's misfit, not a phase missing.
  const peaks = fit.unexplained_peaks.filter((p) => !p.on_phase).slice(0, 6).map(at);
  const misfits = fit.unexplained_peaks
    .filter((p) => p.on_phase)
    .slice(0, 4)
    .map((p) => `${at(p)} on ${p.on_phase}`);
  return h(
    "p",
    { class: "fit" },
    h(
      "span",
      { title: "Weighted profile R factor over the covered range (unit weights)" },
      `Rwp ${percent(fit.rwp)}`,
    ),
    ` · unexplained intensity ${percent(fit.unexplained)}`,
    peaks.length
      ? ` · strongest unexplained peaks at 2θ ${peaks.join(", ")}`
      : " · no unexplained peak above the noise",
    misfits.length ? ` · fitted peaks' misfit at 2θ ${misfits.join(", ")}` : null,
    result.amorphous_percent !== null
      ? ` · amorphous or unidentified ${fmt(result.amorphous_percent, 1)} %`
      : null,
  );
}

// ---------------------------------------------------------------------- materials

function materialsTable(result) {
  const phaseIds = new Set(result.phases.map((p) => p.reference.reference_id));
  const body = h("tbody", {});
  for (const m of result.materials) {
    const candidate = result.candidates.find((c) => c.reference_id === m.reference_id);
    const inPhases = phaseIds.has(m.reference_id) || m.alternatives.some((a) => phaseIds.has(a.reference_id));
    const extra = m.alternatives.length + (m.family ? m.family.members.length : 0);
    const detailId = `material-${m.rank}-${m.reference_id}`;
    const detailRow = h(
      "tr",
      { class: "detail-row", id: detailId, hidden: true },
      h("td", { colspan: "8" }, materialDetail(m)),
    );
    const expand = h(
      "button",
      {
        type: "button",
        class: "expand",
        "aria-expanded": "false",
        "aria-controls": detailId,
        onclick: (event) => {
          const open = event.currentTarget.getAttribute("aria-expanded") !== "true";
          event.currentTarget.setAttribute("aria-expanded", String(open));
          detailRow.hidden = !open;
        },
      },
      extra
        ? `${m.alternatives.length ? `${m.alternatives.length} alt.` : ""}${m.alternatives.length && m.family ? ", " : ""}${m.family ? "family" : ""}`
        : "details",
    );
    const confidence =
      m.confidence === null
        ? h("span", { title: "The server has no confidence calibration for its model" }, "—")
        : meter(m.confidence, "confidence");
    body.append(
      h(
        "tr",
        { class: inPhases ? "in-phases" : null },
        h("td", { class: "num" }, String(m.rank)),
        h(
          "th",
          { scope: "row" },
          m.name,
          m.formula && m.formula !== m.name ? h("span", { class: "formula" }, ` ${m.formula}`) : null,
          m.family ? h("span", { class: "tag" }, "family") : null,
        ),
        h("td", {}, m.space_group || "—"),
        h("td", {}, confidence),
        h("td", { class: "num" }, fmt(m.score, 3)),
        h("td", { class: "num" }, fmt(candidate?.profile_correlation, 3)),
        h("td", {}, inPhases ? "yes" : ""),
        h("td", {}, expand),
      ),
      detailRow,
    );
  }
  return h(
    "table",
    { class: "data materials-table" },
    h("caption", { class: "visually-hidden" }, "Materials, best first"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        th("#", { class: "num" }),
        th("Material"),
        th("Space group"),
        th("Confidence"),
        th("Score", { class: "num" }),
        th("Profile r", { class: "num", title: "Best profile correlation with the scan" }),
        th("A phase"),
        th("More"),
      ),
    ),
    body,
  );
}

function materialDetail(m) {
  const parts = [];
  if (m.fitted_cell) {
    const c = m.fitted_cell;
    parts.push(
      h(
        "p",
        {},
        h("strong", {}, "Fitted cell: "),
        `a ${c.a} Å, b ${c.b} Å, c ${c.c} Å, α ${c.alpha}°, β ${c.beta}°, γ ${c.gamma}°`,
      ),
    );
  }
  if (m.alternatives.length) {
    parts.push(
      h("p", {}, h("strong", {}, "Other references of this material:")),
      h(
        "ul",
        {},
        m.alternatives.map((a) =>
          h(
            "li",
            {},
            `${a.name} — ${a.source}: ${a.source_id} (id ${a.reference_id}), score ${fmt(a.score, 3)}`,
          ),
        ),
      ),
    );
  }
  if (m.family) {
    parts.push(
      h(
        "p",
        {},
        h("strong", {}, "Look-alike family: "),
        m.family.name,
        " (the scan cannot tell these apart)",
      ),
      h(
        "ul",
        {},
        m.family.members.map((f) =>
          h(
            "li",
            {},
            `${f.name}${f.formula ? ` (${f.formula})` : ""}, ${f.space_group || "space group unknown"} — profile r ${fmt(f.profile_correlation, 3)}${f.fitted_cell ? `, fitted a ${f.fitted_cell.a} Å` : ""}`,
          ),
        ),
      ),
    );
  }
  if (!parts.length)
    parts.push(h("p", {}, "No other reference of this material and no look-alike in the library."));
  return h("div", { class: "material-detail" }, parts);
}

// ---------------------------------------------------------------------- view

/** The sections of an XRD result, below its header. */
function patternSections(item) {
  const result = item.result;
  const noPhases = !result.phases.length;
  return [
    noPhases ? null : phaseBar(result),
    h(
      "section",
      { class: "overlay-section", "aria-labelledby": "overlay-title" },
      h("h3", { id: "overlay-title", class: "visually-hidden" }, "Overlay"),
      result.profiles
        ? overlayView(result.profiles)
        : h(
            "p",
            { class: "hint" },
            "No overlay: it needs the phase analysis. Turn “Phase analysis” on and run the file again.",
          ),
    ),
    h(
      "section",
      { class: "phases", "aria-labelledby": "phases-title" },
      h("h3", { id: "phases-title" }, "Phases"),
      noPhases
        ? h(
            "p",
            {},
            item.options.phases
              ? "No phase was found credibly in the scan."
              : "The phase analysis was off for this file.",
          )
        : phaseTable(result),
      fitLine(result),
    ),
    h(
      "section",
      { class: "materials", "aria-labelledby": "materials-title" },
      h("h3", { id: "materials-title" }, "Materials, best first"),
      materialsTable(result),
    ),
  ];
}

/** The view of a finished item {file, result}; ``onRerun`` identifies it again. */
export function resultView(item, { onRerun }) {
  const result = item.result;
  const name = item.file.name;
  return h(
    "article",
    { class: "result-card", "aria-labelledby": "result-title" },
    h(
      "header",
      { class: "result-head" },
      h(
        "div",
        {},
        h("h2", { id: "result-title", tabindex: "-1" }, name),
        h(
          "p",
          { class: `verdict verdict-${result.verdict}` },
          h("span", { class: "badge" }, VERDICTS[result.verdict] || result.verdict),
          " ",
          headline(result),
        ),
      ),
      h(
        "div",
        { class: "result-actions" },
        h(
          "button",
          {
            type: "button",
            onclick: () =>
              download(`${stem(name)}.xrdid.csv`, toCsv([{ filename: name, result }]), "text/csv"),
          },
          "Download CSV",
        ),
        h(
          "button",
          {
            type: "button",
            onclick: () => download(`${stem(name)}.xrdid.json`, toJson(result), "application/json"),
          },
          "Download JSON",
        ),
        h(
          "button",
          { type: "button", onclick: onRerun, title: "Identify this file again with the options now set" },
          "Run again",
        ),
      ),
    ),
    h("p", { class: "meta" }, meta(result)),
    [...result.query.warnings, ...result.notes].length
      ? h(
          "ul",
          { class: "notes", "aria-label": "Warnings and notes" },
          [...result.query.warnings, ...result.notes].map((n) => h("li", {}, sentence(n))),
        )
      : null,
    result.technique === "raman" ? ramanSections(result) : patternSections(item),
    h("p", { class: "meta" }, `Model ${result.model_version} · library ${result.library.version}`),
  );
}

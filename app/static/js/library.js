// The Library tab: search the XRD or the Raman references by name, elements
// and kind; view one with its pattern or spectrum.

import { call, problemView } from "./api.js";
import { $, h, replace } from "./dom.js";
import { patternView } from "./patternplot.js";
import { wirePicker } from "./picker.js";
import { referenceCell } from "./raman.js";
import { apiKey } from "./settings.js";

const PAGE = 50;
let query = null; // the fields of the last search
let loaded = [];

export function initLibrary() {
  const form = $("#library-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    search(true);
  });
  wirePicker($("#library-elements"), form);
  $("#library-more").addEventListener("click", () => search(false));
}

/** Search afresh (``fresh``) or load the next page of the last search. */
async function search(fresh) {
  const form = $("#library-form");
  const status = $("#library-status");
  if (fresh) {
    query = new URLSearchParams();
    for (const name of ["technique", "name", "elements_all", "elements_none", "elements_only", "kind"]) {
      const value = $(`[name=${name}]`, form).value.trim();
      if (value) query.set(name, value);
    }
    query.set("limit", String(PAGE));
    query.delete("after");
    loaded = [];
  }
  status.textContent = "Searching…";
  try {
    const page = await call(`references?${query}`, { key: apiKey() });
    loaded.push(...page.items);
    if (page.next_after !== null) query.set("after", String(page.next_after));
    $("#library-more").hidden = page.next_after === null;
    renderList(page.total);
    status.textContent = `${page.total} reference${page.total === 1 ? "" : "s"} match; ${loaded.length} shown.`;
  } catch (error) {
    status.textContent = "";
    replace($("#library-results"), problemView(error));
    $("#library-more").hidden = true;
  }
}

function renderList(total) {
  // Raman references have no space group (the column is left out).
  const xrd = query.get("technique") !== "raman";
  const body = h(
    "tbody",
    {},
    loaded.map((r) =>
      h(
        "tr",
        { dataset: { id: r.id } },
        h("td", { class: "num" }, String(r.id)),
        h(
          "th",
          { scope: "row" },
          h("button", { type: "button", class: "link", onclick: () => showReference(r.id, true) }, r.name),
        ),
        h("td", {}, r.formula || "—"),
        xrd ? h("td", {}, r.space_group || "—") : null,
        h("td", { class: "wrap" }, referenceCell(r)),
        h(
          "td",
          {},
          h(
            "span",
            { class: `kind kind-${r.kind}`, title: kindText(r) },
            r.kind === "calculated" ? "calc." : "meas.",
          ),
        ),
      ),
    ),
  );
  replace(
    $("#library-results"),
    total
      ? h(
          "table",
          { class: "data library-table" },
          h("caption", { class: "visually-hidden" }, "References found"),
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Id", "Name", "Formula", xrd ? "Space group" : null, "Source", "Kind"]
                .filter(Boolean)
                .map((t) => h("th", { scope: "col" }, t)),
            ),
          ),
          body,
        )
      : h(
          "p",
          {},
          "No reference matches. Loosen the filters (references of unknown composition never match an element filter).",
        ),
  );
}

const kindText = (r) =>
  r.kind === "calculated"
    ? "calculated from a structure"
    : r.technique === "raman"
      ? "measured spectrum"
      : "measured pattern";

/** Show a reference and its pattern (or spectrum) in the detail pane. */
export async function showReference(id, focus) {
  const pane = $("#reference-detail");
  replace(pane, h("p", { role: "status" }, "Loading…"));
  try {
    const r = await call(`references/${id}`, { key: apiKey() });
    const row = (label, value) =>
      value === null || value === undefined || value === ""
        ? null
        : [h("dt", {}, label), h("dd", {}, String(value))];
    replace(
      pane,
      h(
        "article",
        { class: "reference" },
        h(
          "h2",
          { id: "reference-title", tabindex: "-1" },
          r.name,
          r.formula && r.formula !== r.name ? h("span", { class: "formula" }, ` ${r.formula}`) : null,
        ),
        h(
          "dl",
          { class: "facts" },
          row("Id", r.id),
          row("Kind", kindText(r)),
          row("Elements", r.elements.join(", ") || "unknown"),
          row(
            "Space group",
            r.space_group
              ? `${r.space_group}${r.space_group_number ? ` (No. ${r.space_group_number})` : ""}`
              : null,
          ),
          row("Crystal system", r.crystal_system),
          row("Source", `${r.source}: ${r.source_id}`),
          row("Notes", r.notes),
          row("Added", new Date(r.created_at).toLocaleString()),
        ),
        r.pattern ? patternView(r.pattern) : h("p", {}, "This reference has no stored pattern."),
      ),
    );
    if (focus) $("#reference-title").focus();
  } catch (error) {
    replace(pane, problemView(error));
  }
}

/** Search the library of ``technique`` by name (used after adding a reference). */
export function searchByName(name, technique) {
  const form = $("#library-form");
  $("[name=technique]", form).value = technique;
  for (const field of ["elements_all", "elements_none", "elements_only", "kind"])
    $(`[name=${field}]`, form).value = "";
  $("[name=name]", form).value = name;
  return search(true);
}

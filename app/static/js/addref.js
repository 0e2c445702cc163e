// The Add reference tab: a structure or a measured pattern, with the write key.

import { ApiError, call, problemView, sentence } from "./api.js";
import { $, h, replace } from "./dom.js";
import { searchByName, showReference } from "./library.js";

export function initAddReference(openTab) {
  const form = $("#add-form");
  const outcome = $("#add-outcome");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = $("[name=file]", form).files[0];
    if (!file) {
      replace(
        outcome,
        problemView(
          new ApiError(
            0,
            "Choose a file to add",
            "a structure (CIF, BGMN .str) or a measured pattern of a known material",
          ),
        ),
      );
      return;
    }
    const body = new FormData();
    body.append("file", file, file.name);
    for (const name of ["name", "formula", "source", "source_id", "kind", "wavelength", "notes"]) {
      const value = $(`[name=${name}]`, form).value.trim();
      if (value) body.append(name, value);
    }
    const key = $("[name=write_key]", form).value.trim();
    const submit = $("button[type=submit]", form);
    submit.disabled = true;
    replace(
      outcome,
      h(
        "p",
        { role: "status" },
        `Adding ${file.name}… (a structure is simulated first; this takes a few seconds)`,
      ),
    );
    try {
      const created = await call("references", { method: "POST", body, key });
      window.dispatchEvent(new Event("xrdid:library-changed"));
      replace(
        outcome,
        h(
          "div",
          { class: "success", role: "status" },
          h(
            "p",
            {},
            h("strong", {}, `Added “${created.name}”`),
            ` as reference ${created.id} (${created.kind}${created.space_group ? `, ${created.space_group}` : ""}). The next identification searches it.`,
          ),
          created.warnings.length
            ? h(
                "ul",
                {},
                created.warnings.map((w) => h("li", {}, sentence(w))),
              )
            : null,
          h(
            "button",
            { type: "button", onclick: () => viewInLibrary(openTab, created) },
            "View it in the library",
          ),
        ),
      );
    } catch (error) {
      const existing = error.problem?.existing_id;
      replace(
        outcome,
        problemView(error),
        existing
          ? h(
              "button",
              { type: "button", onclick: () => viewInLibrary(openTab, { id: existing, name: "" }) },
              `View the existing reference (id ${existing})`,
            )
          : null,
      );
    } finally {
      submit.disabled = false;
    }
  });
}

function viewInLibrary(openTab, reference) {
  openTab("library");
  if (reference.name) searchByName(reference.name, reference.technique);
  showReference(reference.id, true);
}

// The Identify tab: files dropped or chosen are identified one after the
// other with the options set; each shows its status, and a finished one its
// result.

import { call, problemText, problemView } from "./api.js";
import { $, download, h, replace } from "./dom.js";
import { toCsv } from "./export.js";
import { wirePicker } from "./picker.js";
import { resultView } from "./results.js";
import { apiKey } from "./settings.js";

const STATUS = { waiting: "Waiting", running: "Identifying…", done: "Done", error: "Failed" };

const items = [];
let nextId = 1;
let running = false;
let shown = null; // the item whose result is shown
let chosenByUser = false; // once a person picks a file, new results do not replace it

export function initIdentify() {
  const form = $("#identify-form");
  const input = $("#files");
  const zone = $("#dropzone");
  input.addEventListener("change", () => {
    addFiles(input.files);
    input.value = "";
  });
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  }
  for (const type of ["dragleave", "drop"])
    zone.addEventListener(type, () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    addFiles(event.dataTransfer.files);
  });
  // A file dropped beside the zone must not replace the page.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());

  const radiation = $("[name=radiation]", form);
  const custom = $("#wavelength-custom");
  radiation.addEventListener("change", () => {
    custom.hidden = radiation.value !== "custom";
    if (!custom.hidden) $("input", custom).focus();
  });
  const phases = $("[name=phases]", form);
  const standard = $("#standard");
  const syncStandard = () => {
    for (const field of standard.querySelectorAll("input")) field.disabled = !phases.checked;
  };
  phases.addEventListener("change", syncStandard);
  syncStandard();
  // XRD options do not apply to a Raman spectrum, nor the laser to an XRD pattern.
  const technique = $("[name=technique]", form);
  const syncTechnique = () => {
    $("#xrd-options").disabled = technique.value === "raman";
    $("#laser-field").hidden = technique.value === "xrd";
    $("#laser-help").hidden = technique.value === "xrd";
  };
  technique.addEventListener("change", syncTechnique);
  syncTechnique();
  wirePicker($("#identify-elements"), form);
  $("#download-all").addEventListener("click", () => {
    const done = items
      .filter((i) => i.status === "done")
      .map((i) => ({ filename: i.file.name, result: i.result }));
    download("xrdid-results.csv", toCsv(done), "text/csv");
  });
  $("#clear-files").addEventListener("click", () => {
    for (let i = items.length - 1; i >= 0; i--) if (items[i].status !== "running") items.splice(i, 1);
    if (shown && !items.includes(shown)) showIntro();
    renderQueue();
  });
  renderQueue();
}

/** The form's options as /identify fields (snapshotted per file); only those
 * of the technique chosen (the server refuses the other's). */
function readOptions() {
  const form = $("#identify-form");
  const value = (name) => $(`[name=${name}]`, form).value.trim();
  const technique = value("technique");
  const common = {
    technique,
    top_k: value("top_k"),
    baseline: value("baseline"),
    elements_all: value("elements_all"),
    elements_none: value("elements_none"),
    elements_only: value("elements_only"),
    laser_wavelength_nm: technique === "xrd" ? "" : value("laser_wavelength_nm"),
  };
  if (technique === "raman") return common;
  const radiation = value("radiation");
  const standardName = value("standard_name");
  const standardPercent = value("standard_percent");
  const phases = $("[name=phases]", form).checked;
  return {
    ...common,
    wavelength: radiation === "custom" ? value("wavelength") : radiation,
    phases,
    internal_standard:
      phases && (standardName || standardPercent) ? `${standardName}:${standardPercent}` : "",
  };
}

function addFiles(fileList) {
  const options = readOptions();
  for (const file of fileList)
    items.push({ id: nextId++, file, options, status: "waiting", result: null, error: null });
  renderQueue();
  announce(`${fileList.length} file${fileList.length === 1 ? "" : "s"} added.`);
  process();
}

async function process() {
  if (running) return;
  running = true;
  try {
    for (let item = nextWaiting(); item; item = nextWaiting()) await identify(item);
  } finally {
    running = false;
  }
}

const nextWaiting = () => items.find((i) => i.status === "waiting");

async function identify(item) {
  item.status = "running";
  renderQueue();
  const body = new FormData();
  body.append("file", item.file, item.file.name);
  for (const [key, value] of Object.entries(item.options)) {
    if (value === "" || value === null || value === undefined) continue;
    body.append(key, String(value));
  }
  // The overlay's arrays (an XRD pattern has them only with the phase analysis).
  body.append("include", "profiles");
  try {
    item.result = await call("identify", { method: "POST", body, key: apiKey() });
    item.status = "done";
    item.error = null;
  } catch (error) {
    item.status = "error";
    item.error = error;
  }
  renderQueue();
  announce(`${item.file.name}: ${item.status === "done" ? summary(item) : problemText(item.error)}`);
  // Follow the batch (the newest result, an error only when nothing is shown)
  // until a person picks a file.
  if (shown === item || (!chosenByUser && (item.status === "done" || !shown))) show(item, false);
}

function summary(item) {
  const r = item.result;
  if (r.technique === "raman")
    return `Raman · ${r.verdict === "match" ? `match: ${r.candidates[0].name}` : "no match"}`;
  if (r.verdict === "no_match") return "no match";
  const names = r.phases.length
    ? r.phases.map((p) => p.reference.name)
    : r.materials.slice(0, 1).map((m) => m.name);
  return `${r.verdict === "match" ? "match" : "mixture"}: ${names.join(", ")}`;
}

function renderQueue() {
  const list = $("#queue");
  replace(
    list,
    items.map((item) =>
      h(
        "li",
        {
          class: `queue-item status-${item.status}${item.result ? ` verdict-${item.result.verdict}` : ""}${item === shown ? " shown" : ""}`,
          dataset: { status: item.status },
        },
        h(
          "button",
          {
            type: "button",
            class: "queue-file",
            "aria-current": item === shown ? "true" : null,
            disabled: item.status === "waiting" || item.status === "running",
            onclick: () => {
              chosenByUser = true;
              show(item, true);
            },
          },
          item.file.name,
        ),
        h(
          "span",
          { class: "queue-status" },
          item.status === "done"
            ? summary(item)
            : item.status === "error"
              ? problemText(item.error)
              : STATUS[item.status],
        ),
      ),
    ),
  );
  const done = items.filter((i) => i.status === "done").length;
  $("#download-all").disabled = done === 0;
  $("#clear-files").disabled = items.length === 0;
  $("#queue-empty").hidden = items.length > 0;
}

function show(item, focus) {
  shown = item;
  const panel = $("#result");
  if (item.status === "done") {
    replace(panel, resultView(item, { onRerun: () => rerun(item) }));
  } else if (item.status === "error") {
    replace(
      panel,
      h(
        "article",
        { class: "result-card" },
        h("h2", { id: "result-title", tabindex: "-1" }, item.file.name),
        problemView(item.error),
      ),
    );
  }
  renderQueue();
  if (focus) $("#result-title")?.focus();
}

function rerun(item) {
  item.options = readOptions();
  item.status = "waiting";
  item.result = null;
  renderQueue();
  process();
}

function showIntro() {
  shown = null;
  chosenByUser = false;
  replace($("#result"), $("#intro-template").content.cloneNode(true));
}

function announce(text) {
  $("#identify-status").textContent = text;
}

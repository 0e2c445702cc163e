// A periodic-table picker for the three element filters of a form: must
// contain (all), must not contain (none), only these (only). One modal
// <dialog>, shared by every form that has filters.

import { $, h } from "./dom.js";
import { ELEMENTS, parseSymbols } from "./elements.js";

const MODES = [
  { key: "all", label: "Must contain", mark: "+" },
  { key: "none", label: "Must not contain", mark: "−" },
  { key: "only", label: "Only these", mark: "○" },
];
const MODE_LABEL = Object.fromEntries(MODES.map((m) => [m.key, m.label.toLowerCase()]));

let picker = null;

/** Open the picker on a form's three inputs {all, none, only}. */
export function pickElements(fields) {
  picker ??= new Picker();
  picker.open(fields);
}

class Picker {
  constructor() {
    this.sets = { all: new Set(), none: new Set(), only: new Set() };
    this.mode = "all";
    this.buttons = new Map();
    this.summary = h("div", { class: "picker-summary", "aria-live": "polite" });
    const modeInputs = MODES.map((m) =>
      h(
        "label",
        { class: `mode mode-${m.key}` },
        h("input", {
          type: "radio",
          name: "picker-mode",
          value: m.key,
          checked: m.key === this.mode,
          onchange: () => this.setMode(m.key),
        }),
        h("span", { class: "mark", "aria-hidden": "true" }, m.mark),
        ` ${m.label}`,
      ),
    );
    this.table = h("div", { class: "ptable", role: "group", "aria-label": "Periodic table" });
    for (const element of ELEMENTS) {
      const button = h(
        "button",
        {
          type: "button",
          class: "el",
          tabindex: "-1",
          dataset: { symbol: element.symbol },
          onclick: () => this.toggle(element.symbol),
          onkeydown: (event) => this.onKey(event, element),
        },
        h("span", { class: "z", "aria-hidden": "true" }, String(element.z)),
        h("span", { class: "sym" }, element.symbol),
        h("span", { class: "state", "aria-hidden": "true" }),
      );
      button.style.gridRow = String(element.row);
      button.style.gridColumn = String(element.column);
      this.buttons.set(element.symbol, button);
      this.table.append(button);
    }
    for (const [row, text] of [
      [6, "57–71"],
      [7, "89–103"],
    ]) {
      const slot = h("span", { class: "el-slot", "aria-hidden": "true" }, text);
      slot.style.gridRow = String(row);
      slot.style.gridColumn = "3";
      this.table.append(slot);
    }
    this.dialog = h(
      "dialog",
      { class: "picker", "aria-labelledby": "picker-title", "aria-describedby": "picker-help" },
      h("h2", { id: "picker-title" }, "Element filters"),
      h(
        "p",
        { id: "picker-help", class: "hint" },
        "Choose what a click does, then click elements. Arrow keys move between elements; " +
          "Enter or Space toggles one. References of unknown composition never match a filter.",
      ),
      h("fieldset", { class: "modes" }, h("legend", {}, "A click sets"), modeInputs),
      this.table,
      this.summary,
      h(
        "div",
        { class: "dialog-buttons" },
        h("button", { type: "button", onclick: () => this.clear() }, "Clear all"),
        h("span", { class: "spacer" }),
        h("button", { type: "button", onclick: () => this.dialog.close() }, "Cancel"),
        h("button", { type: "button", class: "primary", onclick: () => this.apply() }, "Apply"),
      ),
    );
    document.body.append(this.dialog);
    this.focusSymbol = "H";
  }

  open(fields) {
    this.fields = fields;
    for (const key of Object.keys(this.sets)) {
      this.sets[key] = new Set(parseSymbols(fields[key].value).filter((s) => this.buttons.has(s)));
    }
    this.render();
    this.dialog.showModal();
    const first = [...this.sets[this.mode]][0] || this.focusSymbol;
    this.focus(first);
  }

  setMode(mode) {
    this.mode = mode;
    this.render();
  }

  toggle(symbol) {
    const set = this.sets[this.mode];
    if (set.has(symbol)) {
      set.delete(symbol);
    } else {
      set.add(symbol);
      // A symbol cannot be both required (or allowed) and excluded.
      if (this.mode === "none") {
        this.sets.all.delete(symbol);
        this.sets.only.delete(symbol);
      } else {
        this.sets.none.delete(symbol);
      }
    }
    this.render();
  }

  clear() {
    for (const set of Object.values(this.sets)) set.clear();
    this.render();
  }

  apply() {
    for (const [key, set] of Object.entries(this.sets)) {
      const input = this.fields[key];
      input.value = [...set].join(", ");
      input.dispatchEvent(new Event("change", { bubbles: true }));
    }
    this.dialog.close();
  }

  render() {
    for (const [symbol, button] of this.buttons) {
      const states = MODES.filter((m) => this.sets[m.key].has(symbol));
      for (const m of MODES) button.classList.toggle(`in-${m.key}`, this.sets[m.key].has(symbol));
      button.querySelector(".state").textContent = states.map((m) => m.mark).join("");
      button.setAttribute("aria-pressed", String(this.sets[this.mode].has(symbol)));
      const element = ELEMENTS.find((e) => e.symbol === symbol);
      const said = states.map((m) => MODE_LABEL[m.key]).join(", ");
      button.setAttribute("aria-label", `${element.name} (${symbol})${said ? `: ${said}` : ""}`);
    }
    this.summary.replaceChildren(
      ...MODES.map((m) =>
        h(
          "p",
          {},
          h("span", { class: `mark mode-${m.key}`, "aria-hidden": "true" }, m.mark),
          ` ${m.label}: `,
          h("strong", {}, [...this.sets[m.key]].join(", ") || "any"),
        ),
      ),
    );
  }

  focus(symbol) {
    const previous = this.buttons.get(this.focusSymbol);
    if (previous) previous.tabIndex = -1;
    this.focusSymbol = symbol;
    const button = this.buttons.get(symbol);
    button.tabIndex = 0;
    button.focus();
  }

  onKey(event, from) {
    const target = neighbour(from, event.key);
    if (!target) return;
    event.preventDefault();
    this.focus(target.symbol);
  }
}

/** The element an arrow (or Home/End) key moves to from ``from``. */
function neighbour(from, key) {
  const { row, column } = from;
  let best = null;
  let bestScore = Infinity;
  for (const e of ELEMENTS) {
    let score = Infinity;
    if (key === "ArrowRight" && e.row === row && e.column > column) score = e.column - column;
    if (key === "ArrowLeft" && e.row === row && e.column < column) score = column - e.column;
    if (key === "ArrowDown" && e.row > row) score = (e.row - row) * 100 + Math.abs(e.column - column);
    if (key === "ArrowUp" && e.row < row) score = (row - e.row) * 100 + Math.abs(e.column - column);
    if (key === "Home" && e.row === row) score = e.column;
    if (key === "End" && e.row === row) score = 100 - e.column;
    if (score < bestScore) {
      best = e;
      bestScore = score;
    }
  }
  return best;
}

/** Wire a "Periodic table…" button to a form's three inputs. */
export function wirePicker(button, form) {
  const fields = {
    all: $("[name=elements_all]", form),
    none: $("[name=elements_none]", form),
    only: $("[name=elements_only]", form),
  };
  button.addEventListener("click", () => pickElements(fields));
}

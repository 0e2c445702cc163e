// The page: three tabs (Identify, Library, Add reference) and the server's
// status in the header.

import { initAddReference } from "./addref.js";
import { call, problemText } from "./api.js";
import { $, $$ } from "./dom.js";
import { initIdentify } from "./identify.js";
import { initLibrary } from "./library.js";
import { apiKey } from "./settings.js";

/** Show a tab ("identify", "library", "add"), optionally focusing it. */
function openTab(name, focus = false) {
  for (const tab of $$("[role=tab]")) {
    const selected = tab.dataset.tab === name;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    $(`#${tab.getAttribute("aria-controls")}`).hidden = !selected;
    if (selected && focus) tab.focus();
  }
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
}

function initTabs() {
  const tabs = $$("[role=tab]");
  tabs.forEach((tab, index) => {
    tab.addEventListener("click", () => openTab(tab.dataset.tab));
    tab.addEventListener("keydown", (event) => {
      const moves = { ArrowRight: 1, ArrowLeft: -1, Home: -index, End: tabs.length - 1 - index };
      if (!(event.key in moves)) return;
      event.preventDefault();
      const next = tabs[(index + moves[event.key] + tabs.length) % tabs.length];
      openTab(next.dataset.tab, true);
    });
  });
  const fromHash = location.hash.slice(1);
  openTab(tabs.some((t) => t.dataset.tab === fromHash) ? fromHash : "identify");
}

const RAMAN = { loading: "Raman loading…", disabled: "no Raman model", failed: "Raman failed to load" };

/** The Raman half of the status line. */
function ramanStatus(ready) {
  if (ready.raman_status === "ready") return `${ready.raman_library_size} Raman spectra`;
  if (ready.raman_status === "loading") setTimeout(pollReady, 3000);
  return RAMAN[ready.raman_status] || `Raman ${ready.raman_status}`;
}

/** The header's status line: library sizes and model, or why not ready. */
async function pollReady() {
  const status = $("#server-status");
  try {
    const ready = await call("ready", { key: apiKey() });
    status.textContent = `Ready · ${ready.library_size} references · ${ramanStatus(ready)} · model ${ready.model_version.slice(0, 8)} · ${ready.device}`;
    status.className = "server-status ok";
  } catch (error) {
    status.textContent = problemText(error);
    status.className = "server-status bad";
    setTimeout(pollReady, error.status === 503 ? 3000 : 15000);
  }
}

initTabs();
initIdentify();
initLibrary();
initAddReference(openTab);
pollReady();
window.addEventListener("xrdid:library-changed", pollReady);

// The optional API key for reads (only servers with XRDID_REQUIRE_READ_KEY
// ask for one). Kept in this tab's memory only, never stored.

import { $ } from "./dom.js";

export const apiKey = () => $("#read-key")?.value.trim() || "";

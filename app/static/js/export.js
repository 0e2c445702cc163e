// A result as CSV (one row per phase, then one per material; a Raman
// spectrum's minerals are its materials) or JSON.

const COLUMNS = [
  "file",
  "sample_id",
  "verdict",
  "row",
  "rank",
  "name",
  "formula",
  "space_group",
  "weight_percent",
  "weight_percent_sd",
  "explained",
  "confidence",
  "score",
  "reference_id",
  "source",
  "source_id",
  "alternatives",
  "family",
  "note",
  "technique",
  "elements",
];

// The elements a row lists: those the sample more likely holds than not (as the server's CSV).
const LIKELY_ELEMENT = 0.5;

/** RFC 4180 cell; text that a spreadsheet would run as a formula is quoted with '. */
function cell(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") return String(value);
  let text = String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** The rows of one file's result (objects keyed by COLUMNS). */
export function resultRows(filename, result) {
  const elements = (result.elements || [])
    .filter((e) => e.probability >= LIKELY_ELEMENT)
    .map((e) => `${e.symbol} ${e.probability.toFixed(2)}`)
    .join("; ");
  const base = {
    file: filename,
    sample_id: result.sample_id,
    verdict: result.verdict,
    technique: result.technique,
    elements,
  };
  const rows = result.phases.map((p, i) => ({
    ...base,
    row: "phase",
    rank: i + 1,
    name: p.reference.name,
    formula: p.reference.formula,
    space_group: p.reference.space_group,
    weight_percent: p.weight_percent,
    weight_percent_sd: p.weight_percent_sd,
    explained: p.explained,
    confidence: p.confidence,
    reference_id: p.reference.reference_id,
    source: p.reference.source,
    source_id: p.reference.source_id,
    alternatives: p.lookalikes
      .map((a) => `${a.reference.name} (${a.reference.source}:${a.reference.source_id})`)
      .join("; "),
    note: p.weight_percent_note,
  }));
  for (const m of result.materials) {
    const candidate = result.candidates.find((c) => c.reference_id === m.reference_id);
    rows.push({
      ...base,
      row: "material",
      rank: m.rank,
      name: m.name,
      formula: m.formula,
      space_group: m.space_group,
      confidence: m.confidence,
      score: m.score,
      reference_id: m.reference_id,
      source: candidate?.source,
      source_id: candidate?.source_id,
      alternatives: m.alternatives.map((a) => `${a.name} (${a.source}:${a.source_id})`).join("; "),
      family: m.family ? m.family.name : null,
    });
  }
  return rows;
}

/** CSV of several files' results: [{filename, result}]. */
export function toCsv(items) {
  const lines = [COLUMNS.join(",")];
  for (const { filename, result } of items) {
    for (const row of resultRows(filename, result)) lines.push(COLUMNS.map((c) => cell(row[c])).join(","));
  }
  return `${lines.join("\r\n")}\r\n`;
}

export const toJson = (result) => `${JSON.stringify(result, null, 2)}\n`;

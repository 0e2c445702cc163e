// The periodic table: symbols and names in order of atomic number, and where
// each element sits in the usual 18-column layout (lanthanides and actinides
// in two rows below, 9 and 10).

const NAMES = `H Hydrogen|He Helium|Li Lithium|Be Beryllium|B Boron|C Carbon|N Nitrogen|O Oxygen|F Fluorine|Ne Neon|Na Sodium|Mg Magnesium|Al Aluminium|Si Silicon|P Phosphorus|S Sulfur|Cl Chlorine|Ar Argon|K Potassium|Ca Calcium|Sc Scandium|Ti Titanium|V Vanadium|Cr Chromium|Mn Manganese|Fe Iron|Co Cobalt|Ni Nickel|Cu Copper|Zn Zinc|Ga Gallium|Ge Germanium|As Arsenic|Se Selenium|Br Bromine|Kr Krypton|Rb Rubidium|Sr Strontium|Y Yttrium|Zr Zirconium|Nb Niobium|Mo Molybdenum|Tc Technetium|Ru Ruthenium|Rh Rhodium|Pd Palladium|Ag Silver|Cd Cadmium|In Indium|Sn Tin|Sb Antimony|Te Tellurium|I Iodine|Xe Xenon|Cs Caesium|Ba Barium|La Lanthanum|Ce Cerium|Pr Praseodymium|Nd Neodymium|Pm Promethium|Sm Samarium|Eu Europium|Gd Gadolinium|Tb Terbium|Dy Dysprosium|Ho Holmium|Er Erbium|Tm Thulium|Yb Ytterbium|Lu Lutetium|Hf Hafnium|Ta Tantalum|W Tungsten|Re Rhenium|Os Osmium|Ir Iridium|Pt Platinum|Au Gold|Hg Mercury|Tl Thallium|Pb Lead|Bi Bismuth|Po Polonium|At Astatine|Rn Radon|Fr Francium|Ra Radium|Ac Actinium|Th Thorium|Pa Protactinium|U Uranium|Np Neptunium|Pu Plutonium|Am Americium|Cm Curium|Bk Berkelium|Cf Californium|Es Einsteinium|Fm Fermium|Md Mendelevium|No Nobelium|Lr Lawrencium|Rf Rutherfordium|Db Dubnium|Sg Seaborgium|Bh Bohrium|Hs Hassium|Mt Meitnerium|Ds Darmstadtium|Rg Roentgenium|Cn Copernicium|Nh Nihonium|Fl Flerovium|Mc Moscovium|Lv Livermorium|Ts Tennessine|Og Oganesson`;

/** Row (1–7 periods, 9–10 the f-block rows) and column (1–18) of element z. */
function position(z) {
  if (z === 1) return [1, 1];
  if (z === 2) return [1, 18];
  const periods = [
    [3, 10, 2],
    [11, 18, 3],
  ];
  for (const [first, last, row] of periods) {
    if (z >= first && z <= last) {
      const i = z - first;
      return [row, i < 2 ? i + 1 : i + 11];
    }
  }
  if (z >= 19 && z <= 36) return [4, z - 18];
  if (z >= 37 && z <= 54) return [5, z - 36];
  if (z >= 57 && z <= 71) return [9, z - 54];
  if (z >= 89 && z <= 103) return [10, z - 86];
  const base = z <= 86 ? 54 : 86; // period 6 or 7
  const row = z <= 86 ? 6 : 7;
  const i = z - base;
  return [row, i <= 2 ? i : i - 14];
}

export const ELEMENTS = NAMES.split("|").map((entry, index) => {
  const [symbol, name] = entry.split(" ");
  const z = index + 1;
  const [row, column] = position(z);
  return { z, symbol, name, row, column };
});

export const BY_SYMBOL = new Map(ELEMENTS.map((e) => [e.symbol.toLowerCase(), e]));

/** Parse "fe, O si" into canonical symbols; unknown words are kept as typed
 * (the server explains them). */
export function parseSymbols(text) {
  const out = [];
  for (const word of String(text || "").split(/[\s,;]+/)) {
    if (!word) continue;
    const element = BY_SYMBOL.get(word.toLowerCase());
    const symbol = element ? element.symbol : word;
    if (!out.includes(symbol)) out.push(symbol);
  }
  return out;
}

"""Write the committed test patterns in every format xrdid reads.

No real .brml/.ras/.rasx/.gsa/pdCIF or RAW v1/v2/v4 file is in the shared
data, so these are generated from a real scan (bruker_d5000/xy/D5000_1.xy, Co
Kα, 2–75° in 0.02° steps), laid out as each format's documentation
describes. The writers are also imported by the tests to build damaged
variants. Regenerate with::

    python tests/files/make_pattern_files.py
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from xrdid.data_paths import shared_data_dir

OUT_DIR = Path(__file__).resolve().parent / "patterns"
SOURCE_RELATIVE = Path("patterns/bruker_d5000/xy/D5000_1.xy")

# The tube of the D5000 scans (from their RAW headers): cobalt.
ANODE = "Co"
KALPHA1 = 1.78897
KALPHA2 = 1.79285
KBETA = 1.62079
RATIO = 0.5


@dataclass(frozen=True)
class Scan:
    """A regular scan: 2θ = start + i·step."""

    start_deg: float
    step_deg: float
    intensity: NDArray[np.float64]

    @property
    def two_theta(self) -> NDArray[np.float64]:
        return self.start_deg + self.step_deg * np.arange(self.intensity.size)

    @property
    def end_deg(self) -> float:
        return self.start_deg + self.step_deg * (self.intensity.size - 1)


def load_source_scan(data_dir: Path | None = None) -> Scan:
    path = (data_dir or shared_data_dir()) / SOURCE_RELATIVE
    table = np.loadtxt(path)
    step = round(float(table[1, 0] - table[0, 0]), 6)
    return Scan(float(table[0, 0]), step, table[:, 1].astype(np.float64))


# --------------------------------------------------------------------- RAW


def _put(buffer: bytearray, offset: int, fmt: str, *values: object) -> None:
    struct.pack_into(fmt, buffer, offset, *values)


def _put_text(buffer: bytearray, offset: int, size: int, text: str) -> None:
    encoded = text.encode("latin-1")[:size]
    buffer[offset : offset + len(encoded)] = encoded


def raw_v1(scan: Scan, *, sample: str = "D5000_1") -> bytes:
    """DIFFRAC-AT 'RAW ' (v1): one 156-byte range header, float32 counts."""
    header = bytearray(156)
    header[0:4] = b"RAW "
    _put(header, 4, "<I", scan.intensity.size)
    _put(header, 8, "<f", 2.0)  # seconds per step
    _put(header, 12, "<f", scan.step_deg)
    _put(header, 16, "<I", 0)  # scan mode: locked coupled
    _put(header, 24, "<f", scan.start_deg)
    _put(header, 28, "<f", scan.start_deg / 2)  # θ start
    _put_text(header, 40, 32, sample)
    _put(header, 72, "<f", KALPHA1)
    _put(header, 76, "<f", KALPHA2)
    _put(header, 152, "<I", 0)  # no following range
    return bytes(header) + scan.intensity.astype("<f4").tobytes()


def raw_v2(scan: Scan) -> bytes:
    """DIFFRAC-AT v2 ('RAW2'): 256-byte file header, 48-byte range header."""
    header = bytearray(256)
    header[0:4] = b"RAW2"
    _put(header, 4, "<H", 1)
    _put_text(header, 168, 20, "13-Oct-03 18:50:59")
    _put_text(header, 188, 2, ANODE)
    _put(header, 190, "<f", KALPHA1)
    _put(header, 194, "<f", KALPHA2)
    _put(header, 198, "<f", RATIO)
    _put(header, 206, "<f", KBETA)
    block = bytearray(48)
    _put(block, 0, "<H", 48)
    _put(block, 2, "<H", scan.intensity.size)
    _put(block, 8, "<f", 2.0)
    _put(block, 12, "<f", scan.step_deg)
    _put(block, 16, "<f", scan.start_deg)
    _put(block, 46, "<H", 298)  # temperature, K
    return bytes(header) + bytes(block) + scan.intensity.astype("<f4").tobytes()


def raw_v3(scan: Scan, *, n_points: int | None = None) -> bytes:
    """DIFFRAC plus 'RAW1.01' (v3): 712-byte file header, 304-byte range header.

    ``n_points`` overrides the declared count (to forge a lying header).
    """
    header = bytearray(712)
    header[0:8] = b"RAW1.01\x00"
    _put(header, 8, "<I", 1)  # status: done
    _put(header, 12, "<I", 1)  # ranges
    _put_text(header, 16, 10, "10/13/03")
    _put_text(header, 26, 10, "18:50:59")
    _put_text(header, 326, 60, "D5000_1")
    _put_text(header, 608, 4, ANODE)
    _put(header, 616, "<5d", (2 * KALPHA1 + KALPHA2) / 3, KALPHA1, KALPHA2, KBETA, RATIO)
    block = bytearray(304)
    _put(block, 0, "<I", 304)
    _put(block, 4, "<I", scan.intensity.size if n_points is None else n_points)
    _put(block, 8, "<2d", scan.start_deg / 2, scan.start_deg)
    _put(block, 176, "<d", scan.step_deg)
    _put(block, 192, "<f", 2.0)
    _put(block, 240, "<d", KALPHA1)
    _put(block, 256, "<I", 0)
    return bytes(header) + bytes(block) + scan.intensity.astype("<f4").tobytes()


def raw_v4(scan: Scan, *, scan_type: str = "Locked Coupled", n_points: int | None = None) -> bytes:
    """DIFFRAC.SUITE 'RAW4.00': 61-byte header, tagged segments, 160-byte range header."""
    header = bytearray(61)
    header[0:7] = b"RAW4.00"
    _put_text(header, 12, 12, "10/13/2003")
    _put_text(header, 24, 10, "18:50:59")

    def var_info(name: str, value: str) -> bytes:
        encoded = value.encode("latin-1") + b"\x00"
        segment = bytearray(36 + len(encoded))
        _put(segment, 0, "<2I", 10, len(segment))
        _put_text(segment, 12, 24, name)
        segment[36:] = encoded
        return bytes(segment)

    hardware = bytearray(120)
    _put(hardware, 0, "<2I", 30, 120)
    _put(hardware, 72, "<5d", (2 * KALPHA1 + KALPHA2) / 3, KALPHA1, KALPHA2, KBETA, RATIO)
    _put_text(hardware, 116, 4, ANODE)
    unknown = struct.pack("<2I8x", 999, 16)  # a segment type the reader must skip

    drive = bytearray(64)  # supplementary range header: the 2θ drive
    _put(drive, 0, "<2I", 50, 64)
    _put_text(drive, 12, 24, "2Theta")
    _put(drive, 56, "<d", scan.start_deg)
    range_header = bytearray(160)
    _put(range_header, 0, "<I", 160)
    _put_text(range_header, 32, 24, scan_type)
    _put(range_header, 72, "<2d", scan.start_deg, scan.step_deg)
    _put(range_header, 88, "<I", scan.intensity.size if n_points is None else n_points)
    _put(range_header, 92, "<f", 2.0)
    _put(range_header, 100, "<2f", 40.0, 40.0)
    _put(range_header, 112, "<d", KALPHA1)
    _put(range_header, 136, "<2I", 4, len(drive))
    return b"".join(
        [
            bytes(header),
            var_info("SAMPLEID", "D5000_1"),
            bytes(hardware),
            unknown,
            bytes(range_header),
            bytes(drive),
            scan.intensity.astype("<f4").tobytes(),
        ]
    )


# ------------------------------------------------------------------- XRDML


def xrdml(
    scan: Scan,
    *,
    namespace: str = "http://www.xrdml.com/XRDMeasurement/1.0",
    list_positions: bool = True,
    second_scan: bool = True,
) -> bytes:
    """An XRDML document; v1.0 style with listPositions and <intensities>."""
    counts = " ".join(f"{value:.0f}" for value in scan.intensity)
    if list_positions:
        positions = (
            "<listPositions>"
            + " ".join(f"{value:.4f}" for value in scan.two_theta)
            + "</listPositions>"
        )
    else:
        positions = (
            f"<startPosition>{scan.start_deg:.4f}</startPosition>"
            f"<endPosition>{scan.end_deg:.4f}</endPosition>"
        )

    def one_scan(number: int, data: str) -> str:
        return f"""
    <scan appendNumber="{number}" mode="Pre-set time" scanAxis="Gonio" status="Completed">
      <header><startTimeStamp>2003-10-13T18:50:59+01:00</startTimeStamp></header>
      <dataPoints>
        <positions axis="2Theta" unit="deg">{positions}</positions>
        <positions axis="Omega" unit="deg">
          <startPosition>{scan.start_deg / 2:.4f}</startPosition>
          <endPosition>{scan.end_deg / 2:.4f}</endPosition>
        </positions>
        <commonCountingTime unit="seconds">2.00</commonCountingTime>
        <intensities unit="counts">{data}</intensities>
      </dataPoints>
    </scan>"""

    scans = one_scan(0, counts)
    if second_scan:
        scans += one_scan(1, " ".join("1" for _ in scan.intensity))
    text = f"""<?xml version="1.0" encoding="UTF-8"?>
<xrdMeasurements xmlns="{namespace}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" status="Completed">
  <comment><entry>Generated from D5000_1.xy for xrdid tests</entry></comment>
  <sample type="To be analyzed"><id>D5000_1</id><name>NIPS neat spray dried</name></sample>
  <xrdMeasurement measurementType="Scan" status="Completed">
    <usedWavelength intended="K-Alpha">
      <kAlpha1 unit="Angstrom">{KALPHA1}</kAlpha1>
      <kAlpha2 unit="Angstrom">{KALPHA2}</kAlpha2>
      <kBeta unit="Angstrom">{KBETA}</kBeta>
      <ratioKAlpha2KAlpha1>{RATIO}</ratioKAlpha2KAlpha1>
    </usedWavelength>
    <incidentBeamPath>
      <xRayTube id="1" name="Co LFF"><tension unit="kV">40</tension><current unit="mA">40</current><anodeMaterial>{ANODE}</anodeMaterial></xRayTube>
    </incidentBeamPath>{scans}
  </xrdMeasurement>
</xrdMeasurements>
"""
    return text.encode("utf-8")


# -------------------------------------------------------------------- BRML


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            # A fixed timestamp keeps regenerated archives byte-identical.
            info = zipfile.ZipInfo(name, date_time=(2003, 10, 13, 18, 50, 58))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buffer.getvalue()


def brml_raw_data(scan: Scan, *, trailing_columns: int = 0) -> bytes:
    """RawData0.xml; ``trailing_columns`` adds values after the counts."""
    extra = "".join(",0" for _ in range(trailing_columns))
    rows = "\n".join(
        f"      <Datum>2,1,{x:.4f},{x / 2:.4f},{y:.0f}{extra}</Datum>"
        for x, y in zip(scan.two_theta, scan.intensity, strict=True)
    )
    text = f"""<?xml version="1.0" encoding="utf-8"?>
<RawData xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" AppVersion="4.2.1.0">
  <Identifier>{{0b1e2f3a-0000-4000-8000-000000000001}}</Identifier>
  <TimeStampStarted>2003-10-13T18:50:59+01:00</TimeStampStarted>
  <DataRoutes>
    <DataRoute RouteFlag="Final">
      <ScanInformation ScanName="Coupled TwoTheta/Theta" VisibleName="Coupled TwoTheta/Theta">
        <ScanMode>StepScan</ScanMode>
        <TimePerStep>2</TimePerStep>
        <MeasurementPoints>{scan.intensity.size}</MeasurementPoints>
        <ScanAxes>
          <ScanAxisInfo AxisId="TwoTheta" AxisName="TwoTheta">
            <Reference>0</Reference><Start>{scan.start_deg}</Start><Stop>{scan.end_deg}</Stop><Increment>{scan.step_deg}</Increment>
          </ScanAxisInfo>
          <ScanAxisInfo AxisId="Theta" AxisName="Theta">
            <Reference>0</Reference><Start>{scan.start_deg / 2}</Start><Stop>{scan.end_deg / 2}</Stop><Increment>{scan.step_deg / 2}</Increment>
          </ScanAxisInfo>
        </ScanAxes>
      </ScanInformation>
      <FixedInformation>
        <Instrument>
          <PrimaryTracks>
            <TrackInfoData>
              <MountedOptics>
                <InfoData xsi:type="Tube">
                  <TubeMaterial Value="{ANODE}" />
                  <WaveLengthAlpha1 Value="{KALPHA1}" Unit="Å" />
                  <WaveLengthAlpha2 Value="{KALPHA2}" Unit="Å" />
                  <WaveLengthBeta Value="{KBETA}" Unit="Å" />
                  <WaveLengthRatio Value="{RATIO}" />
                </InfoData>
              </MountedOptics>
            </TrackInfoData>
          </PrimaryTracks>
        </Instrument>
      </FixedInformation>
      <DataViews>
        <RawDataView xsi:type="FixedRawDataView" Start="0" Length="1" LogicName="MeasuredTime" />
        <RawDataView xsi:type="FixedRawDataView" Start="1" Length="1" LogicName="AbsorptionFactor" />
        <RawDataView xsi:type="VaryingRawDataView" Start="2" Length="2">
          <Varying>
            <FieldDefinitions FieldName="TwoTheta" AxisId="TwoTheta" />
            <FieldDefinitions FieldName="Theta" AxisId="Theta" />
          </Varying>
        </RawDataView>
        <RawDataView xsi:type="RecordedRawDataView" Start="4" Length="1">
          <Recording LogicName="ScanCounter" VisibleName="Counter" Category="Count" />
        </RawDataView>
      </DataViews>
{rows}
    </DataRoute>
  </DataRoutes>
  <InfoItem Name="SampleName" Value="D5000_1" />
</RawData>
"""
    return text.encode("utf-8")


def brml(scan: Scan, *, raw_data: bytes | None = None) -> bytes:
    container = b"""<?xml version="1.0" encoding="utf-8"?>
<DataContainer>
  <MeasurementInfo SampleName="D5000_1" />
  <RawDataReferenceList><string>Experiment0/RawData0.xml</string></RawDataReferenceList>
</DataContainer>
"""
    return zip_bytes(
        {
            "[Content_Types].xml": b'<?xml version="1.0"?><Types/>',
            "Experiment0/DataContainer.xml": container,
            "Experiment0/RawData0.xml": raw_data or brml_raw_data(scan),
        }
    )


# ------------------------------------------------------------------ Rigaku


def _attenuated(scan: Scan) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Counts as stored with a ×10 attenuator in above 5000 counts, and coefficients."""
    coefficient = np.where(scan.intensity > 5000, 10.0, 1.0)
    return scan.intensity / coefficient, coefficient


def ras(scan: Scan) -> bytes:
    """A .ras file in Shift-JIS with one attenuated stretch."""
    stored, coefficient = _attenuated(scan)
    header = {
        "FILE_COMMENT": "石英標準 (generated from D5000_1)",
        "FILE_SAMPLE": "D5000_1",
        "FILE_OPERATOR": "xrdid",
        "HW_XG_TARGET_NAME": ANODE,
        "HW_XG_WAVE_LENGTH_ALPHA1": f"{KALPHA1}",
        "HW_XG_WAVE_LENGTH_ALPHA2": f"{KALPHA2}",
        "HW_XG_WAVE_LENGTH_BETA": f"{KBETA}",
        "HW_XG_WAVE_LENGTH_UNIT": "Angstrom",
        "MEAS_COND_XG_WAVE_TYPE": "Ka",
        "MEAS_SCAN_AXIS_X": "TwoThetaTheta",
        "MEAS_SCAN_MODE": "STEP",
        "MEAS_SCAN_START": f"{scan.start_deg:.4f}",
        "MEAS_SCAN_STEP": f"{scan.step_deg:.4f}",
        "MEAS_SCAN_STOP": f"{scan.end_deg:.4f}",
        "MEAS_SCAN_UNIT_X": "deg",
        "MEAS_DATA_COUNT": f"{scan.intensity.size}",
    }
    lines = ["*RAS_DATA_START", "*RAS_HEADER_START"]
    lines += [f'*{key} "{value}"' for key, value in header.items()]
    lines += ["*RAS_HEADER_END", "*RAS_INT_START"]
    lines += [
        f"{x:.4f} {y:.4f} {c:.4f}"
        for x, y, c in zip(scan.two_theta, stored, coefficient, strict=True)
    ]
    lines += ["*RAS_INT_END", "*RAS_DATA_END"]
    return ("\r\n".join(lines) + "\r\n").encode("cp932")


def rasx(scan: Scan) -> bytes:
    stored, coefficient = _attenuated(scan)
    profile = "\r\n".join(
        f"{x:.4f}\t{y:.4f}\t{c:.4f}"
        for x, y, c in zip(scan.two_theta, stored, coefficient, strict=True)
    )
    conditions = f"""<?xml version="1.0" encoding="utf-8"?>
<MeasurementConditions xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" Version="1.0">
  <GeneralInformation><SampleName>D5000_1</SampleName><Memo>generated</Memo></GeneralInformation>
  <ScanInformation>
    <AxisName>TwoThetaTheta</AxisName><Mode>STEP</Mode>
    <Start>{scan.start_deg}</Start><Stop>{scan.end_deg}</Stop><Step>{scan.step_deg}</Step>
    <PositionUnit>deg</PositionUnit><IntensityUnit>counts</IntensityUnit>
  </ScanInformation>
  <HWConfigurations>
    <XrayGenerator>
      <TargetName>{ANODE}</TargetName>
      <WavelengthKalpha1>{KALPHA1}</WavelengthKalpha1>
      <WavelengthKalpha2>{KALPHA2}</WavelengthKalpha2>
      <WavelengthKbeta>{KBETA}</WavelengthKbeta>
    </XrayGenerator>
  </HWConfigurations>
</MeasurementConditions>
"""
    root = '<?xml version="1.0" encoding="utf-8"?><Root><Data0 /></Root>'
    return zip_bytes(
        {
            "root.xml": root.encode("utf-8"),
            "Data0/Profile0.txt": b"\xef\xbb\xbf" + profile.encode("utf-8"),
            "Data0/MesurementConditions0.xml": b"\xef\xbb\xbf" + conditions.encode("utf-8"),
        }
    )


# -------------------------------------------------------------------- GSAS


def _centi(value: float) -> str:
    return f"{value * 100:.2f}"


def gsas_std(scan: Scan) -> bytes:
    """STD records: ten (I2, F6.0) fields per 80-character line."""
    n = scan.intensity.size
    records = math.ceil(n / 10)
    grid = f"CONST {_centi(scan.start_deg)} {_centi(scan.step_deg)} 0 0"
    lines = [
        "D5000_1 neat spray dried (generated for xrdid tests)".ljust(80),
        "Instrument parameter file: d5000_co.prm".ljust(80),
        f"BANK 1 {n} {records} {grid} STD".ljust(80),
    ]
    for first in range(0, n, 10):
        chunk = scan.intensity[first : first + 10]
        lines.append("".join(f"  {value:5.0f}." for value in chunk).ljust(80))
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def gsas_esd(scan: Scan) -> bytes:
    """ESD records: five (F8.0, F8.0) intensity/σ pairs per line."""
    n = scan.intensity.size
    sigma = np.sqrt(np.maximum(scan.intensity, 1.0))
    grid = f"CONST {_centi(scan.start_deg)} {_centi(scan.step_deg)} 0 0"
    lines = [
        "D5000_1 with esds (generated for xrdid tests)".ljust(80),
        f"BANK 1 {n} {math.ceil(n / 5)} {grid} ESD".ljust(80),
    ]
    for first in range(0, n, 5):
        pairs = zip(scan.intensity[first : first + 5], sigma[first : first + 5], strict=True)
        lines.append("".join(f"{y:8.1f}{e:8.2f}" for y, e in pairs).ljust(80))
    return ("\n".join(lines) + "\n").encode("ascii")


def fxye(scan: Scan) -> bytes:
    """FXYE: one 'x(centidegrees) y σ' line per point."""
    n = scan.intensity.size
    sigma = np.sqrt(np.maximum(scan.intensity, 1.0))
    lines = [
        "D5000_1 FXYE (generated for xrdid tests)",
        "# x in centidegrees",
        f"BANK 1 {n} {n} CONS {_centi(scan.start_deg)} {_centi(scan.step_deg)} 0 0 FXYE",
    ]
    lines += [
        f"{x * 100:12.4f} {y:12.4f} {e:12.4f}"
        for x, y, e in zip(scan.two_theta, scan.intensity, sigma, strict=True)
    ]
    return ("\n".join(lines) + "\n").encode("ascii")


# --------------------------------------------------------------------- CIF


def pdcif_range(scan: Scan) -> bytes:
    """pdCIF with a 2θ range and counts carrying esds ("2230(47)")."""
    esd = np.rint(np.sqrt(np.maximum(scan.intensity, 1.0))).astype(int)
    counts = "\n".join(f"  {y:.0f}({e})" for y, e in zip(scan.intensity, esd, strict=True))
    text = f"""#\\#CIF_1.1
# Generated from D5000_1.xy for xrdid tests.
data_powder_pattern_D5000_1
_pd_block_id          'D5000_1|xrdid|test'
_diffrn_radiation_type  'Co K\\a'
loop_
  _diffrn_radiation_wavelength
  _diffrn_radiation_wavelength_wt
  _diffrn_radiation_wavelength_id
  {KALPHA1}  1.0  1
  {KALPHA2}  {RATIO}  2
_pd_meas_number_of_points   {scan.intensity.size}
_pd_meas_2theta_range_min   {scan.start_deg:.2f}
_pd_meas_2theta_range_max   {scan.end_deg:.2f}
_pd_meas_2theta_range_inc   {scan.step_deg:.2f}
_pd_meas_scan_method        step
_pd_proc_info_datetime      2003-10-13T18:50
_pd_proc_info_data_reduction
;
A multi-line text field, as pdCIF files carry for remarks;
it may contain 'quotes' and # signs.
;
loop_
  _pd_meas_counts_total
{counts}
"""
    return text.encode("utf-8")


def pdcif_scan(scan: Scan) -> bytes:
    """pdCIF with a 2θ loop, processed intensities, weights and a calc column."""
    weight = 1.0 / np.maximum(scan.intensity, 1.0)
    rows = "\n".join(
        f"  {x:.4f}  {y:.1f}  {w:.6g}  {y * 0.9:.1f}"
        for x, y, w in zip(scan.two_theta, scan.intensity, weight, strict=True)
    )
    text = f"""data_D5000_1_scan
_diffrn_radiation_type     "Co K\\a"
_diffrn_radiation_wavelength  {KALPHA1}
loop_
  _pd_meas_2theta_scan
  _pd_proc_intensity_total
  _pd_proc_ls_weight
  _pd_calc_intensity_total
{rows}
"""
    return text.encode("utf-8")


# -------------------------------------------------------------------- text


def text_excel_german(scan: Scan) -> bytes:
    """Semicolons, decimal commas, CRLF, cp1252 header: a German Excel CSV export."""
    lines = ["Probe: D5000_1 (Kobalt-Röhre)", "2Theta;Intensität"]
    lines += [
        f"{x:.2f};{y:.1f}".replace(".", ",")
        for x, y in zip(scan.two_theta, scan.intensity, strict=True)
    ]
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def text_utf16(scan: Scan) -> bytes:
    """Excel 'Unicode text': UTF-16 LE with BOM, tab-separated, a 2θ header."""
    lines = ["2θ\tcounts"]
    lines += [f"{x:.2f}\t{y:.0f}" for x, y in zip(scan.two_theta, scan.intensity, strict=True)]
    return "\ufeff".encode("utf-16-le") + ("\r\n".join(lines) + "\r\n").encode("utf-16-le")


def text_xye(scan: Scan) -> bytes:
    """Comment styles, a header naming σ, and three columns."""
    sigma = np.sqrt(np.maximum(scan.intensity, 1.0))
    lines = [
        "# D5000_1, Co Kα, generated for xrdid tests",
        "! instrument: Siemens D5000",
        "// step 0.02°",
        "2theta intensity esd",
    ]
    lines += [
        f"{x:10.4f} {y:10.1f} {e:8.3f}"
        for x, y, e in zip(scan.two_theta, scan.intensity, sigma, strict=True)
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def uxd_counts(scan: Scan) -> bytes:
    """Bruker .uxd: a file header with the tube, one range of intensities
    alone, eight a line, at 2θ = _START + i·_STEPSIZE."""
    lines = [
        "; D5000_1 exported as UXD for xrdid tests",
        "_FILEVERSION=1",
        "_SAMPLE='D5000_1'",
        "_SITE='xrdid tests'",
        f"_ANODE='{ANODE}'",
        f"_WL1={KALPHA1:.6f}",
        f"_WL2={KALPHA2:.6f}",
        f"_WLRATIO={RATIO:.6f}",
        ";",
        "; (Data for Range number 1)",
        "_DRIVE='COUPLED'",
        "_STEPTIME=1.000000",
        f"_STEPSIZE={scan.step_deg:.6f}",
        "_STEPMODE='C'",
        f"_START={scan.start_deg:.6f}",
        f"_THETA={scan.start_deg / 2:.6f}",
        f"_2THETA={scan.start_deg:.6f}",
        f"_STEPS={scan.intensity.size}",
        "_COUNTS",
    ]
    values = [f"{y:9.0f}" for y in scan.intensity]
    lines += ["".join(values[i : i + 8]) for i in range(0, len(values), 8)]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def uxd_pairs(scan: Scan) -> bytes:
    """Bruker .uxd with (2θ, counts per second) pairs, the layout EVA writes."""
    lines = [
        "_FILEVERSION=2",
        f"_WL1={KALPHA1:.6f}",
        f"_WL2={KALPHA2:.6f}",
        f"_WLRATIO={RATIO:.6f}",
        f"_ANODE='{ANODE}'",
        "_DRIVE='COUPLED'",
        "_STEPTIME=1.000000",
        "_2THETACPS",
    ]
    lines += [f"{x:10.4f}{y:12.2f}" for x, y in zip(scan.two_theta, scan.intensity, strict=True)]
    return ("\n".join(lines) + "\n").encode("ascii")


def pyfai_q(scan: Scan) -> bytes:
    """pyFAI's integrate1d text output in q (nm⁻¹): its header states the
    wavelength in metres and names the radial unit on the column line."""
    q = 4e1 * math.pi * np.sin(np.radians(scan.two_theta) / 2.0) / KALPHA1
    lines = [
        "# == pyFAI calibration ==",
        "# Distance Sample to Detector: 0.2 m",
        "# PONI: 1.000e-01, 1.000e-01 m",
        "# Rotations: 0.000000 0.000000 0.000000 rad",
        "#",
        "# == Fit2d calibration ==",
        "# Distance Sample-beamCenter: 200.000 mm",
        "# Center: x=1000.000, y=1000.000 pix",
        "# Tilt: 0.000 deg  TiltPlanRot: 0.000 deg",
        "#",
        f"# Wavelength: {KALPHA1 * 1e-10!r} m",
        "# Detector: Detector\t PixelSize= 1.000e-04, 1.000e-04 m",
        "#",
        "#        q_nm^-1             I ",
    ]
    lines += [f"{x:.12e} {y:.6e}" for x, y in zip(q, scan.intensity, strict=True)]
    return ("\n".join(lines) + "\n").encode("ascii")


def fit2d_chi(scan: Scan) -> bytes:
    """Fit2D's χPLOT output of a 2θ scan: title, axis labels, the number of
    points, then x and y in E format."""
    lines = [
        "D5000_1.tif: Azimuth/2-theta",
        "2-Theta Angle (Degrees)",
        "Intensity",
        f"{scan.intensity.size:8d}",
    ]
    lines += [
        f"  {x:14.7E}  {y:14.7E}" for x, y in zip(scan.two_theta, scan.intensity, strict=True)
    ]
    return ("\n".join(lines) + "\n").encode("ascii")


def rigaku_asc(scan: Scan) -> bytes:
    """Rigaku's ASC export (RINT, PDXL): ``*KEY = value`` lines, the tube as
    its atomic number, one group of counts, four to a line."""
    header = {
        "TYPE": "Raw",
        "CLASS": "ASCII CLASS",
        "SAMPLE": "D5000_1",
        "GROUP_COUNT": "1",
        "TARGET": "27",
        "XRAY_CHAR": "K-ALPHA1",
        "WAVE_LENGTH1": f"{KALPHA1}",
        "WAVE_LENGTH2": f"{KALPHA2}",
        "SCAN_AXIS": "2theta/theta",
        "XUNIT": "deg.",
        "YUNIT": "cps",
    }
    group = {
        "GROUP": "0",
        "START": f"{scan.start_deg}",
        "STOP": f"{scan.end_deg}",
        "STEP": f"{scan.step_deg}",
        "COUNT": f"{scan.intensity.size}",
    }
    lines = [f"*{key:<14}=  {value}" for key, value in header.items()]
    lines += ["*BEGIN", *(f"*{key:<14}=  {value}" for key, value in group.items())]
    counts = [f"{y:.0f}" for y in scan.intensity]
    lines += [" " + ", ".join(counts[i : i + 4]) for i in range(0, len(counts), 4)]
    lines += ["*END", "*EOF"]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def philips_udf(scan: Scan) -> bytes:
    """Philips' UDF: ``Key,value,/`` lines, then the counts after ``RawScan``,
    eight to a line, the last ended by ``/``."""
    lines = [
        "SampleIdent,D5000_1 ,/",
        "Title1,xrdid test file ,/",
        "Anode,Co,/",
        f"LabdaAlpha1, {KALPHA1:.5f},/",
        f"LabdaAlpha2, {KALPHA2:.5f},/",
        f"RatioAlpha21, {RATIO:.5f},/",
        f"DataAngleRange, {scan.start_deg:10.4f}, {scan.end_deg:10.4f},/",
        f"ScanStepSize, {scan.step_deg:9.3f},/",
        "ScanType,CONTINUOUS,/",
        "RawScan",
    ]
    counts = [f"{y:8.0f}" for y in scan.intensity]
    rows = [",".join(counts[i : i + 8]) for i in range(0, len(counts), 8)]
    lines += [row + "," for row in rows[:-1]] + [rows[-1] + "/"]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def philips_rd(scan: Scan, *, version: bytes = b"V3", continuous: bool = False) -> bytes:
    """Philips PC-APD's binary scan: a fixed header (the tube as "another"
    anode with its lines, the 2θ step, start and end), then each count as
    round(10·√count) in a uint16. A continuous scan holds one count fewer
    than a step scan over the same range."""
    offset = {b"V3": 250, b"V5": 810}[version]
    header = bytearray(offset)
    header[0:4] = version + b"RD"
    header[4:32] = b"PC-APD, Diffraction software"
    header[84:87] = bytes([3, 4, 3])  # PW3710, another anode, long fine focus
    struct.pack_into("<3d", header, 94, KALPHA1, KALPHA2, RATIO)
    header[138:162] = b"D5000_1 D5000_1 test    "
    counts = scan.intensity[:-1] if continuous else scan.intensity
    struct.pack_into("<3d", header, 214, scan.step_deg, scan.start_deg, scan.end_deg)
    stored = np.round(10.0 * np.sqrt(counts)).astype("<u2")
    return bytes(header) + stored.tobytes()


def sietronics_cpi(scan: Scan) -> bytes:
    """Sietronics' CPI: the 2θ start, end and step, the anode and its Kα1 in
    fixed lines (decimal commas, as a European installation writes them),
    then one count a line after SCANDATA."""
    lines = [
        "SIETRONICS XRD SCAN",
        f"{scan.start_deg:.2f}".replace(".", ","),
        f"{scan.end_deg:.2f}".replace(".", ","),
        f"{scan.step_deg:.3f}".replace(".", ","),
        ANODE,
        f"{KALPHA1}".replace(".", ","),
        "11/10/2012 14:41:24",
        "2,0",
        "D5000_1",
        "SCANDATA",
        *(f"{y:.7f}" for y in scan.intensity),
    ]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


# Committed file name → writer.
FILES = {
    "d5000_1_v1.raw": raw_v1,
    "d5000_1_v2.raw": raw_v2,
    "d5000_1_v4.raw": raw_v4,
    "d5000_1.xrdml": xrdml,
    "d5000_1.brml": brml,
    "d5000_1.ras": ras,
    "d5000_1.rasx": rasx,
    "d5000_1_std.gsa": gsas_std,
    "d5000_1_esd.gsa": gsas_esd,
    "d5000_1.fxye": fxye,
    "d5000_1_range.cif": pdcif_range,
    "d5000_1_scan.cif": pdcif_scan,
    "d5000_1_excel_de.csv": text_excel_german,
    "d5000_1_utf16.txt": text_utf16,
    "d5000_1.xye": text_xye,
    "d5000_1.uxd": uxd_counts,
    "d5000_1_pairs.uxd": uxd_pairs,
    "d5000_1_pyfai_q.dat": pyfai_q,
    "d5000_1_fit2d.chi": fit2d_chi,
    "d5000_1.asc": rigaku_asc,
    "d5000_1.udf": philips_udf,
    "d5000_1.rd": philips_rd,
    "d5000_1.cpi": sietronics_cpi,
}


def main() -> None:
    scan = load_source_scan()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, writer in FILES.items():
        (OUT_DIR / name).write_bytes(writer(scan))


if __name__ == "__main__":
    main()

"""Damaged files never escape as anything but StructureReadError."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xrdid.errors import StructureReadError
from xrdid.structures import read_structure

HALITE_CIF = """data_halite
_cell_length_a 5.64
_cell_length_b 5.64
_cell_length_c 5.64
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'F m -3 m'
loop_
_symmetry_equiv_pos_as_xyz
x,y,z
-x,-y,-z
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Na1 Na 0 0 0 1
Cl1 Cl 0.5 0.5 0.5 1
"""

QUARTZ_STR = """PHASE=Quartz // comment
SpacegroupNo=154 HermannMauguin=P3_221 //
PARAM=A=0.4913_0.49^0.4935 PARAM=C=0.5404_0.538^0.545 //
E=SI+4 Wyckoff=a x=0.47 TDS=0.0056
E=(O-2(p),F(1-p)) PARAM=p=0.9_0^1 Wyckoff=c x=0.415 y=0.268 z=0.786 TDS=0.0096
"""


def _damage(text: str, data: st.DataObject) -> str:
    """Drop, duplicate or overwrite a few lines and characters."""
    lines = text.splitlines()
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["drop", "repeat", "edit"]))
        if action == "drop" and len(lines) > 1:
            lines.pop(i)
        elif action == "repeat":
            lines.insert(i, lines[i])
        elif lines[i]:
            j = data.draw(st.integers(0, len(lines[i]) - 1))
            char = data.draw(st.sampled_from(list("0-9.?()=_' x,;/\\E")))
            lines[i] = lines[i][:j] + char + lines[i][j + 1 :]
    return "\n".join(lines) + "\n"


def _read_or_reject(data: bytes, filename: str) -> None:
    try:
        read_structure(data, filename)
    except StructureReadError as exc:
        assert "internal error" not in str(exc), str(exc)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_cif(data: st.DataObject) -> None:
    _read_or_reject(_damage(HALITE_CIF, data).encode(), "damaged.cif")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_str(data: st.DataObject) -> None:
    _read_or_reject(_damage(QUARTZ_STR, data).encode(), "damaged.str")


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["x.cif", "x.str", "x.mcif", "noext"]))
def test_random_bytes(payload: bytes, filename: str) -> None:
    _read_or_reject(payload, filename)

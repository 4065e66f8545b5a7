"""Region codes: the byte-view path for short one-width ASCII labels gives exactly the codes of the
per-unit lookup, and every other kind of label (mixed widths, non-ASCII, non-text) still works."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.core.stats.corrections import UnitData
from functions.core.stats.pipeline import MAX_LABEL_TABLE, RegionCodes, _fixed_width_codes

LABEL = st.one_of(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=9),
                  st.sampled_from(["unknown", "", "Ü1", "DE", "de", "D", "1"]))


def _arms(control: list[object], treatment: list[object]) -> dict[str, UnitData]:
    return {"control": UnitData(np.zeros(len(control)), region=np.array(control, dtype=object)),
            "treatment": UnitData(np.zeros(len(treatment)), region=np.array(treatment, dtype=object))}


@settings(max_examples=200, deadline=None)
@given(st.lists(LABEL, max_size=60), st.lists(LABEL, max_size=60))
def test_codes_name_each_units_own_region_whatever_the_labels(control: list[str], treatment: list[str]) -> None:
    codes = RegionCodes.of(_arms(control, treatment))
    assert list(codes.names) == sorted(set(control) | set(treatment))
    for arm, values in (("control", control), ("treatment", treatment)):
        assert [codes.names[c] for c in codes.codes[arm]] == values
        assert codes.counts(arm) == Counter(values)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12).flatmap(lambda w: st.lists(st.text(alphabet="AZaz09-", min_size=w, max_size=w),
                                                      min_size=1, max_size=40)))
def test_one_width_ascii_labels_take_the_byte_view_while_their_table_is_small(values: list[str]) -> None:
    labels = sorted(set(values))
    fast = _fixed_width_codes(values, labels)
    entries = math.prod(len({label[j] for label in labels}) for j in range(len(labels[0])))
    if entries > MAX_LABEL_TABLE:
        assert fast is None
    else:
        assert fast is not None
        assert fast.tolist() == [labels.index(v) for v in values]


def test_labels_the_byte_view_cannot_read_fall_back_to_the_lookup() -> None:
    assert _fixed_width_codes(["DE", "USA"], ["DE", "USA"]) is None  # two widths
    assert _fixed_width_codes(["DÉ", "DE"], ["DE", "DÉ"]) is None  # not ASCII
    wide = ["A" * 21, "B" * 21]  # 2**21 digit combinations: a table too large for two labels
    assert _fixed_width_codes(wide, wide) is None
    codes = RegionCodes.of(_arms(wide, ["B" * 21]))
    assert codes.codes["control"].tolist() == [0, 1]
    codes = RegionCodes.of(_arms([None, "DE", 7], ["DE"]))  # not text: named by str()
    assert codes.names == ("7", "DE", "None")
    assert [codes.names[c] for c in codes.codes["control"]] == ["None", "DE", "7"]


def test_a_fixed_width_numpy_text_array_gives_the_same_codes() -> None:
    rng = np.random.default_rng(7)
    regions = rng.choice(["US", "DE", "GB", "BR"], size=5_000)
    as_text = {"control": UnitData(np.zeros(regions.size), region=regions)}
    as_objects = {"control": UnitData(np.zeros(regions.size), region=regions.astype(object))}
    first, second = RegionCodes.of(as_text), RegionCodes.of(as_objects)
    assert first.names == second.names == ("BR", "DE", "GB", "US")
    assert np.array_equal(first.codes["control"], second.codes["control"])

"""Ids and names as text (:func:`farmland.io.values.id_strings`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from farmland.io.values import _is_arrow_text, id_strings


def test_arrow_text_ids_are_stripped_like_python():
    # \x1c and \x1f are whitespace to str.strip(); the ideographic space (U+3000) and the
    # full-width letters are handled by NFKC (non-ASCII cells)
    raw = pd.Series([" a ", "b\x1c", None, "", "  ", "ü ", " \u3000中 ", "ａｂ ", "x\ty", "\x1fz"],
                    dtype="str", index=np.arange(10) * 3, name="BSM")
    out = id_strings(raw)
    assert out.dtype == "str"
    assert out.name == "BSM"
    assert list(out.index) == list(np.arange(10) * 3)
    assert out.tolist()[:2] == ["a", "b"]
    assert out.isna().tolist() == [False, False, True, True, True, False, False, False, False,
                                   False]
    assert out.tolist()[5:] == ["ü", "中", "ab", "x\ty", "z"]


@pytest.mark.parametrize(("values", "expected"), [
    (["450100100000000001", " 2 ", "450100100000000001"], ["450100100000000001", "2",
                                                           "450100100000000001"]),
    ([None, "  "], [None, None]),
    ([], []),
])
def test_arrow_text_ids_equal_the_python_path(values, expected):
    raw = pd.Series(values, dtype="str")
    out = id_strings(raw)
    pd.testing.assert_series_equal(out, id_strings(raw.astype(object)), check_exact=True)
    assert [None if pd.isna(v) else v for v in out] == expected


def test_only_the_arrow_text_dtype_with_nan_takes_the_arrow_path():
    """Recognised by its attributes (pandas < 2.3 cannot construct it: building it at
    import broke `import farmland` there): Arrow storage and NaN as the missing value."""
    default = pd.StringDtype("pyarrow", na_value=np.nan)      # pandas 3's "str"
    assert _is_arrow_text(pd.Series(["a"], dtype=default).dtype)
    assert not _is_arrow_text(pd.StringDtype("pyarrow"))            # NA as the missing value
    assert not _is_arrow_text(pd.StringDtype("python", na_value=np.nan))
    assert not _is_arrow_text(np.dtype(object))

"""Outlier screening of soil samples (issue 15, item 3), on hand-built cases.

A 5 × 5 grid of samples 200 m apart, Cd 0.20 mg/kg everywhere (paddy, pH 6: screening
0.4, intervention 2.0; the highest intervention value of Cd over the pH bands is 4.0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import X0, Y0, make_parcels, make_samples

import farmland as fl
from farmland.classify.outliers import apply_outliers, screen_outliers
from farmland.geostats.surfaces import interpolation_values
from farmland.runs.folder import read_manifest
from farmland.standards import load_standard

STD = load_standard()


def grid(**cd_at: float):
    """25 samples S0..S24 on a 200 m grid; ``cd_at={"S12": 45}`` sets some Cd values."""
    xy = [(X0 + 200 * (i % 5), Y0 + 200 * (i // 5)) for i in range(25)]
    s = make_samples(xy, origin=(0, 0), cd=[0.2] * 25)
    for sid, value in cd_at.items():
        s.loc[s["sample_id"] == sid, "cd"] = value
    return s


def test_clean_samples_have_no_suspects():
    assert screen_outliers(grid(), STD).empty


def test_a_mistyped_value_is_a_global_suspect():
    # 45 > 5 x 4.0 = 20 (and 225 x its neighbours' median, below the µg/kg band)
    found = screen_outliers(grid(S12=45.0), STD)
    assert found[["sample_id", "element", "check"]].values.tolist() == [["S12", "cd", "global"]]
    assert "45 mg/kg is more than 5 × its highest intervention value (4)" in found["detail"][0]


def test_a_local_spike_and_a_unit_mixup():
    found = screen_outliers(grid(S6=3.0, S18=200.0), STD).set_index("sample_id")
    # S6: 3.0 = 15 x the median 0.2 of its 8 neighbours, and above screening -> spatial
    assert found.loc["S6", "check"] == "spatial"
    # S18: 200 = 1000 x the neighbours' median: µg/kg read as mg/kg, one row only
    assert found.loc["S18", "check"] == "units"
    assert "µg/kg read as mg/kg" in found.loc["S18", "detail"]
    assert len(found) == 2


def test_a_moderately_high_value_is_not_a_spike():
    # 1.8 = 9 x the median: below the factor 10 -> a real contamination gradient, kept
    assert screen_outliers(grid(S12=1.8), STD).empty


def test_implausible_ph_is_a_suspect():
    s = grid()
    s.loc[0, "ph"] = 12.5
    found = screen_outliers(s, STD)
    assert found[["sample_id", "element", "check"]].values.tolist() == [["S0", "ph", "ph_range"]]


@pytest.mark.parametrize("mode", ["flag", "exclude", "keep"])
def test_modes(mode):
    s = grid(S12=45.0)
    out, table = apply_outliers(s, screen_outliers(s, STD), mode)
    assert table["action"].nunique() == 1 and len(table) == 1
    values = interpolation_values(out, "cd")
    i = int(np.flatnonzero(out["sample_id"] == "S12")[0])
    if mode == "flag":
        assert out.loc[i, "cd"] == 45.0 and np.isnan(values[i])   # kept, not interpolated
    elif mode == "exclude":
        assert np.isnan(out.loc[i, "cd"]) and np.isnan(values[i])
    else:
        assert out.loc[i, "cd"] == 45.0 and values[i] == 45.0
    assert s.loc[i, "cd"] == 45.0                                   # input not modified


def test_flagged_value_still_classes_its_own_parcel_but_not_its_neighbours(tmp_path):
    """The hot spot makes its own parcel class 3 (a real value must), but the surface
    around it is made from the other samples: the neighbour parcel stays class 1."""
    s = grid(S12=45.0)
    parcels = make_parcels([(360, 360, 440, 440), (500, 360, 580, 440)], origin=(X0, Y0),
                           final_class=None)
    parcels = parcels.drop(columns=["final_class"])
    flagged, _ = apply_outliers(s, screen_outliers(s, STD), "flag")
    out, _, _ = fl.classify_parcels(parcels, flagged, interpolator="idw")
    assert out["final_class"].tolist() == [3, 1]
    kept, _ = apply_outliers(s, screen_outliers(s, STD), "keep")
    spread, _, _ = fl.classify_parcels(parcels, kept, interpolator="idw")
    assert spread["final_class"].tolist() == [3, 3]      # kept: the typo spreads


def test_unknown_mode_is_refused():
    with pytest.raises(fl.InputError, match="unknown outlier mode"):
        apply_outliers(grid(), pd.DataFrame(columns=["sample_id", "element", "value", "check",
                                                     "detail", "fix"]), "drop")


def test_classify_writes_outliers_csv_and_layer(tmp_path, cli):
    """`farmland classify` on the demo corner with one mistyped 镉 (45 for 0.45)."""
    import geopandas as gpd
    from shapely.geometry import box

    data = Path(__file__).resolve().parents[1] / "data" / "demo"
    window = box(620_000, 2_718_000, 624_000, 2_722_000)
    parcels = gpd.read_file(data / "parcels.gpkg", layer="DLTB")
    parcels.loc[parcels.intersects(window)].to_file(tmp_path / "p.gpkg", layer="DLTB")
    soil = pd.read_csv(data / "soil_samples.csv", encoding="utf-8-sig", dtype=str)
    x, y = soil["X"].astype(float), soil["Y"].astype(float)
    soil = soil.loc[x.between(619_000, 625_000) & y.between(2_717_000, 2_723_000)]
    soil = soil.reset_index(drop=True)
    soil.loc[3, "镉"] = "45"
    soil.to_csv(tmp_path / "soil.csv", index=False, encoding="utf-8-sig")
    res = cli("classify", "--parcels", tmp_path / "p.gpkg", "--samples", tmp_path / "soil.csv",
              "--crs", "EPSG:4545", "--interpolator", "idw", "-o", tmp_path / "out")
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "out" / "outliers.csv", encoding="utf-8-sig")
    assert table[["sample_id", "element", "check"]].values.tolist() == [
        [soil.loc[3, "样品编号"], "cd", "global"]]
    layer = gpd.read_file(tmp_path / "out" / "classification.gpkg", layer="outliers")
    assert len(layer) == 1 and layer.geometry.iloc[0] is not None
    assert read_manifest(tmp_path / "out")["outliers"] == {"mode": "flag", "suspect_values": 1}


def test_suspect_values_are_a_map_layer_with_escaped_text():
    s = grid(S12=45.0)
    _, table = apply_outliers(s, screen_outliers(s, STD), "flag")
    table.loc[0, "detail"] = "<img src=x onerror=alert(1)>"
    points = s.set_index("sample_id").geometry.reindex(table["sample_id"]).to_numpy()
    import geopandas as gpd

    layer = gpd.GeoDataFrame(table, geometry=points, crs=s.crs)
    parcels = make_parcels(n=2, final_class=[1, 3])
    html = fl.make_map(parcels, outliers=layer).get_root().render()
    assert "可疑数值 Suspect values" in html
    assert "<img src=x onerror" not in html            # data is text, never markup

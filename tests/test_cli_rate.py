"""``farmland rate``: the safe-utilisation rate of a classification with a measures ledger.

The figures are the hand-computed 5-parcel county of test_rate.py.
"""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely
from conftest import CRS, X0, Y0, parcel_table
from test_rate import YEAR, crops_frame, five_parcel_county, measures_frame


def write_classification(folder, parcels, crops):
    """A classification.gpkg like ``farmland classify`` writes (EPSG:4545, 1 亩 squares)."""
    folder.mkdir(parents=True, exist_ok=True)
    boxes = [shapely.box(X0 + 100 * i, Y0, X0 + 50 + 100 * i, Y0 + 50)
             for i in range(len(parcels))]
    gdf = gpd.GeoDataFrame(parcels, geometry=boxes, crs=CRS)
    path = folder / "classification.gpkg"
    pyogrio.write_dataframe(gdf, path, layer="parcels")
    pts = gpd.GeoDataFrame(crops, geometry=shapely.points([(X0 + 10, Y0 + 10)] * len(crops)),
                           crs=CRS)
    pyogrio.write_dataframe(pts, path, layer="crops")
    return path


def test_cli_rate(cli, tmp_path):
    parcels, measures, crops = five_parcel_county()
    gpkg = write_classification(tmp_path / "run", parcels, crops)
    ledger = tmp_path / "ledger.csv"
    measures.to_csv(ledger, index=False)
    out = tmp_path / "out"
    res = cli("rate", gpkg, "--measures", ledger, "-o", out)
    assert res.exit_code == 0, res.output
    # official accounting: C = 10 + 30 x 1/2, D = 15 -> 40 %; gap 91 - 40 = 51 亩
    assert "目标未达成 / target NOT met: 40.0 % < 91 %, gap 51.0 亩 (3.40 hm²)" in res.stdout
    assert ("readings: official 40.0 %  parcel_verified 25.0 %  measures_only 55.0 %"
            in res.stdout)
    assert ("own crop samples 10.0 亩 (40.0 %), 乡镇/全县达标率 compliance rate 15.0 亩 (60.0 %), "
            "无农产品数据 no crop data 0.0 亩 (0.0 %)") in res.stdout
    assert "class-3 control 37.5 % / 目标 target 100 %" in res.stdout
    assert "东乡" in res.stdout and "西乡" in res.stdout
    raw = (out / "rate.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = pd.read_csv(out / "rate.csv", encoding="utf-8-sig")
    assert table.loc[0, "name"] == "全县 County"
    assert table.loc[0, "rate"] == pytest.approx(0.40)
    assert table.loc[0, "rate_measures_only"] == pytest.approx(0.55)
    summary = json.loads((out / "rate.json").read_text("utf-8"))
    assert summary["year"] == 2023 and summary["n_unknown_measures"] == 1
    assert summary["accounting"] == "official" and summary["min_township_samples"] == 5
    # the per-parcel accounting sums exactly to the numerator, county and township
    per_parcel = pd.read_csv(out / "rate_parcels.csv", encoding="utf-8-sig")
    assert per_parcel["counted_mu"].sum() == pytest.approx(table.loc[0, "numerator_mu"])
    towns = table.set_index("name")
    for town, counted in per_parcel.groupby("township")["counted_mu"].sum().items():
        assert counted == pytest.approx(towns.loc[town, "numerator_mu"])
    layer = gpd.read_file(out / "rate.gpkg", layer="accounting")
    assert layer.crs.to_epsg() == 4545 and len(layer) == len(parcels)
    assert set(layer["status"]) == {"achieved_verified", "exceeded", "achieved_by_rate",
                                    "controlled", "uncontrolled", "unclassified", "class1"}
    unknown = pd.read_csv(out / "unknown_measures.csv", encoding="utf-8-sig")
    assert unknown["parcel_id"].tolist() == ["PX"]
    plan = pd.read_csv(out / "gap_plan.csv", encoding="utf-8-sig")
    assert plan["parcel_id"].tolist() == ["P5"]   # the uncontrolled class 3, first
    # without --overwrite the outputs are kept and the command fails with exit code 2
    again = cli("rate", gpkg, "--measures", ledger, "-o", out)
    assert again.exit_code == 2
    assert "output already exists" in again.stderr
    ok = cli("rate", gpkg, "--measures", ledger, "-o", out,
             "--overwrite", "--target", "0.5", "--no-count-unverified")
    assert ok.exit_code == 0
    # (10 + 15) / 100 = 25 % < 50 %: gap 50 - 25 = 25 亩
    assert "target NOT met: 25.0 % < 50 %, gap 25.0 亩" in ok.stdout


def test_cli_rate_target_met(cli, tmp_path):
    parcels = parcel_table([("A", "T", 2, 10), ("B", "T", 3, 5)])
    crops = crops_frame([("c1", "A", YEAR, False)])
    write_classification(tmp_path / "run", parcels, crops)
    ledger = tmp_path / "ledger.csv"
    measures_frame([("A", "lime", "safe_use", YEAR), ("B", "fallow", "strict_control", YEAR)]
                   ).to_csv(ledger, index=False)
    res = cli("rate", tmp_path / "run", "--measures", ledger, "-o", tmp_path / "out")
    assert res.exit_code == 0, res.output
    assert "目标已达成 / target met: 100.0 % ≥ 91 %" in res.stdout
    assert pd.read_csv(tmp_path / "out" / "gap_plan.csv", encoding="utf-8-sig").empty

"""``farmland report``: workbook, HTML summary and charts of a classification folder."""

from __future__ import annotations

import openpyxl
import pandas as pd
import pytest
from conftest import make_parcels, make_points


@pytest.fixture
def classification_dir(tmp_path):
    """Four 100 m × 100 m parcels (15 亩 each) in EPSG:4545; P3 is class 3 with one sample."""
    folder = tmp_path / "cls"
    folder.mkdir()
    parcels = make_parcels(
        [(200 * i, 0, 200 * i + 100, 100) for i in range(4)],
        parcel_id=["P1", "P2", "P3", "P4"], township=["清水镇", "清水镇", "华侨管理区", "华侨管理区"],
        final_class=[1, 2, 3, None], area_mu=[15.0, 15.0, 15.0, 15.0],
        rule=["points:majority"] * 3 + ["unclassified:too_far"],
        qa_flags=["", "single_point_unit", "", ""])
    samples = make_points([(450, 50)], sample_id=["S1"], usable=[True])
    crops = make_points([(250, 50)] * 2, sample_id=["C1", "C2"], crop=["rice", "rice"],
                        cd=[0.5, 0.1], crop_grade=[3, 1], parcel_id=["P2", "P2"],
                        year=[2024, 2024], exceeds=[True, False])
    for layer, frame in (("parcels", parcels), ("samples", samples), ("crops", crops)):
        frame.to_file(folder / "classification.gpkg", layer=layer, driver="GPKG")
    pd.DataFrame({"parcel_id": ["P3"], "measure_type": ["fallow"], "year": [2024]}).to_csv(
        tmp_path / "measures.csv", index=False)
    return folder


def test_cli_writes_workbook_html_and_charts(cli, tmp_path, classification_dir):
    out = tmp_path / "out"
    args = ["report", classification_dir, "--measures", tmp_path / "measures.csv", "-o", out]
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["charts", "report.html", "report.xlsx"]
    assert sorted(p.name for p in (out / "charts").iterdir()) == ["class_area.png", "rate.png"]
    wb = openpyxl.load_workbook(out / "report.xlsx")
    assert wb.sheetnames == ["类别面积 Class area", "安全利用率 Rate", "缺口地块 Gap parcels",
                             "严格管控区 Zones", "农产品超标 Crop exceedances", "质量检查 QA flags",
                             "图表 Charts"]
    # P3 (class 3, fallow) controlled, P2 (class 2) no measure: 15 / 30 = 50 %
    assert wb["安全利用率 Rate"]["A1"].value.startswith("全县受污染耕地安全利用率 50.0 %")
    assert wb["农产品超标 Crop exceedances"]["A3"].value == "C1"
    assert wb["农产品超标 Crop exceedances"]["A4"].value is None
    assert wb["质量检查 QA flags"]["A3"].value == "P2"
    assert wb["严格管控区 Zones"]["A3"].value == "SC001"
    again = cli(*args)  # OutputExistsError: one line on stderr, exit code 2
    assert again.exit_code == 2 and "report.xlsx: output already exists" in again.stderr
    assert cli(*args, "--overwrite", "--lang", "en").exit_code == 0
    assert openpyxl.load_workbook(out / "report.xlsx").sheetnames[0] == "Class area"
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []
    no_rate = cli("report", classification_dir, "-o", out, "--overwrite")
    assert no_rate.exit_code == 0, no_rate.output
    assert [p.name for p in (out / "charts").iterdir()] == ["class_area.png"]  # stale rate.png gone
    assert "安全利用率 Rate" not in openpyxl.load_workbook(out / "report.xlsx").sheetnames


def test_a_fixed_nugget_is_said_in_the_variogram_legend(cli, tmp_path, classification_dir,
                                                        monkeypatch):
    # [interpolation] nugget = "measurement": the report must not present the nugget as
    # fitted; the legend of every variogram chart says it was fixed
    import json

    from matplotlib.axes import Axes

    from farmland.report.tables import load_tables

    manifest = {"rules": {"values": {"interpolation": {"nugget": "measurement"}}}}
    (classification_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert load_tables(classification_dir, None)["nugget_fixed"] is True
    (classification_dir / "manifest.json").write_text("{}", encoding="utf-8")
    assert load_tables(classification_dir, None)["nugget_fixed"] is False

    import numpy as np

    from farmland.geostats.variogram import VariogramModel
    from farmland.report import charts

    labels = []
    plot = Axes.plot
    monkeypatch.setattr(Axes, "plot", lambda self, *a, **k: (labels.append(k.get("label")),
                                                             plot(self, *a, **k))[1])
    model = VariogramModel("spherical", 0.0392, 0.9, 4000.0)
    lags = np.array([500.0, 1500.0, 3000.0])
    for fixed in (True, False):
        charts.variogram_chart(lags, model(lags), model, tmp_path / f"v{fixed}.png", "Cd",
                               nugget_fixed=fixed)
    # bilingual where a CJK font is installed (CI installs one), English without
    said = ("块金值取测量误差（固定） nugget fixed at the measurement error"
            if charts.chart_labels("zh").bilingual else "nugget fixed at the measurement error")
    assert labels == ["spherical: nugget 0.0392, sill 0.9, range 4 000 m\n" + said,
                      "spherical: nugget 0.0392, sill 0.9, range 4 000 m"]

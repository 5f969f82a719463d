"""``farmland diff``: two runs of a workspace compared, with the runs of test_diff.py; two
classification folders with their samples layers."""

from __future__ import annotations

import json

import pandas as pd
import pyogrio
from conftest import CRS
from test_diff import (
    CROPS,
    LAYER_COLUMNS,
    LEDGER_A,
    LEDGER_B,
    cause_runs,
    geo,
    ledger,
    manifest,
    run_a,
    run_b,
    sample_layers,
)

from farmland.io.write import write_gpkg_layers
from farmland.runs.workspace import Workspace


def test_cli_diff(cli, tmp_path):
    wsp = tmp_path / "runs.gpkg"
    ws = Workspace(wsp)
    ws.add_run(geo(run_a()), crops=CROPS, manifest={"seed": 0})
    ws.add_run(geo(run_b()), crops=CROPS, manifest={"seed": 0})
    ma, mb = tmp_path / "a.csv", tmp_path / "b.csv"
    ledger(LEDGER_A).to_csv(ma, index=False)
    ledger(LEDGER_B).to_csv(mb, index=False)
    out = tmp_path / "diff"
    res = cli("diff", "R0001", "R0002", "--workspace", wsp,
              "--measures-a", ma, "--measures-b", mb, "-o", out)
    assert res.exit_code == 0, res.output
    # the two rates, labelled; 35/47 - 0.6 = +14.47 pp; 1 - 35/47 = +25.53 pp
    rate_line = "rate A 60.00 % → rate B 100.00 % (+40.00 pp)"
    assert rate_line in res.stdout
    assert "reclassification effect: +14.47 pp" in res.stdout
    assert "measures effect:          +25.53 pp" in res.stdout
    # nothing else that looks like a rate: no other percentage, not the counterfactual
    # 74.47 % (B's classes with A's ledger), no logged 全县 rate
    percent = [line for line in res.output.splitlines() if "%" in line]
    assert len(percent) == 1 and rate_line in percent[0] and "全县" in percent[0]
    assert "74.4" not in res.output
    # changed parcels by cause, and a word on the missing samples layers
    assert "4 parcel(s) changed, by cause" in res.stdout
    assert "(crop_adjustment)" in res.stdout and "(new_parcel)" in res.stdout
    assert "no samples layers" in res.stdout
    changes = pd.read_csv(out / "changes.csv", encoding="utf-8-sig")
    assert changes["parcel_id"].tolist() == ["P1", "P3", "P5", "P6"]
    assert changes["cause"].tolist() == ["crop_adjustment", "removed_parcel", "new_samples",
                                         "new_parcel"]
    assert "crop samples of B: C1 (none exceeds)" in changes["cause_detail"].iloc[0]
    flows = pd.read_csv(out / "flows.csv", encoding="utf-8-sig", index_col=0)
    assert flows.to_numpy().sum() == 87.0
    summary = json.loads((out / "diff.json").read_text("utf-8"))
    assert summary["n_changes"] == 4 and summary["rate_b"] == 1.0
    assert summary["changes_by_cause"]["new_samples"] == 1
    # the map layer: changed parcels with B's geometry, or A's for the removed one
    info = pyogrio.read_info(out / "changes.gpkg", layer="changes")
    assert list(info["fields"]) == list(LAYER_COLUMNS)
    assert info["crs"] == CRS and info["features"] == 4
    layer = pyogrio.read_dataframe(out / "changes.gpkg", layer="changes")
    assert layer.set_index("parcel_id")["flow"].to_dict() == {
        "P1": "2→1", "P3": "3→absent", "P5": "unclassified→2", "P6": "absent→3"}
    assert not layer.geometry.isna().any()
    again = cli("diff", "R0001", "R0001", "--workspace", wsp, "-o", out, "--overwrite")
    assert again.exit_code == 0, again.output
    assert "0 parcel(s) changed" in again.stdout
    assert pyogrio.read_info(out / "changes.gpkg", layer="changes")["features"] == 0


def test_cli_diff_of_classification_folders_names_new_samples(cli, tmp_path):
    a, b = cause_runs()
    sa, sb = sample_layers()
    for name, parcels, samples, sha in (("a", a, sa, "a" * 64), ("b", b, sb, "a" * 64)):
        (tmp_path / name).mkdir()
        write_gpkg_layers(tmp_path / name / "classification.gpkg",
                          {"parcels": parcels, "samples": samples})
        (tmp_path / name / "manifest.json").write_text(json.dumps(manifest(sha)), "utf-8")
    out = tmp_path / "diff"
    res = cli("diff", tmp_path / "a", tmp_path / "b", "-o", out)
    assert res.exit_code == 0, res.output
    assert "no samples layers" not in res.stdout
    changes = pd.read_csv(out / "changes.csv", encoding="utf-8-sig").set_index("parcel_id")
    assert changes.loc["P0", "cause_detail"].startswith("new samples S9 (new in run B)")
    assert "S9 (140 m), S10 (550 m)" in changes.loc["P2", "cause_detail"]
    assert json.loads((out / "diff.json").read_text("utf-8"))["samples_layers"] is True

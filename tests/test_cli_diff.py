"""``farmland diff``: two runs of a workspace compared, with the runs of test_diff.py."""

from __future__ import annotations

import json

import pandas as pd
from test_diff import LEDGER_A, LEDGER_B, geo, ledger, run_a, run_b

from farmland.runs.workspace import Workspace


def test_cli_diff(cli, tmp_path):
    wsp = tmp_path / "runs.gpkg"
    ws = Workspace(wsp)
    ws.add_run(geo(run_a()), manifest={"seed": 0})
    ws.add_run(geo(run_b()), manifest={"seed": 0})
    ma, mb = tmp_path / "a.csv", tmp_path / "b.csv"
    ledger(LEDGER_A).to_csv(ma, index=False)
    ledger(LEDGER_B).to_csv(mb, index=False)
    out = tmp_path / "diff"
    res = cli("diff", "R0001", "R0002", "--workspace", wsp,
              "--measures-a", ma, "--measures-b", mb, "-o", out)
    assert res.exit_code == 0, res.output
    assert "rate A 60.00 % -> rate B 100.00 %" in res.stdout
    # 35/47 - 0.6 = +14.47 pp; 1 - 35/47 = +25.53 pp
    assert "reclassification effect 类别调整影响: +14.47 pp" in res.stdout
    assert "+25.53 pp" in res.stdout
    changes = pd.read_csv(out / "changes.csv", encoding="utf-8-sig")
    assert changes["parcel_id"].tolist() == ["P1", "P3", "P5", "P6"]
    flows = pd.read_csv(out / "flows.csv", encoding="utf-8-sig", index_col=0)
    assert flows.to_numpy().sum() == 87.0
    summary = json.loads((out / "diff.json").read_text("utf-8"))
    assert summary["n_changes"] == 4 and summary["rate_b"] == 1.0
    again = cli("diff", "R0001", "R0001", "--workspace", wsp, "-o", out, "--overwrite")
    assert again.exit_code == 0
    assert "0 parcel(s) changed" in again.stdout

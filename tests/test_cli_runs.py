"""``farmland runs``: the runs kept in a workspace, with the parcels of test_workspace.py."""

from __future__ import annotations

from test_workspace import MANIFEST, run_parcels

from farmland.runs.workspace import Workspace


def test_cli_runs(cli, tmp_path):
    path = tmp_path / "runs.gpkg"
    empty = cli("runs", path)
    assert empty.exit_code == 2
    assert "workspace not found" in empty.stderr
    ws = Workspace(path)
    ws.add_run(run_parcels(), manifest=MANIFEST, label="首轮")
    ws.add_run(run_parcels(classes=(1, 3, 2, 1)), manifest=MANIFEST, label="加密后")
    res = cli("runs", path)
    assert res.exit_code == 0, res.output
    assert "R0001" in res.stdout and "R0002" in res.stdout and "加密后" in res.stdout
    assert "2 run(s)" in res.stdout

"""``farmland runs``: list, relabel and delete the runs kept in a workspace (with the parcels
of test_workspace.py), and ``farmland classify --overwrite`` replacing its own run."""

from __future__ import annotations

import shutil
from pathlib import Path

from test_workspace import MANIFEST, run_parcels

from farmland.runs.workspace import Workspace

BAD = Path(__file__).resolve().parent / "data" / "bad"


def two_runs(path):
    ws = Workspace(path)
    ws.add_run(run_parcels(), manifest=MANIFEST, label="首轮")
    ws.add_run(run_parcels(classes=(1, 3, 2, 1)), manifest=MANIFEST, label="加密后")
    return ws


def test_cli_runs(cli, tmp_path):
    path = tmp_path / "runs.gpkg"
    empty = cli("runs", path)
    assert empty.exit_code == 2
    assert "workspace not found" in empty.stderr
    two_runs(path)
    res = cli("runs", path)           # the form from before the subcommands: lists
    assert res.exit_code == 0, res.output
    assert "R0001" in res.stdout and "R0002" in res.stdout and "加密后" in res.stdout
    assert "2 run(s)" in res.stdout
    listed = cli("runs", "list", path)
    assert listed.exit_code == 0 and listed.stdout == res.stdout


def test_cli_runs_help_shows_the_subcommands(cli):
    res = cli("runs", "--help")
    assert res.exit_code == 0
    commands = res.stdout.split("Commands:")[1]
    assert [line.split()[0] for line in commands.strip().splitlines()] == [
        "delete", "label", "list"]
    assert "farmland runs WORKSPACE is short for" in res.stdout
    assert "relabel or delete" in cli("--help").stdout


def test_cli_runs_label(cli, tmp_path):
    path = tmp_path / "runs.gpkg"
    ws = two_runs(path)
    res = cli("runs", "label", path, "R0002", "2024 加密 re-sampling")
    assert res.exit_code == 0, res.output
    assert res.stdout.strip().splitlines() == [
        f"R0002: label '加密后' -> '2024 加密 re-sampling' in {path}"]
    assert ws.runs()["label"].tolist() == ["首轮", "2024 加密 re-sampling"]
    assert "2024 加密 re-sampling" in cli("runs", path).stdout
    bad = cli("runs", "label", path, "R0007", "x")
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert bad.stderr.strip().splitlines() == [(
        f"farmland: error: {path}: no run 'R0007' in the workspace (got 'R0007'). Fix: use "
        f"one of: R0001, R0002 (farmland runs {path} lists them)")]
    missing = cli("runs", "label", tmp_path / "none.gpkg", "R0001", "x")
    assert missing.exit_code == 2 and "workspace not found" in missing.stderr
    assert "Fix: create it with farmland classify" in missing.stderr


def test_cli_runs_delete(cli, tmp_path):
    path = tmp_path / "runs.gpkg"
    ws = two_runs(path)
    created = ws.runs()["created"][0][:16].replace("T", " ")
    res = cli("runs", "delete", path, "R0001")
    assert res.exit_code == 0, res.output
    assert res.stdout.strip().splitlines() == [
        f"deleted R0001 '首轮' (created {created} UTC, 4 parcels) from {path}"]
    assert ws.runs()["run_id"].tolist() == ["R0002"]
    again = cli("runs", "delete", path, "R0001")          # refuses a run that is not there
    assert again.exit_code == 2
    assert "no run 'R0001' in the workspace" in again.stderr and "use one of: R0002" in (
        again.stderr)
    assert "1 run(s)" in cli("runs", path).stdout
    ws.add_run(run_parcels(), manifest=MANIFEST)
    assert ws.runs()["run_id"].tolist() == ["R0002", "R0003"]    # R0001 is not reused
    missing = cli("runs", "delete", tmp_path / "none.gpkg", "R0001")
    assert missing.exit_code == 2 and "workspace not found" in missing.stderr


def test_classify_overwrite_replaces_its_own_run(cli, tmp_path):
    """A rerun into the same output folder keeps the run id; another folder adds a run."""
    for part in BAD.glob("parcels_gbk_no_cpg.*"):
        shutil.copy(part, tmp_path / f"parcels{part.suffix}")
    shutil.copy(BAD / "base" / "samples.gpkg", tmp_path / "samples.gpkg")

    def classify(out, *extra):
        res = cli("-q", "classify", "--parcels", tmp_path / "parcels.shp", "--samples",
                  tmp_path / "samples.gpkg", "--interpolator", "idw", "-o", out,
                  "--workspace", tmp_path / "ws.gpkg", *extra)
        assert res.exit_code == 0, res.output
        return res.stdout.splitlines()[0]

    ws = Workspace(tmp_path / "ws.gpkg")
    assert classify(tmp_path / "2023", "--label", "详查") == f"run R0001 added to {ws.path}"
    assert classify(tmp_path / "2024") == f"run R0002 added to {ws.path}"
    assert classify(tmp_path / "2023" / ".." / "2023", "--overwrite") == (
        f"run R0001 replaced in {ws.path}")
    runs = ws.runs()
    assert runs["run_id"].tolist() == ["R0001", "R0002"]
    assert runs["output"].tolist() == ["2023", "2024"] and runs["label"][0] == "详查"
    assert classify(tmp_path / "2023", "--overwrite", "--label", "重算") == (
        f"run R0001 replaced in {ws.path}")
    assert ws.runs()["label"].tolist() == ["重算", ""]
    assert classify(tmp_path / "2023b", "--overwrite") == f"run R0003 added to {ws.path}"

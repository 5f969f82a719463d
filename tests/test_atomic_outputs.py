"""Outputs are all-or-nothing, never replaced without ``--overwrite``; inputs are never touched.

Runs the real CLI (``click.testing.CliRunner``) on the valid base dataset of
``tests/data/bad/base`` (4 parcels, 6 samples, EPSG:4545), copied into ``tmp_path``
so that every input file can be hashed before and after.
"""

from __future__ import annotations

import errno
import hashlib
import shutil
from pathlib import Path

import pyogrio
import pytest
from click.testing import CliRunner

from farmland.cli import main
from farmland.runs.workspace import Workspace

BAD = Path(__file__).resolve().parent / "data" / "bad"
BASE = BAD / "base"
OUTPUTS = ["classification.gpkg", "crossval.csv", "crossval_samples.csv", "manifest.json",
           "outliers.csv", "summary.csv"]
CROPS = ("样品编号,X,Y,作物,镉,铅,年份\n"
         "C1,620310,2722110,稻谷,0.10,0.05,2023\n"
         "C2,620320,2722120,稻谷,0.12,0.05,2023\n"
         "C3,620330,2722130,稻谷,0.15,0.05,2023\n")


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """A folder of valid inputs: a GBK shapefile without .cpg, CSVs, rules, mapping."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    for part in BAD.glob("parcels_gbk_no_cpg.*"):
        shutil.copy(part, folder / f"parcels{part.suffix}")
    for name in ("samples.csv", "samples.gpkg", "measures.csv"):
        shutil.copy(BASE / name, folder / name)
    (folder / "crops.csv").write_text(CROPS, encoding="utf-8")
    (folder / "rules.toml").write_text("[interpolation]\nmax_distance_m = 800.0\n",
                                       encoding="utf-8")
    (folder / "mapping.toml").write_text('"作物" = "crop"\n', encoding="utf-8")
    return folder


def _snapshot(folder: Path) -> dict[str, str]:
    """Relative path → SHA-256 of every file below ``folder`` (hidden ones included)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _classify(inputs: Path, out: Path, *extra: str, samples: Path | None = None) -> list[str]:
    return ["classify", "--parcels", str(inputs / "parcels.shp"), "--samples",
            str(samples or inputs / "samples.gpkg"), "--interpolator", "idw", "-o", str(out),
            *extra]


def _run(args: list[str]):
    return CliRunner().invoke(main, args)


def _no_temporaries(folder: Path) -> None:
    left = [p for p in folder.rglob("*") if p.name.startswith(".") or ".tmp" in p.name
            or p.name.endswith(".lock")]
    assert left == []


# Failing runs write nothing ------------------------------------------------------------
def test_a_failing_run_leaves_no_output_and_no_temporary_folder(inputs, tmp_path):
    out = tmp_path / "out"
    res = _run(_classify(inputs, out, "--crs", "EPSG:4545",
                         samples=BAD / "samples_non_numeric.csv"))
    assert res.exit_code == 2 and "non-numeric value" in res.stderr
    assert not out.exists() or list(out.iterdir()) == []
    _no_temporaries(tmp_path)


def test_a_failing_run_with_overwrite_keeps_the_previous_outputs(inputs, tmp_path):
    out = tmp_path / "out"
    assert _run(_classify(inputs, out)).exit_code == 0
    before = _snapshot(out)
    assert sorted(before) == OUTPUTS
    res = _run(_classify(inputs, out, "--overwrite", "--crs", "EPSG:4545",
                         samples=BAD / "samples_ph_out_of_range.csv"))
    assert res.exit_code == 2 and "pH outside 0-14" in res.stderr
    assert _snapshot(out) == before
    _no_temporaries(tmp_path)


# --overwrite ---------------------------------------------------------------------------------
def test_overwrite_is_required_to_replace_classification_outputs(inputs, tmp_path):
    out = tmp_path / "out"
    assert _run(_classify(inputs, out)).exit_code == 0
    before = _snapshot(out)
    again = _run(_classify(inputs, out, "--crs", "EPSG:4545", samples=inputs / "samples.csv"))
    assert again.exit_code == 2
    assert again.stderr.strip().splitlines()[-1].startswith("farmland: error: ")
    assert "output already exists" in again.stderr and "--overwrite" in again.stderr
    assert _snapshot(out) == before
    replaced = _run(_classify(inputs, out, "--overwrite", "--crs", "EPSG:4545",
                              samples=inputs / "samples.csv"))
    assert replaced.exit_code == 0, replaced.output
    assert sorted(_snapshot(out)) == OUTPUTS
    assert _snapshot(out)["manifest.json"] != before["manifest.json"]  # samples.csv now
    _no_temporaries(tmp_path)


def test_overwrite_is_required_to_replace_rate_outputs(inputs, tmp_path):
    run, out = tmp_path / "run", tmp_path / "rate"
    assert _run(_classify(inputs, run)).exit_code == 0
    rate = ["rate", str(run), "--measures", str(inputs / "measures.csv"), "-o", str(out)]
    assert _run(rate).exit_code == 0
    before = _snapshot(out)
    again = _run(rate)
    assert again.exit_code == 2 and "output already exists" in again.stderr
    assert _snapshot(out) == before
    assert _run([*rate, "--overwrite"]).exit_code == 0


# Inputs are read-only -------------------------------------------------------------------------
def test_inputs_are_byte_identical_after_classify_and_rate(inputs, tmp_path):
    before = _snapshot(inputs)
    assert {"parcels.shp", "parcels.dbf", "parcels.shx", "parcels.prj"} <= set(before)
    run = tmp_path / "run"
    res = _run(_classify(inputs, run, "--crs", "EPSG:4545", "--crops",
                         str(inputs / "crops.csv"), "--rules", str(inputs / "rules.toml"),
                         "--mapping", str(inputs / "mapping.toml"), "--workspace",
                         str(tmp_path / "ws.gpkg"), samples=inputs / "samples.csv"))
    assert res.exit_code == 0, res.output
    rate = _run(["rate", str(run), "--measures", str(inputs / "measures.csv"), "-o",
                 str(tmp_path / "rate")])
    assert rate.exit_code == 0, rate.output
    assert _snapshot(inputs) == before  # same files (no .cpg/.qix added), same bytes


# A failure while writing -----------------------------------------------------------------------
def _failing_writer(monkeypatch, *, fail_on: str) -> list[str]:
    """Make ``pyogrio.write_dataframe`` raise ENOSPC when it reaches layer ``fail_on``."""
    real, calls = pyogrio.write_dataframe, []

    def write(df, path, layer=None, **kw):
        calls.append(layer)
        if layer == fail_on:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(df, path, layer=layer, **kw)

    monkeypatch.setattr(pyogrio, "write_dataframe", write)
    return calls


def test_a_failure_after_the_first_layer_keeps_the_old_outputs(inputs, tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert _run(_classify(inputs, out)).exit_code == 0
    before = _snapshot(out)
    calls = _failing_writer(monkeypatch, fail_on="samples")
    res = _run(_classify(inputs, out, "--overwrite", "--crs", "EPSG:4545",
                         samples=BAD / "samples_outside_parcels.csv"))
    assert calls == ["parcels", "samples"]  # the parcels layer had been written
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert res.stderr.strip().splitlines()[-1].startswith("farmland: error: ")
    assert "cannot write the output (No space left on device)" in res.stderr
    assert _snapshot(out) == before
    _no_temporaries(tmp_path)


def test_a_failed_workspace_append_leaves_the_workspace_unchanged(inputs, tmp_path,
                                                                  monkeypatch):
    ws = tmp_path / "ws.gpkg"
    first = _run(_classify(inputs, tmp_path / "r1", "--workspace", str(ws)))
    assert first.exit_code == 0 and "run R0001 added" in first.output
    before = ws.read_bytes()
    calls = _failing_writer(monkeypatch, fail_on="runs")  # parcels appended, runs row fails
    res = _run(_classify(inputs, tmp_path / "r2", "--workspace", str(ws)))
    assert res.exit_code != 0
    # r2 outputs (with their QGIS style table), then the append
    assert calls == ["parcels", "samples", "layer_styles", "parcels", "runs"]
    assert ws.read_bytes() == before
    assert list(Workspace(ws).runs()["run_id"]) == ["R0001"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["ws.gpkg"]


def test_a_locked_workspace_is_refused_and_left_unchanged(inputs, tmp_path):
    ws = tmp_path / "ws.gpkg"
    assert _run(_classify(inputs, tmp_path / "r1", "--workspace", str(ws))).exit_code == 0
    before = ws.read_bytes()
    lock = tmp_path / "ws.gpkg.lock"
    lock.write_text("12345")
    res = _run(_classify(inputs, tmp_path / "r2", "--workspace", str(ws)))
    assert res.exit_code == 2 and "being written by another farmland process" in res.stderr
    assert ws.read_bytes() == before and lock.read_text() == "12345"


# A read-only output folder is refused before any work ----------------------------------------

@pytest.mark.parametrize("command", [
    ["rate", "NO_SUCH_RUN", "--measures", str(BASE / "measures.csv")],
    ["diff", "NO_SUCH_RUN_A", "NO_SUCH_RUN_B"],
])
def test_a_read_only_output_folder_is_refused_before_reading_anything(monkeypatch, tmp_path,
                                                                      command):
    """The runs named do not exist: the read-only folder is reported, not the missing run,
    so the check comes before any input is read (rate and diff used to compute first)."""
    import os

    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: (not mode & os.W_OK and real(p, mode))
                        if str(p) == str(ro) else real(p, mode))
    res = CliRunner().invoke(main, [*command, "-o", str(ro / "out")])
    assert res.exit_code == 2, res.output
    assert res.output.strip().splitlines()[-1] == (
        f"farmland: error: {ro / 'out'}: cannot write the output (the folder {ro} is "
        "read-only). Fix: check the free disk space and the write permission of the folder; "
        "nothing was replaced")
    assert not (ro / "out").exists()


def test_an_output_folder_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "out").write_text("not a folder")
    res = CliRunner().invoke(main, ["rate", "NO_SUCH_RUN", "--measures", str(BASE / "measures.csv"),
                                    "-o", str(tmp_path / "out" / "sub")])
    assert res.exit_code == 2, res.output
    assert f"{tmp_path / 'out'} is a file, not a folder" in res.output

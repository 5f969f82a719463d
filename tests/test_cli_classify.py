"""`farmland classify` options: --scheduler without the dask extra, --variograms."""

from __future__ import annotations

import sys

from conftest import make_parcels, make_samples, run_cli

DASK_MESSAGE = ("farmland: error: classifying on dask (--scheduler) needs the optional 'dask' "
                "extra, which is not installed. Fix: pip install \"farmland[dask]\" (or pip "
                "install \"dask[distributed]\"), or leave out --scheduler to classify in this "
                "process")


def test_cli_scheduler_without_dask_is_one_line_before_any_work(monkeypatch, tmp_path):
    """`farmland classify --scheduler local` without the extra (dask made unimportable):
    exit code 2, one line on stderr with the pip command, no traceback, no output."""
    for name in [m for m in sys.modules if m == "dask" or m.startswith(("dask.", "distributed"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "dask", None)          # import dask -> ModuleNotFoundError
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    make_parcels(n=2).to_file(tmp_path / "p.gpkg", layer="DLTB")
    soil = make_samples([(50, 50), (150, 50)])
    soil.assign(x=soil.geometry.x, y=soil.geometry.y).drop(columns="geometry").to_csv(
        tmp_path / "soil.csv", index=False)
    res = run_cli("classify", "--parcels", tmp_path / "p.gpkg", "--samples", tmp_path / "soil.csv",
                  "--crs", "EPSG:4545", "--scheduler", "local", "-o", tmp_path / "out")
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [DASK_MESSAGE]
    assert "Traceback" not in res.output and not (tmp_path / "out").exists()


def _tiny_county(tmp_path):
    make_parcels(n=2).to_file(tmp_path / "p.gpkg", layer="DLTB")
    soil = make_samples([(50, 50), (150, 50)])
    soil.assign(x=soil.geometry.x, y=soil.geometry.y).drop(columns="geometry").to_csv(
        tmp_path / "soil.csv", index=False)
    return ["classify", "--parcels", tmp_path / "p.gpkg", "--samples", tmp_path / "soil.csv",
            "--crs", "EPSG:4545", "--interpolator", "idw"]


def test_a_read_only_workspace_is_refused_before_any_work(monkeypatch, tmp_path):
    import os

    ws = tmp_path / "runs.gpkg"
    ws.write_bytes(b"")
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: (not mode & os.W_OK and real(p, mode))
                        if str(p) == str(ws) else real(p, mode))   # readable, not writable
    res = run_cli(*_tiny_county(tmp_path), "--workspace", ws, "-o", tmp_path / "out")
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [(
        f"farmland: error: {ws}: cannot write the output (the workspace file is read-only). Fix: "
        "check the free disk space and the write permission of the folder; nothing was replaced")]
    assert not (tmp_path / "out").exists()


def test_a_workspace_in_a_read_only_folder_is_refused_before_any_work(monkeypatch, tmp_path):
    import os

    folder = tmp_path / "history"
    folder.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: (not mode & os.W_OK and real(p, mode))
                        if str(p) == str(folder) else real(p, mode))
    res = run_cli(*_tiny_county(tmp_path), "--workspace", folder / "runs.gpkg",
                  "-o", tmp_path / "out")
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [(
        f"farmland: error: {folder}: cannot write the output (the folder {folder} is "
        "read-only). Fix: check the free disk space and the write permission of the folder; "
        "nothing was replaced")]
    assert not (tmp_path / "out").exists() and not (folder / "runs.gpkg").exists()


def test_a_run_the_workspace_refuses_leaves_no_unrecorded_outputs(monkeypatch, tmp_path):
    """The workspace fails after the outputs were written (disk full, say): a new output
    folder is removed with the run, an existing one is said to hold the unrecorded run."""
    from farmland.errors import OutputError
    from farmland.runs.workspace import Workspace

    def refuse(self, *args, **kwargs):
        raise OutputError(self.path, "No space left on device")

    monkeypatch.setattr(Workspace, "add_run", refuse)
    ws = tmp_path / "runs.gpkg"
    res = run_cli(*_tiny_county(tmp_path), "--workspace", ws, "-o", tmp_path / "out")
    assert res.exit_code == 2
    assert (f"{ws}: cannot write the output (No space left on device; the run was not added, "
            f"and its outputs in {tmp_path / 'out'} were removed)") in res.stderr
    assert not (tmp_path / "out").exists()
    (tmp_path / "kept").mkdir()
    res = run_cli(*_tiny_county(tmp_path), "--workspace", ws, "-o", tmp_path / "kept",
                  "--overwrite")
    assert res.exit_code == 2
    assert "were written, the run was not added: run again with --overwrite" in res.stderr
    assert (tmp_path / "kept" / "classification.gpkg").is_file()

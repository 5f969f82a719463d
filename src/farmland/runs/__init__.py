"""Runs: the classification pipeline, the run folder, the workspace that keeps every run,
and the comparison of two runs."""

from farmland.runs.diff import DiffResult, diff_runs
from farmland.runs.folder import load_classification, open_run, read_classification, read_manifest
from farmland.runs.workspace import Workspace

__all__ = ["DiffResult", "Workspace", "diff_runs", "load_classification", "open_run",
           "read_classification", "read_manifest"]

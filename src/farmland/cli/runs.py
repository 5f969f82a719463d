"""``farmland runs``: list, relabel and delete the classification runs kept in a workspace.

``farmland runs WORKSPACE`` (the form before the subcommands existed) still lists.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from farmland.cli.output import console
from farmland.errors import InputError

workspace_argument = click.argument("workspace", type=click.Path(dir_okay=False))
run_argument = click.argument("run_id", metavar="RUN")


class RunsGroup(click.Group):
    """A group that reads ``farmland runs WORKSPACE`` as ``farmland runs list WORKSPACE``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["list", *args]
        return super().parse_args(ctx, args)


@click.group("runs", cls=RunsGroup,
             short_help="List, relabel or delete the runs kept in a workspace.")
def command():
    """The runs of a run-history GeoPackage (farmland classify --workspace FILE.gpkg).

    farmland runs WORKSPACE is short for farmland runs list WORKSPACE. Run ids are never
    reused: after deleting R0002 the next run is still R0004 if R0003 existed.
    """


@command.command("list", short_help="List the runs, oldest first, with class areas.")
@workspace_argument
def list_runs(workspace):
    """List the runs of WORKSPACE, oldest first, with the class areas in 亩."""
    from farmland.runs.workspace import Workspace

    _require(workspace)
    runs = Workspace(workspace).runs()
    if runs.empty:
        click.echo(f"{workspace}: no runs yet")
        return
    t = Table(title=f"运行记录 / Runs in {escape(str(workspace))}",
              caption="面积 亩 / areas in mu: 1 优先保护 priority protection, 2 安全利用 safe "
                      "utilisation, 3 严格管控 strict control; created in UTC")
    cols = [("run_id", "Run"), ("created", "Created"), ("label", "Label"),
            ("n_parcels", "Parcels"), ("class1_mu", "1"), ("class2_mu", "2"),
            ("class3_mu", "3"), ("unclassified_mu", "未分类"), ("total_mu", "合计")]
    for col, title in cols:
        t.add_column(title, justify="right" if col.endswith(("_mu", "parcels")) else "left",
                     no_wrap=col != "label", overflow="fold",
                     min_width=12 if col == "label" else None)
    for r in runs.to_dict(orient="records"):
        r["created"] = _minutes(r["created"])
        t.add_row(*[f"{r[c]:,.1f}" if c.endswith("_mu") else escape(_text(r[c]))
                    for c, _ in cols])
    console.print(t)
    click.echo(f"{len(runs)} run(s)")


@command.command("label", short_help="Give a run a new label.")
@workspace_argument
@run_argument
@click.argument("label")
def label_run(workspace, run_id, label):
    """Give run RUN of WORKSPACE the label LABEL (quote it if it has spaces)."""
    from farmland.runs.workspace import Workspace

    _require(workspace)
    old = Workspace(workspace).relabel(run_id, label)
    click.echo(f"{run_id}: label {old!r} -> {label!r} in {workspace}")


@command.command("delete", short_help="Delete a run (its id is not used again).")
@workspace_argument
@run_argument
def delete_run(workspace, run_id):
    """Delete run RUN from WORKSPACE (no question asked; its id is not used again).

    Removes the run's parcels and crop samples, and the parcel shapes no other run uses.
    The run's output folder is left as it is.
    """
    from farmland.runs.workspace import Workspace

    _require(workspace)
    row = Workspace(workspace).delete_run(run_id)
    label = _text(row["label"])
    click.echo(f"deleted {row['run_id']} {repr(label) if label else '(no label)'} (created "
               f"{_minutes(row['created'])} UTC, {int(row['n_parcels'])} parcels) from "
               f"{workspace}")


def _require(workspace: str) -> None:
    if not Path(workspace).is_file():
        raise InputError("workspace not found", file=workspace,
                         fix="create it with farmland classify ... --workspace FILE.gpkg")


def _text(value: object) -> str:
    import pandas as pd

    return "" if pd.isna(value) else str(value)


def _minutes(created: object) -> str:
    return str(created)[:16].replace("T", " ")   # minutes are enough here

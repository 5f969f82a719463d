"""``farmland runs``: list the classification runs kept in a workspace."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from farmland.cli.output import console
from farmland.errors import InputError


@click.command("runs")
@click.argument("workspace", type=click.Path(dir_okay=False))
def command(workspace):
    """List the runs of WORKSPACE (a run-history GeoPackage), oldest first, with the
    class areas in 亩."""
    from farmland.runs.workspace import Workspace

    if not Path(workspace).is_file():
        raise InputError("workspace not found", file=workspace,
                         fix="create it with farmland classify ... --workspace FILE.gpkg")
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
        r["created"] = str(r["created"])[:16].replace("T", " ")   # minutes are enough here
        t.add_row(*[f"{r[c]:,.1f}" if c.endswith("_mu") else escape(str(r[c] or ""))
                    for c, _ in cols])
    console.print(t)
    click.echo(f"{len(runs)} run(s)")

"""Readable terminal tables shared by the subcommands (rich, to stdout)."""

from __future__ import annotations

import sys

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

#: when stdout is not a terminal (a pipe, a log file, CI) rich would assume 80 columns and
#: cut township names; tables are then laid out for 120 columns
console = Console(soft_wrap=False, width=None if sys.stdout.isatty() else 120)


def print_class_table(summary: pd.DataFrame) -> None:
    """Class area per township (亩) with the county total last."""
    table = Table(title="耕地土壤环境质量类别面积 / Class area by township (亩 mu)")
    cols = [("township", "乡镇 Township", "left"), ("n_parcels", "图斑 Parcels", "right"),
            ("class1_mu", "优先保护 P.prot.", "right"), ("class2_mu", "安全利用 Safe use", "right"),
            ("class3_mu", "严格管控 Strict", "right"),
            ("unclassified_mu", "未分类 Unclass.", "right"), ("total_mu", "合计 Total", "right")]
    for _, title, justify in cols:
        table.add_column(title, justify=justify)
    last = len(summary) - 1
    for i, row in enumerate(summary.itertuples(index=False)):
        values = [escape(str(getattr(row, c))) if c in ("township", "n_parcels")
                  else f"{getattr(row, c):,.1f}" for c, _, _ in cols]
        table.add_row(*values, style="bold" if i == last else None, end_section=i == last - 1)
    console.print(table)

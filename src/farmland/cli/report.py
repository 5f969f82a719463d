"""``farmland report``: Excel workbook, one-file HTML summary and PNG charts of a run.

Thin command: the tables come from :func:`farmland.report.tables.load_tables`, the charts
from :func:`farmland.report.figures.draw_charts`; everything is written into a staging
folder and moved into place only when all files are written.
"""

from __future__ import annotations

from pathlib import Path

import click

from farmland.cli import output_dir_option, overwrite_option


@click.command("report")
@click.argument("classification_dir", type=click.Path(exists=True))
@click.option("--measures", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Measures ledger 措施台账: compute the rate and gap plan here "
                   "(otherwise rate.csv/gap_plan.csv beside the classification are used).")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True,
              help="zh: Chinese with English; en: English only.")
@click.option("--causes", "causes_path", type=click.Path(exists=True), default=None,
              help="Outputs of 'farmland sources' (its folder, sources.gpkg or clusters.csv) "
                   "for the source sheets 污染成因; default: those in CLASSIFICATION_DIR, "
                   "when present.")
@click.option("--county", default=None,
              help="County name for the title (default: the county of the 'farmland run' "
                   "config recorded in the run).")
@output_dir_option()
@overwrite_option
def command(classification_dir, measures, lang, causes_path, county, output, overwrite):
    """Write OUTPUT/report.xlsx, OUTPUT/report.html and OUTPUT/charts/*.png for the
    classification in CLASSIFICATION_DIR (the folder holding classification.gpkg).

    生成 Excel 与 HTML 报告及图表。

    With the outputs of 'farmland sources' (in CLASSIFICATION_DIR, or --causes) the
    workbook gets the source clusters, one sheet per large cluster, and the HTML a
    section on where the contamination comes from.
    """
    from farmland.io.write import atomic_folder, refuse_existing
    from farmland.report.control_sheets import CONTROL_TABLES, add_control_sheets, control_section
    from farmland.report.excel import write_excel_report
    from farmland.report.figures import draw_charts
    from farmland.report.html import write_html_report
    from farmland.report.source_sheets import add_source_sheets, source_section
    from farmland.report.tables import load_tables, report_title, run_notes
    from farmland.runs import folder
    from farmland.runs.folder import run_folder
    from farmland.runs.source_outputs import read_cause_tables

    out = Path(output)
    refuse_existing((out / n for n in folder.REPORT_FILES), overwrite=overwrite)
    tables = load_tables(classification_dir, measures)
    causes = read_cause_tables(causes_path or run_folder(classification_dir),
                               required=causes_path is not None)
    with atomic_folder(out, overwrite=overwrite, expected=folder.REPORT_FILES) as stage:
        charts = draw_charts(tables, stage / folder.CHARTS_DIR, lang)
        excel = {k: v for k, v in tables.items()
                 if k not in ("plan_effect", "crossval_samples", "models", "samples",
                              "nugget_fixed", *CONTROL_TABLES)}
        loop = [tables[k] for k in CONTROL_TABLES]  # farmland control: the closed loop

        def more_sheets(wb):  # the closed loop and farmland sources; one save
            add_control_sheets(wb, *loop, lang=lang)
            add_source_sheets(wb, causes, lang=lang)

        write_excel_report(stage / folder.REPORT_XLSX, **excel, charts=charts, lang=lang,
                           extend=more_sheets)
        title = report_title(run_folder(classification_dir), tables, lang, county=county)
        write_html_report(stage / folder.REPORT_HTML, title=title,
            class_table=tables["class_table"], rate_table=tables["rate_table"],
            gap_plan=tables["gap_plan"], charts=charts, lang=lang,
            extra_sections=[control_section(*loop, lang), source_section(causes, lang)],
            notes=run_notes(run_folder(classification_dir), lang))
    click.echo(f"outputs: {out / folder.REPORT_XLSX}, {out / folder.REPORT_HTML}, "
               f"{out / folder.CHARTS_DIR}")

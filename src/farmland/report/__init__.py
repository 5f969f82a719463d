"""Reports: the Excel workbook, the one-file HTML summary, PNG charts and CJK fonts."""

from farmland.report.excel import write_excel_report
from farmland.report.html import write_html_report

__all__ = ["write_excel_report", "write_html_report"]

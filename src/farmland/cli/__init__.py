"""The ``farmland`` command line: a click group with thin subcommands.

Each subcommand lives in its own module under ``farmland.cli`` and defines one
``click.Command`` named ``command``; :data:`SUBCOMMANDS` registers it. Every
:class:`~farmland.errors.FarmlandError` becomes one line on stderr and exit code 2,
without a traceback. Logs go to stderr, results to stdout.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys

import click

from farmland import __version__
from farmland.errors import FarmlandError

__all__ = ["SUBCOMMANDS", "crs_option", "jobs_option", "main", "output_dir_option",
           "overwrite_option"]

#: name -> (module, one-line help); modules are imported only when the command runs
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("farmland.cli.demo", "Run the whole chain on the bundled demo county."),
    "init": ("farmland.cli.init", "Write a commented config template for 'farmland run'."),
    "run": ("farmland.cli.run", "Run a county job (classify → … → report) from a config file."),
    "classify": ("farmland.cli.classify", "Classify parcels from soil (and crop) samples."),
    "rate": ("farmland.cli.rate", "Safe-utilisation rate per township and county, gap to target."),
    "runs": ("farmland.cli.runs", "List the classification runs kept in a workspace."),
    "diff": ("farmland.cli.diff", "Compare two runs parcel by parcel."),
    "control": ("farmland.cli.control", "Strict-control closed loop, product zones, grain lots."),
    "flag": ("farmland.cli.flag", "Flag sparse data, uncertain parcels and strict-control zones."),
    "plan": ("farmland.cli.plan", "Plan new soil sampling points for a field team."),
    "sources": ("farmland.cli.sources", "Contaminated clusters and their candidate sources."),
    "map": ("farmland.cli.map", "Write a self-contained interactive HTML map."),
    "report": ("farmland.cli.report", "Excel workbook, HTML summary and charts of a classification."),
    "validate": ("farmland.cli.validate", "Score the classes on truth-known synthetic counties."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (fast ``--help``)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, (mod, _) in SUBCOMMANDS.items() if _importable(mod)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUBCOMMANDS or not _importable(SUBCOMMANDS[cmd_name][0]):
            return None
        command = importlib.import_module(SUBCOMMANDS[cmd_name][0]).command
        command.short_help = command.short_help or SUBCOMMANDS[cmd_name][1]
        return command

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FarmlandError as exc:
            click.echo(f"farmland: error: {exc}", err=True)
            ctx.exit(2)


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="farmland")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors; no progress bars.")
@click.pass_context
def main(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """farmland: classify farmland by soil contamination (GB 15618-2018), track the
    safe-utilisation rate against its target, and plan re-sampling.

    耕地土壤环境质量类别划分、安全利用率核算与加密采样布点。
    """
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr, force=True)
    for noisy in ("pyogrio", "fiona", "rasterio", "matplotlib", "PIL", "numexpr"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    ctx.ensure_object(dict)
    ctx.obj["quiet"] = quiet


# Shared options (define once, reuse in every subcommand) -------------------------
def output_dir_option(**kw):
    """``-o/--output`` folder option."""
    return click.option("-o", "--output", "output", type=click.Path(file_okay=False),
                        required=kw.get("required", True), help=kw.get("help", "Output folder."))


overwrite_option = click.option("--overwrite", is_flag=True,
                                help="Replace outputs that already exist.")
def _known_crs(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--crs`` as given, once pyproj knows it (else one line naming the option)."""
    if value is not None:
        from farmland.crs import parse_crs
        from farmland.errors import CRSError

        try:
            parse_crs(value)
        except CRSError as exc:
            raise CRSError(f"--crs: {exc.problem}", value=value, fix=exc.fix) from None
    return value


crs_option = click.option("--crs", default=None, callback=_known_crs,
                          help="CRS of inputs that carry none (e.g. EPSG:4545 or 4490).")
#: commands that run a chain of steps (``farmland demo``, ``farmland run``;
#: :func:`farmland.cli.parallel.default_jobs`)
jobs_option = click.option(
    "--jobs", type=click.IntRange(1, 2), default=None,
    help="Steps at a time: 2 runs a second process beside this one where a step does not "
         "read another's outputs; 1 runs them one after another. [default: 2 on a machine "
         "with two or more cores]")

"""``farmland init``: write a commented config template for ``farmland run``.

When ``data/demo`` (the bundled demo county) is under the current folder, the
template's inputs point at it, relative to the folder the template is written to, so
``farmland init && farmland run farmland.toml`` runs the demo county as is. Elsewhere
the inputs are ``path/to/…`` placeholders, which ``farmland run`` refuses until they
are replaced.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import click

from farmland.cli import overwrite_option
from farmland.cli.config import toml_value

TEMPLATE_RESOURCE = "config_template.toml"
#: demo county file per template token (under ``data/demo``)
DEMO_FILES: dict[str, str | list[str]] = {
    "PARCELS": "parcels.gpkg", "SOIL": ["soil_samples.csv"], "CROPS": ["crop_samples.csv"],
    "MEASURES": "measures_2023.csv", "SOURCES": "pollution_sources.geojson",
    "TOWNSHIPS": "townships.gpkg", "CLOSED_LOOP": "strict_control_2023.csv",
    "RIVERS": "rivers.gpkg", "GEOLOGY": "geology.gpkg", "WIND": "wind_rose.csv"}
DEMO_VALUES = {"LAYER": "DLTB", "CRS": "EPSG:4545", "NAME": "示范县 demo county",
               "COUNTY": "示范县"}
PLACEHOLDERS: dict[str, str | list[str]] = {
    "PARCELS": "path/to/parcels.gpkg", "SOIL": ["path/to/soil_samples.csv"],
    "CROPS": ["path/to/crop_samples.csv"], "MEASURES": "path/to/measures.xlsx",
    "SOURCES": "path/to/pollution_sources.csv", "TOWNSHIPS": "path/to/townships.shp",
    "CLOSED_LOOP": "", "RIVERS": "", "GEOLOGY": "", "WIND": "", "LAYER": "", "CRS": "",
    "NAME": "县级耕地类别划分 county job", "COUNTY": ""}


def template_text() -> str:
    """The packaged template with its ``@TOKEN@`` markers."""
    return resources.files("farmland.cli").joinpath(TEMPLATE_RESOURCE).read_text(encoding="utf-8")


def render_template(*, data_dir: str | None) -> str:
    """The config template as TOML text.

    Parameters
    ----------
    data_dir
        Folder of the demo county relative to the config file's folder (posix
        separators), or ``None`` for ``path/to/…`` placeholders.
    """
    if data_dir is None:
        tokens = PLACEHOLDERS
    else:
        d = data_dir.rstrip("/") or "."
        tokens = {k: [f"{d}/{x}" for x in v] if isinstance(v, list) else f"{d}/{v}"
                  for k, v in DEMO_FILES.items()} | DEMO_VALUES
    text = template_text()
    for token, value in tokens.items():
        text = text.replace(f"@{token}@", toml_value(value))
    return text


def demo_data_dir(target: Path, cwd: Path | None = None) -> str | None:
    """``data/demo`` under ``cwd`` relative to the folder of ``target`` (posix), or
    ``None`` when the demo county is not there."""
    demo = Path(cwd or Path.cwd()).resolve() / "data" / "demo"
    if not (demo / str(DEMO_FILES["PARCELS"])).is_file():
        return None
    return Path(os.path.relpath(demo, Path(target).resolve().parent)).as_posix()


@click.command("init")
@click.argument("path", type=click.Path(dir_okay=False), default="farmland.toml",
                required=False)
@overwrite_option
def command(path, overwrite):
    """Write PATH (default farmland.toml): a commented config of a county job for
    'farmland run'. 写出县级工作配置模板（中英文注释）。

    Inside the farmland repository (data/demo present) the inputs point at the demo
    county, so 'farmland init && farmland run farmland.toml' works as is; elsewhere
    replace the path/to/… placeholders with your files.
    """
    from farmland.io.write import atomic_write

    target = Path(path)
    data_dir = demo_data_dir(target)
    with atomic_write(target, overwrite=overwrite) as tmp:
        tmp.write_text(render_template(data_dir=data_dir), encoding="utf-8")
    click.echo(f"wrote {target}")
    if data_dir is None:
        click.echo("编辑 [inputs] 中的 path/to/… 为实际文件 / replace the path/to/… "
                   "placeholders in [inputs] with your files, then:")
    else:
        click.echo(f"inputs: the demo county in {data_dir}/ (edit [inputs] for your county); "
                   "run it with:")
    click.echo(f"  farmland run {target}")

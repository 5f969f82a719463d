"""The classification run: read inputs, classify, write outputs and a manifest.

Outputs are staged in a temporary folder next to the output folder and moved in
only when everything has been written, so a failed run leaves no partial output.
Existing outputs are replaced only with ``overwrite=True``.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from farmland import __version__
from farmland.classify.outliers import (
    apply_outliers,
    corroborate,
    hot_spot,
    screen_loo,
    screen_outliers,
)
from farmland.classify.parcels import classify_parcels
from farmland.classify.samples import classify_samples
from farmland.classify.summary import class_area_table
from farmland.classify.units import UNIT_CHOICES, evaluation_units
from farmland.crs import require_overlap
from farmland.errors import InputError
from farmland.geostats.crossval import LooMemory, LooRecorder
from farmland.geostats.located import reusing_locations
from farmland.geostats.quality import cross_validation_report
from farmland.geostats.surfaces import SurfaceModels, fit_surface_models
from farmland.io import readers as fio
from farmland.io.read_cache import reusing_reads
from farmland.io.write import (
    atomic_folder,
    csv_ready,
    refuse_existing,
    sha256_file,
    write_gpkg_layers,
)
from farmland.rules import Rules, load_rules
from farmland.runs import folder
from farmland.runs.gpkg_patch import patch_gpkg
from farmland.runs.incremental import previous_for, reclassify
from farmland.runs.loo_memory import read_loo_memories, write_loo_memories
from farmland.runs.parcel_cache import cached_parcels
from farmland.runs.variograms import choose_variograms
from farmland.standards import load_standard

log = logging.getLogger(__name__)

#: passes of the leave-one-out rule at most (each refits without the suspects found)
LOO_PASSES = 3


@dataclass
class ClassificationInputs:
    """Paths and reading options of one classification run."""

    parcels: Path
    samples: Path | list[Path]
    crops: Path | list[Path] | None = None
    crs: str | None = None
    parcels_layer: str | None = None
    townships: Path | None = None
    outliers: str = "flag"
    mapping: Path | None = None
    rules: Path | None = None
    interpolator: str | None = None
    seed: int = 0
    #: evaluation units: "parcel", "village", "township" or the path of a units file
    units: str | Path = "parcel"
    #: run history whose previous run's variograms may be reused (the refit rule,
    #: :mod:`farmland.runs.variograms`), that run's id, the mode, and this run's output
    #: folder (a run recorded for it is not a previous run)
    workspace: Path | None = None
    since: str | None = None
    variograms: str = "auto"
    output: Path | None = None
    #: classify every parcel even when the previous run allows an incremental run
    #: (:mod:`farmland.runs.incremental`)
    full: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def sample_paths(self) -> list[Path]:
        return _as_list(self.samples)

    def crop_paths(self) -> list[Path]:
        return _as_list(self.crops)

    def units_path(self) -> Path | None:
        """The units file, or ``None`` for a unit named by a word; an unknown word (or a
        file that does not exist) is an :class:`InputError`."""
        if str(self.units) in UNIT_CHOICES:
            return None
        path = Path(self.units)
        if not path.is_file():
            raise InputError("unknown evaluation unit: neither parcel, village, township nor "
                             "an existing units file", column="--units", value=str(self.units),
                             fix="use --units parcel, village or township, or the path of a "
                                 "units file (unit polygons, or a CSV/XLSX of 图斑编号 → "
                                 "评价单元编号)")
        return path


@dataclass
class ClassificationResult:
    """What a run produced (frames in memory and where they were written)."""

    parcels: gpd.GeoDataFrame
    samples: gpd.GeoDataFrame
    crops: gpd.GeoDataFrame | None
    summary: pd.DataFrame
    manifest: dict[str, Any]
    crossval: pd.DataFrame | None = None
    crossval_samples: pd.DataFrame | None = None
    surfaces: SurfaceModels | None = None
    outliers: pd.DataFrame | None = None
    output: Path | None = None
    #: leave-one-out moments by variable, kept for the next run (runs in a workspace)
    loo: dict[str, LooMemory] | None = None
    #: an incremental run's classification file as the previous one's with rows rewritten
    patch: Any = None

    @property
    def differences(self) -> tuple[str, Any] | None:
        """``(previous run id, positions)`` of an incremental run: its parcels are that
        run's except at these rows in the columns a workspace keeps
        (:meth:`farmland.runs.workspace.Workspace.add_run`); ``None`` otherwise."""
        if self.patch is None or self.patch.workspace_rows is None:
            return None
        return self.patch.run_id, self.patch.workspace_rows


def _as_list(value) -> list[Path]:
    if value is None:
        return []
    return [Path(v) for v in (value if isinstance(value, (list, tuple)) else [value])]


def read_inputs(inputs: ClassificationInputs, *, rules: Rules | None = None):
    """Read parcels, soil samples (several files are concatenated) and crops into one metric
    CRS; refuse sample files that lie nowhere near the parcels (another county, wrong CRS)."""
    mapping = fio.read_mapping(inputs.mapping) if inputs.mapping else None
    parcels = cached_parcels(
        lambda: fio.read_parcels(inputs.parcels, layer=inputs.parcels_layer, crs=inputs.crs,
                                 mapping=mapping, townships=inputs.townships),
        workspace=inputs.workspace, parcels=inputs.parcels, layer=inputs.parcels_layer,
        crs=inputs.crs, mapping=mapping, townships=inputs.townships)
    target = parcels.crs
    reach = (rules or load_rules(inputs.rules)).get("interpolation", "max_distance_m")
    sample_frames = []
    for path in inputs.sample_paths():
        frame = fio.read_soil_samples(path, crs=inputs.crs, target_crs=target, mapping=mapping)
        require_overlap(parcels, frame, file=path, what="soil sample", within_m=reach)
        sample_frames.append(frame)
    samples = fio.concat_sample_files(sample_frames, "soil samples")
    crop_frames = []
    for path in inputs.crop_paths():
        frame = fio.read_crop_samples(path, crs=inputs.crs, target_crs=target, mapping=mapping)
        require_overlap(parcels, frame, file=path, what="crop sample", within_m=reach)
        crop_frames.append(frame)
    crops = fio.concat_sample_files(crop_frames, "crop samples") if crop_frames else None
    return parcels, samples, crops


def classify_run(inputs: ClassificationInputs, *, rules: Rules | None = None,
                 scheduler: str | None = None) -> ClassificationResult:
    """Read and classify; nothing is written.

    ``scheduler``: ``None`` classifies in this process; ``"local"`` (a 2-worker dask
    LocalCluster) or ``"tcp://HOST:PORT"`` classifies the parcels in partitions on dask
    (:mod:`farmland.classify.distributed`, same result; needs the ``dask`` extra).
    """
    rules = rules or load_rules(inputs.rules)
    inputs.units_path()  # an unknown --units is refused before any reading
    std = load_standard()
    parcels, samples, crops = read_inputs(inputs, rules=rules)
    # the previous run's samples layer serves the refit rule and the incremental run: read
    # once; the samples of a variable, fitted by the refit rule, the leave-one-out screen
    # and the classification, are located (duplicates merged, KD-tree) once
    with reusing_reads(), reusing_locations():
        return _classify(inputs, rules, std, parcels, samples, crops, scheduler)


def _classify(inputs: ClassificationInputs, rules: Rules, std, parcels, samples, crops,
              scheduler: str | None) -> ClassificationResult:
    """:func:`classify_run` after reading the inputs."""
    mapping = fio.read_mapping(inputs.mapping) if inputs.mapping else None
    units = evaluation_units(parcels, str(inputs.units) if inputs.units_path() is None
                             else inputs.units_path(), crs=inputs.crs, mapping=mapping)
    samples, outliers = first_screen(samples, std, rules, inputs.outliers)
    classified = _classified_samples(samples, parcels, std, rules, inputs)
    # one set of models (fitted, or reused from the previous run) serves the
    # classification, the CV report and the rasters
    identity = run_identity(inputs, rules, std, parcels.crs)  # hashes every input once
    surfaces, variograms = _surface_models(classified[classified["usable"]], rules, inputs,
                                           identity["inputs"]["parcels"][0]["sha256"])
    reused = frozenset(v for v, d in variograms["variables"].items() if d["action"] == "reused")
    previous = None if inputs.full else previous_for(identity, variograms, inputs.workspace)
    loo = LooRecorder(None if previous is None else
                      read_loo_memories(previous.path.parent / folder.LOO_MOMENTS))
    classified, surfaces, outliers, report = leave_one_out_screen(
        samples, classified, outliers, surfaces, parcels=parcels, standard=std, rules=rules,
        mode=inputs.outliers, keep=reused, moments=loo)
    done = None if previous is None else reclassify(previous, parcels, classified,
                                                    crops=crops, rules=rules,
                                                    surfaces=surfaces, standard=std,
                                                    units=units)
    patch = None
    if done is not None:
        out, graded, incremental, patch = done
    elif scheduler:
        from farmland.classify.distributed import classify_parcels_distributed
        out, classified, graded = classify_parcels_distributed(
            parcels, classified, crops=crops, rules=rules, interpolator=surfaces,
            standard=std, units=units, scheduler=scheduler)
    else:
        out, classified, graded = classify_parcels(parcels, classified, crops=crops, rules=rules,
                                                   interpolator=surfaces, standard=std,
                                                   units=units)
    manifest = build_manifest(inputs, rules, std, out, identity=identity)
    if done is not None:
        manifest["incremental"] = incremental
    if units is not None:  # absent: each parcel its own unit, as in every earlier run
        manifest["parameters"]["units"] = units.attrs["kind"]
        manifest["counts"]["evaluation_units"] = units.attrs["units"]
        manifest["counts"]["parcels_alone"] = units.attrs["alone"]
    hot = hot_spot(outliers["action"])
    manifest["outliers"] = {"mode": inputs.outliers, "suspect_values": int((~hot).sum()),
                            "hot_spots_kept": int(hot.sum())}
    manifest["variograms"] = _json_safe(variograms)
    metrics, per_sample, models = report
    manifest["geostatistics"] = _json_safe({"models": models,
                                            "cross_validation": metrics.to_dict(orient="records")})
    return ClassificationResult(out, classified, graded, class_area_table(out, decimals=None), manifest,
                                crossval=metrics, crossval_samples=per_sample,
                                surfaces=surfaces, outliers=outliers,
                                loo=loo.memories if inputs.workspace is not None else None,
                                patch=patch)


def _classified_samples(samples: gpd.GeoDataFrame, parcels: gpd.GeoDataFrame, std,
                        rules: Rules, inputs: ClassificationInputs) -> gpd.GeoDataFrame:
    """Point classes of the samples; a run without any usable sample is refused."""
    classified = classify_samples(samples, parcels=parcels, standard=std, rules=rules)
    if not classified["usable"].any():
        reasons = classified["unusable_reason"].value_counts().index[:3]
        raise InputError("no soil sample can be classified", file=inputs.sample_paths()[0],
                         row=classified["sample_id"].iloc[0], value="; ".join(reasons),
                         fix="every sample needs pH and Cd, Hg, As, Pb, Cr (or set "
                             "missing_ph / missing_metal in a rules file)")
    return classified


def _surface_models(usable: pd.DataFrame, rules: Rules, inputs: ClassificationInputs,
                    parcels_sha256: str):
    """The run's surface models and the refit rule's record (:mod:`farmland.runs.variograms`);
    ``parcels_sha256`` is the parcels file's hash (the manifest's)."""
    with_history = inputs.workspace is not None
    return choose_variograms(
        usable, rules, inputs.interpolator or rules.get("interpolation", "method"),
        mode=inputs.variograms, workspace=inputs.workspace, since=inputs.since,
        parcels_sha256=parcels_sha256 if with_history else "",
        rules_sha256=rules.sha256, output=inputs.output)


def first_screen(samples, standard, rules: Rules, mode: str):
    """The global, units and spatial rules (:func:`farmland.classify.outliers.
    screen_outliers`) with corroborated hot spots kept, applied in ``mode``: (samples,
    outlier table)."""
    suspects = corroborate(screen_outliers(samples, standard), samples,
                           factor=rules.get("outliers", "corroboration"))
    return apply_outliers(samples, suspects, mode)


def leave_one_out_screen(samples, classified, outliers, surfaces: SurfaceModels, *, parcels,
                         standard, rules: Rules, mode: str, keep: frozenset[str] = frozenset(),
                         moments: LooRecorder | None = None):
    """The leave-one-out rule (:func:`farmland.classify.outliers.screen_loo`) on the run's
    cross-validation, repeated until it finds nothing new (at most :data:`LOO_PASSES`).

    The first z values come from the variograms fitted without the suspects of the other
    rules. With ``flag``/``exclude`` each pass fits the variables that got a suspect once
    more without it (variables in ``keep``, reused from an earlier run, keep their model)
    and screens again: a suspect in the fit inflates the nugget and hides itself and its
    neighbours (docs/decisions.md "Leave-one-out rule"). Returns the classified samples,
    surfaces, outlier table and cross-validation report, as the classification uses them.
    ``moments`` solves the leave-one-out systems, reusing an earlier run's where no change
    reaches (same values, :class:`~farmland.geostats.crossval.LooRecorder`).
    """
    report = cross_validation_report(classified, surfaces, standard=standard, loo=moments)
    for n_pass in range(1, LOO_PASSES + 1):
        loo = screen_loo(report[1], classified, max_z=rules.get("outliers", "loo_max_z"),
                         listed=outliers, fallbacks=frozenset(
                             v for v, m in surfaces.models.items() if isinstance(m, str)))
        if loo.empty:
            break
        loo = corroborate(loo, classified, factor=rules.get("outliers", "corroboration"),
                          listed=outliers)
        samples, table = apply_outliers(samples, loo, mode)
        outliers = pd.concat([outliers, table], ignore_index=True) if len(outliers) else table
        loo = loo.loc[~loo["corroborated"]]
        if mode == "keep" or loo.empty:  # nothing left the fit: another pass finds the same
            break
        # the same points in the same parcels: only values changed
        classified = classify_samples(samples, parcels=parcels, standard=standard, rules=rules,
                                      placed=classified[["parcel_id", "landuse_used"]])
        refit = set(loo["element"]) - set(keep)
        surfaces = fit_surface_models(classified[classified["usable"]], rules, surfaces.method,
                                      given={v: m for v, m in surfaces.models.items()
                                             if v not in refit},
                                      given_variances=surfaces.variances)
        log.info("leave-one-out rule, pass %d: %d suspect value(s) left out of the surfaces; %s",
                 n_pass, len(loo), f"refitted {', '.join(sorted(refit))} without them" if refit
                 else "their variograms are reused from the previous run, not refitted")
        if moments is not None:  # the variables not refitted keep this pass's moments
            moments.next_pass()
        report = cross_validation_report(classified, surfaces, standard=standard, loo=moments)
    else:
        log.warning("the leave-one-out rule found new suspects in each of its %d passes and "
                    "stopped; more values may lie beyond its limit (see outliers.csv)",
                    LOO_PASSES)
    if moments is not None and moments.previous:
        log.info("leave-one-out: the kriging moments of %d of %d sample locations kept "
                 "from the previous run or pass (no change reaches them)",
                 sum(moments.kept.values()), sum(len(m.values) for m in moments.memories.values()))
    return classified, surfaces, outliers, report


def build_manifest(inputs: ClassificationInputs, rules: Rules, std, parcels, *,
                   identity: dict[str, Any] | None = None) -> dict[str, Any]:
    """Inputs with hashes, standard and rules versions, parameters, seed, software version
    (``identity``: :func:`run_identity`, when already computed), and counts."""
    manifest = {key: value for key, value in
                (identity or run_identity(inputs, rules, std, parcels.crs)).items()
                if key != "outliers"}
    manifest["seed"] = inputs.seed
    manifest["counts"] = {
        "parcels": len(parcels), "unclassified": int(parcels["final_class"].isna().sum()),
        "landuse_unknown": int((parcels["landuse"] == "unknown").sum())
        if "landuse" in parcels else 0}
    manifest["parameters"]["interpolation_models"] = parcels.attrs.get("interpolator", "")
    manifest["parameters"].update(inputs.extra)
    return manifest


def run_identity(inputs: ClassificationInputs, rules: Rules, std, crs) -> dict[str, Any]:
    """What identifies the job of a run: inputs with hashes, standard and rules versions,
    parameters and software version (the manifest without counts and seed)."""
    files = {"parcels": [inputs.parcels], "samples": inputs.sample_paths(),
             "crops": inputs.crop_paths()}
    if inputs.mapping:
        files["mapping"] = [inputs.mapping]
    if inputs.townships:
        files["townships"] = [inputs.townships]
    if inputs.units_path() is not None:
        files["units"] = [inputs.units_path()]
    return {
        "software": {"name": "farmland", "version": __version__},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "inputs": {k: [{"path": str(p), "sha256": sha256_file(p)} for p in v]
                   for k, v in files.items() if v},
        "standard": std.manifest() if hasattr(std, "manifest") else
        {"name": std.name, "version": std.version, "fingerprint": std.fingerprint},
        "rules": {"name": rules.name, "source": rules.source, "sha256": rules.sha256,
                  "values": rules.as_dict()},
        "parameters": {"crs": str(crs.to_string()), "input_crs": inputs.crs,
                       "interpolator": inputs.interpolator or rules.get("interpolation", "method"),
                       **({"units": str(inputs.units) if inputs.units_path() is None
                           else "file"} if str(inputs.units) != "parcel" else {})},
        "outliers": {"mode": inputs.outliers},
    }


def check_output(output: str | Path, *, overwrite: bool = False) -> None:
    """Refuse early (before any work) when outputs exist and ``overwrite`` is not set."""
    refuse_existing((Path(output) / n for n in folder.CLASSIFY_FILES), overwrite=overwrite)


def write_classification(result: ClassificationResult, output: str | Path, *,
                         overwrite: bool = False) -> Path:
    """Write ``classification.gpkg``, ``summary.csv`` and ``manifest.json`` (and the
    cross-validation tables) into ``output``, all or nothing."""
    output = Path(output)
    with atomic_folder(output, overwrite=overwrite, expected=folder.CLASSIFY_FILES) as stage:
        layers = {"parcels": result.parcels, "samples": _gpkg_safe(result.samples)}
        if result.crops is not None:
            layers["crops"] = _gpkg_safe(result.crops)
        if result.outliers is not None and len(result.outliers):
            layers["outliers"] = _outlier_points(result.outliers, result.samples)
        if result.patch is None or not patch_gpkg(result.patch, stage / folder.CLASSIFICATION,
                                                  layers):
            write_gpkg_layers(stage / folder.CLASSIFICATION, layers)
        # the sums unrounded (the terminal table and the report round them once themselves)
        csv_ready(result.summary).to_csv(stage / folder.SUMMARY, index=False,
                                         encoding="utf-8-sig")
        if result.outliers is not None:
            result.outliers.to_csv(stage / folder.OUTLIERS, index=False, encoding="utf-8-sig")
        if result.loo:
            write_loo_memories(stage / folder.LOO_MOMENTS, result.loo)
        if result.crossval is not None:
            result.crossval.to_csv(stage / folder.CROSSVAL, index=False, encoding="utf-8-sig")
            result.crossval_samples.to_csv(stage / folder.CROSSVAL_SAMPLES, index=False,
                                           encoding="utf-8-sig")
        (stage / folder.MANIFEST).write_text(json.dumps(_portable(result.manifest, output),
                                                        ensure_ascii=False, indent=2,
                                                        default=str), encoding="utf-8")
    if not result.loo:  # an earlier run's moments are not this run's
        (output / folder.LOO_MOMENTS).unlink(missing_ok=True)
    result.output = output
    log.info("wrote %s", ", ".join(str(output / n) for n in folder.CLASSIFY_FILES
                                   if (output / n).exists()))
    return output


def _portable(manifest: dict[str, Any], output: Path) -> dict[str, Any]:
    """The manifest with input paths relative to the run folder (no absolute paths in
    outputs; the SHA-256 of each input identifies it)."""
    out = dict(manifest)
    out["inputs"] = {kind: [{**item, "path": folder.portable_path(item["path"], output)}
                            for item in items]
                     for kind, items in (manifest.get("inputs") or {}).items()}
    return out


def _outlier_points(table: pd.DataFrame, samples: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The suspect values as points (at their samples), for QGIS and the map."""
    first = samples.drop_duplicates("sample_id")
    where = pd.Series(first.geometry.to_numpy(), index=first["sample_id"].astype(str).to_numpy())
    geom = where.reindex(table["sample_id"].astype(str)).to_numpy()
    return gpd.GeoDataFrame(table.reset_index(drop=True), geometry=geom, crs=samples.crs)


def _gpkg_safe(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Object columns holding mixed types become text so GeoPackage accepts them."""
    out = frame.copy()
    for col in out.columns:
        if col != out.geometry.name and out[col].dtype == object:
            out[col] = out[col].map(_text_or_null)
    return out


def _text_or_null(value: object) -> str | None:
    """Text for GeoPackage; missing values (None, <NA>, NaN) stay NULL, not "<NA>"."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value if isinstance(value, str) else str(value)


def _json_safe(value: Any) -> Any:
    """NaN/inf become null so the manifest is strict JSON (and fits the workspace)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

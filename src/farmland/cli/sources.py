"""``farmland sources``: where the cadmium comes from — contaminated-land clusters, hot
spots, source apportionment (PMF, PCA/APCS-MLR) and ranked candidate sources per cluster."""

from __future__ import annotations

from pathlib import Path

import click

from farmland.cli import crs_option, output_dir_option, overwrite_option

__all__ = ["command", "overlap_distances", "read_layers", "summary_lines"]


@click.command("sources")
@click.argument("classification", type=click.Path(exists=True))
@click.option("--sources", "enterprises", required=True, type=click.Path(exists=True),
              help="Enterprises 重点企业 (points; 企业编号, 企业名称, 行业, 特征污染物).")
@click.option("--rivers", type=click.Path(exists=True), default=None,
              help="Rivers and irrigation canals 河流/灌渠 as lines drawn upstream → downstream "
                   "(layer 'rivers'; an 'outfalls' layer 排污口 in the same file is used too).")
@click.option("--geology", type=click.Path(exists=True), default=None,
              help="Geology polygons 地质/岩性 (岩性, 岩溶): karst marks geogenic Cd.")
@click.option("--wind", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Wind rose 风玫瑰 (CSV: 风向 from, 频率 %).")
@click.option("--zone-gap", default=30.0, show_default=True, type=click.FloatRange(0),
              help="Class-2/3 parcels closer than this (m) form one cluster.")
@click.option("--factors", "n_factors", type=click.IntRange(2, 8), default=None,
              help="Number of PMF factors (default: chosen from the Q/Qexp diagnostics).")
@click.option("--permutations", default=999, show_default=True, type=click.IntRange(99),
              help="Conditional permutations of the hot-spot tests.")
@click.option("--seed", default=0, show_default=True, help="Random seed (permutations, PMF starts).")
@crs_option
@output_dir_option()
@overwrite_option
def command(classification, enterprises, rivers, geology, wind, zone_gap, n_factors,
            permutations, seed, crs, output, overwrite):
    """Clusters of contaminated land and their candidate sources 污染成因排查.

    Reads CLASSIFICATION (classification.gpkg or its folder) and writes OUTPUT/sources.gpkg
    (clusters, hotspots, factor_contributions, candidate_links, confirm), clusters.csv,
    candidates.csv, factors.csv, hotspots.csv, confirm_samples.csv/.gpx/.kml/.gpkg and
    sources.json. The ranking is evidence for an investigation, not a verdict: every
    figure behind a score is in candidates.csv.
    """
    from farmland.io.write import refuse_existing
    from farmland.runs import folder
    from farmland.runs.folder import load_classification
    from farmland.runs.source_writer import write_sources
    from farmland.sources.analysis import analyse_sources

    out = Path(output)
    refuse_existing((out / n for n in folder.SOURCES_FILES), overwrite=overwrite)
    parcels, samples, _ = load_classification(classification)
    if samples is None:
        from farmland.errors import InputError

        raise InputError("the classification has no 'samples' layer",
                         file=folder.classification_path(classification),
                         fix="give a classification.gpkg written by 'farmland classify'")
    layers = read_layers(enterprises, rivers, geology, wind, parcels.crs, crs,
                         parcels=parcels)
    result = analyse_sources(parcels, samples, layers, gap=zone_gap, seed=seed,
                             n_factors=n_factors, permutations=permutations)
    extra = {"classification": folder.portable_path(folder.classification_path(classification),
                                                    out),
             "inputs": {k: folder.portable_path(v, out) if v else None
                        for k, v in (("sources", enterprises), ("rivers", rivers),
                                     ("geology", geology), ("wind", wind))}}
    write_sources(result, out, overwrite=overwrite, extra=extra)
    for line in summary_lines(result):
        click.echo(line)
    click.echo(f"outputs: {out}")


def read_layers(enterprises, rivers, geology, wind, target, crs=None, parcels=None):
    """The evidence layers, read and brought to the parcels' CRS (``target``); ``crs`` is
    the CRS of files that carry none (CSV coordinates).

    With ``parcels``, a layer of which no feature lies near the parcels' extent is refused
    (:func:`farmland.crs.require_overlap`, as for soil samples): a file of another county,
    or read in the wrong CRS, would otherwise quietly give no evidence and change the
    ranking. "Near" is what could still count as evidence (:func:`overlap_distances`)."""
    import pyogrio

    from farmland.crs import require_overlap
    from farmland.io import read_geology, read_outfalls, read_rivers, read_wind_rose
    from farmland.io.readers import read_sources
    from farmland.sources.candidates import EvidenceLayers

    reach = overlap_distances()

    def near(frame, file, key):
        if parcels is not None and frame is not None:
            what, within = reach[key]
            require_overlap(parcels, frame, file=file, what=what, within_m=within)
        return frame

    outfalls = None
    if rivers and "outfalls" in {str(n) for n in pyogrio.list_layers(rivers)[:, 0]}:
        outfalls = near(read_outfalls(rivers, layer="outfalls", crs=crs, target_crs=target)
                        .rename(columns={"enterprise_id": "source_id"}), rivers, "outfalls")
    return EvidenceLayers(
        enterprises=near(read_sources(enterprises, crs=crs, target_crs=target), enterprises,
                         "sources"),
        rivers=near(read_rivers(rivers, layer=_layer(rivers, "rivers"), crs=crs,
                                target_crs=target), rivers, "rivers") if rivers else None,
        geology=near(read_geology(geology, crs=crs, target_crs=target), geology, "geology")
        if geology else None,
        wind=read_wind_rose(wind) if wind else None,
        outfalls=outfalls)


def overlap_distances() -> dict[str, tuple[str, float]]:
    """Layer → (what one feature is, metres around the parcels' extent that still count):
    an enterprise or outfall up to the ranking's search radius (15 km) from a cluster can
    be a candidate; a river or canal must come within its buffer (500 m) of a cluster to
    carry water to it; a geology polygon must overlap the parcels to mark any as karst."""
    from farmland.sources.candidates import RankingRule

    rule = RankingRule()
    return {"sources": ("enterprise (重点企业)", rule.search_m),
            "outfalls": ("outfall (排污口)", rule.search_m),
            "rivers": ("river or canal line (河流/灌渠)", rule.river_buffer_m),
            "geology": ("geology polygon (地质/岩性)", 0.0)}


def _layer(path, preferred):
    import pyogrio

    names = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
    return preferred if preferred in names else None


def cause_area_lines(summary: dict) -> list[str]:
    """亩 of clusters per cause, in the causes map legend's words and grouping: a cluster
    whose top candidate scores below ``unexplained_below`` is 未明 unexplained, whatever its
    type (``cause_area_mu`` of sources.json; an older one has only ``top_candidate_area_mu``)."""
    from farmland.vocabulary import CAUSE_TYPES

    areas = summary.get("cause_area_mu") or summary.get("top_candidate_area_mu") or {}
    below = summary.get("unexplained_below")

    def words(key: str) -> str:
        zh, en = CAUSE_TYPES[key][:2] if key in CAUSE_TYPES else (key, "")
        more = f" (top score below {below:g})" if key == "unexplained" and below is not None else ""
        return f"{zh} {en}{more}".strip()
    return [f"{words(k)}: {a:,.1f} 亩" for k, a in sorted(
        areas.items(), key=lambda kv: (kv[0] == "unexplained", -kv[1]))]


def summary_lines(result) -> list[str]:
    """What the analyst sees first: clusters and what ranks first in each, in words
    ("[Cd 镉] → E01 经灌溉渠 via irrigation"; the CSV files keep the codes)."""
    from farmland.maps.causes import candidate_text, elements_text

    table = result.cluster_table()
    s = result.summary
    lines = [(f"聚集区 clusters: {s['n_clusters']} of class-2/3 land, {s['area_mu']:,.1f} 亩 "
             f"(zone gap {s['zone_gap_m']:.0f} m)")]
    lines += [f"  首位候选 top candidate {text}" for text in cause_area_lines(s)]
    for row in table.head(8).itertuples(index=False):
        lines.append(f"  {row.cluster_id} {row.township} {row.area_mu:,.1f} 亩 "
                     f"[{_or_dash(elements_text(_str(row.dominant_elements)))}] → "
                     f"{_or_dash(candidate_text(_str(row.top_candidate_id), _str(row.top_candidate_type)))} "
                     f"(score {row.top_score:.2f}, margin {row.top_margin:.2f})")
    if s.get("factors"):
        f = s["factors"]
        lines.append(f"因子 PMF: {f.get('n_factors')} factor(s), Q/Qexp {f.get('q_ratio', 0):.2f}")
    lines.append(f"核实采样 confirmation samples: {s['n_confirmation_samples']} point(s) "
                 "(confirm_samples.csv/.gpx/.kml)")
    return lines


def _str(value) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _or_dash(text: str | None) -> str:
    return text or "–"

"""Readers of the strict-control tables: the closed-loop ledger (严格管控闭环台账) and grain
procurement lots (粮食收购批次). Columns and values come from ``aliases.toml``
(``[columns.control_ledger]``, ``[columns.lots]``, ``[values.control_stage]``,
``[values.control_result]``, ``[values.crop]``); every problem of a file is raised at
once as one :class:`~farmland.errors.InputError` and nothing is returned half-read.

The rules between rows (stage order, a stage after a failed one) are checked by
:func:`farmland.control.ledger.check_ledger`, which knows the parcels and the year.
"""

from __future__ import annotations

import logging
import re
import unicodedata

import numpy as np
import pandas as pd

from farmland.errors import first_rows
from farmland.io.reading import (
    MappingArg,
    Source,
    blank_cells,
    check_exact_ids,
    match_input,
    open_input,
    report_unknown_values,
    text_column,
    vocabulary_values,
)
from farmland.io.values import Problems, id_strings, parse_plain_numbers

__all__ = ["parse_dates", "read_control_ledger", "read_lots", "split_ids"]

log = logging.getLogger("farmland.io.readers")

_DATE_CHARS = re.compile(r"[年月./]")
_ID_SEPARATORS = re.compile(r"[;；,，、\s]+")


def read_control_ledger(path: Source, *, layer: str | None = None, mapping: MappingArg = None,
                        encoding: str | None = None) -> pd.DataFrame:
    """Read a strict-control closed-loop ledger: one row per parcel, stage and date.

    Returns
    -------
    pandas.DataFrame
        ``parcel_id, stage`` (:data:`farmland.control.stages.STAGES`), ``date``
        (datetime64), ``result`` (``pass``/``fail``/``corrected``), ``person``,
        ``planted`` (as written), ``planted_crop`` (canonical crop or NA),
        ``destination``, ``lot_id``, ``note`` and ``row`` (the file's line or feature
        label, for messages), in file order.

    Raises
    ------
    InputError
        Missing columns (parcel id, stage, date, result), an empty or unrecognised
        stage or result, a date that is not a date, ids stored as long numbers; all
        problems at once.
    """
    raw = open_input(path, layer, encoding, (), read_geometry=False)
    match = match_input(raw, "control_ledger", mapping,
                        required=("parcel_id", "stage", "date", "result"))
    src, frame, problems = match.source, raw.frame, Problems(raw.file)
    ids = id_strings(frame[src["parcel_id"]])
    # a parcel has many rows: name the line, and the parcel beside it
    rows = pd.Series([f"{label} (图斑 {pid})" if isinstance(pid, str) else label
                      for label, pid in zip(raw.labels, ids, strict=True)], index=frame.index)
    check_exact_ids(raw, src["parcel_id"], ids, rows, problems)
    problems.add_mask("missing_id", ids.isna().to_numpy(), raw.labels, src["parcel_id"], ids)
    stage = vocabulary_values(frame[src["stage"]], "control_stage")
    report_unknown_values(frame[src["stage"]], stage, rows, src["stage"], "control_stage",
                          problems)
    result = vocabulary_values(frame[src["result"]], "control_result")
    report_unknown_values(frame[src["result"]], result, rows, src["result"], "control_result",
                          problems)
    dates = parse_dates(frame[src["date"]])
    bad = dates.isna().to_numpy()
    problems.add_mask("missing_value", bad & blank_cells(frame[src["date"]]).to_numpy(), rows,
                      src["date"], frame[src["date"]])
    problems.add_mask("bad_date", bad & ~blank_cells(frame[src["date"]]).to_numpy(), rows,
                      src["date"], frame[src["date"]])
    problems.raise_if_any()
    planted = text_column(frame, src, "planted")
    out = pd.DataFrame({
        "parcel_id": ids, "stage": stage, "date": dates, "result": result,
        "person": text_column(frame, src, "person"), "planted": planted,
        "planted_crop": vocabulary_values(planted, "crop"),
        "destination": text_column(frame, src, "destination"),
        "lot_id": id_strings(frame[src["lot_id"]]) if "lot_id" in src else text_column(
            frame, src, "lot_id"),
        "note": text_column(frame, src, "note"),
        "row": raw.labels.astype(str),
    }).reset_index(drop=True)
    out.attrs["columns"] = dict(src)   # canonical → the file's column, for later messages
    no_person = out["person"].isna()
    if no_person.any():
        log.warning("%s: %d row(s) name no person or unit (责任人/责任单位) (%s): kept; each "
                    "stage should say who did it", raw.file, int(no_person.sum()),
                    first_rows(out.loc[no_person, "row"]))
    log.info("%s: read %d closed-loop row(s) for %d parcel(s)", raw.file, len(out),
             out["parcel_id"].nunique())
    return out


def read_lots(path: Source, *, layer: str | None = None, mapping: MappingArg = None,
              encoding: str | None = None) -> pd.DataFrame:
    """Read grain procurement lots (粮食收购批次).

    Returns
    -------
    pandas.DataFrame
        ``lot_id, crop`` (as written), ``crop_code`` (canonical crop or NA),
        ``tonnage_t`` (float, NaN when not given), ``township, village``,
        ``parcel_ids`` (tuple of ids, empty when not given), ``buyer, date``, ``row``.

    Raises
    ------
    InputError
        Missing lot id or crop columns, an empty or duplicate lot id, a tonnage that
        is not a number >= 0, a lot with neither source village nor source parcels.
    """
    raw = open_input(path, layer, encoding, (), read_geometry=False)
    match = match_input(raw, "lots", mapping, required=("lot_id", "crop"))
    src, frame, problems = match.source, raw.frame, Problems(raw.file)
    ids = id_strings(frame[src["lot_id"]])
    rows = ids.where(ids.notna(), raw.labels)
    check_exact_ids(raw, src["lot_id"], ids, rows, problems)
    problems.add_mask("missing_id", ids.isna().to_numpy(), raw.labels, src["lot_id"], ids)
    problems.add_mask("duplicate_id", (ids.duplicated(keep="first") & ids.notna()).to_numpy(),
                      rows, src["lot_id"], ids)
    crop = text_column(frame, src, "crop")
    problems.add_mask("missing_value", crop.isna().to_numpy(), rows, src["crop"], crop)
    tonnage = pd.Series(np.nan, index=frame.index)
    if "tonnage_t" in src:
        cells = frame[src["tonnage_t"]]
        values, bad, censored = parse_plain_numbers(cells)
        bad = ((bad | censored | (np.nan_to_num(values, nan=0.0) < 0))
               & ~blank_cells(cells).to_numpy())
        problems.add_mask("bad_tonnage", bad, rows, src["tonnage_t"], cells)
        tonnage = pd.Series(np.where(bad, np.nan, values), index=frame.index)
    parcels = (frame[src["parcel_ids"]].map(split_ids) if "parcel_ids" in src
               else pd.Series([()] * len(frame), index=frame.index))
    village = text_column(frame, src, "village")
    no_source = (village.isna() & parcels.map(len).eq(0)).to_numpy()
    problems.add_mask("no_lot_source", no_source, rows, src.get("village", src["lot_id"]), ids)
    problems.raise_if_any()
    out = pd.DataFrame({
        "lot_id": ids, "crop": crop, "crop_code": vocabulary_values(crop, "crop"),
        "tonnage_t": tonnage.astype(float), "township": text_column(frame, src, "township"),
        "village": village, "parcel_ids": parcels, "buyer": text_column(frame, src, "buyer"),
        "date": (parse_dates(frame[src["date"]]) if "date" in src
                 else pd.Series(pd.NaT, index=frame.index)),
        "row": raw.labels.astype(str),
    }).reset_index(drop=True)
    unknown = out["crop_code"].isna()
    if unknown.any():
        log.warning("%s: crop(s) %s of %d lot(s) are not GB 2762 categories farmland knows: "
                    "those lots are screened by their source only", raw.file,
                    ", ".join(sorted(set(out.loc[unknown, "crop"].astype(str)))),
                    int(unknown.sum()))
    log.info("%s: read %d lot(s)", raw.file, len(out))
    return out


def split_ids(value: object) -> tuple[str, ...]:
    """``"A;B、C"`` → ``("A", "B", "C")``; a blank cell → ``()``."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ()
    if isinstance(value, (int, np.integer)) or (isinstance(value, float) and value.is_integer()):
        return (str(int(value)),)
    parts = _ID_SEPARATORS.split(unicodedata.normalize("NFKC", str(value)).strip())
    return tuple(p for p in parts if p)


def parse_dates(raw: pd.Series) -> pd.Series:
    """Dates as datetime64 (NaT where not a date): ``2023-05-12``, ``2023/5/12``,
    ``2023.5.12``, ``2023年5月12日``, ``20230512`` and spreadsheet dates."""
    def one(v: object) -> pd.Timestamp | None:
        if v is None or (not isinstance(v, str) and pd.isna(v)):
            return None
        if isinstance(v, pd.Timestamp):
            return v.normalize()
        if hasattr(v, "year") and hasattr(v, "month"):
            return pd.Timestamp(v).normalize()
        text = unicodedata.normalize("NFKC", str(v)).strip().rstrip("日")
        if text.isdigit() and len(text) == 8:
            text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
        text = _DATE_CHARS.sub("-", text).split(" ")[0].split("T")[0]
        parts = text.split("-")
        if len(parts) != 3 or not all(p.isdigit() for p in parts) or len(parts[0]) != 4:
            return None
        try:
            return pd.Timestamp(int(parts[0]), int(parts[1]), int(parts[2]))
        except ValueError:
            return None
    return pd.Series([one(v) for v in raw], index=raw.index, dtype="datetime64[ns]")

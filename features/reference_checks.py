"""Column-wise validation of reference files: the schemas' field constraints applied to whole columns.

Validating 100,000 rows one pydantic model at a time is slow; these checks apply the same constraints
with pandas and refuse the file at the first violation, naming the column and the first bad 1-based
data row (the header is not counted), so a shipper can fix the file without a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from features.errors import InvalidInput

Kind = Literal["text", "number", "integer", "timestamp", "date", "bool", "choice", "choices", "json"]
_TRUTH = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True)
class Column:
    """One column of a reference file and the constraints its values must meet."""

    name: str
    kind: Kind
    nullable: bool = False
    pattern: str | None = None
    choices: tuple[str, ...] = ()
    ge: float | None = None
    gt: float | None = None
    le: float | None = None


def first_row(mask: pd.Series | np.ndarray) -> int:
    """1-based data-row number of the first True in mask."""
    return int(np.flatnonzero(np.asarray(mask, dtype=bool))[0]) + 1


def refuse(record: str, column: str, *, bad: pd.Series | np.ndarray, why: str,
           shown: pd.Series | None = None) -> None:
    """Raise InvalidInput naming record kind, column and first bad row when any ``bad`` entry is True."""
    mask = np.asarray(bad, dtype=bool)
    if not mask.any():
        return
    row = first_row(mask)
    value = None if shown is None else shown.iloc[row - 1]
    value = value.item() if isinstance(value, np.generic) else value
    got = "" if shown is None else f" (got {value!r})"
    raise InvalidInput(f"{record}: column '{column}', row {row}: {why}{got}; {int(mask.sum())} bad row(s)",
                       field=column, row=row)


def require_columns(raw: pd.DataFrame, columns: tuple[Column, ...], *, record: str) -> None:
    """Refuse a frame that lacks a column (nullable columns must still be present, possibly empty)."""
    missing = [c.name for c in columns if c.name not in raw.columns]
    if missing:
        raise InvalidInput(f"{record}: missing column(s) {', '.join(missing)}", field=missing[0])


def _text(raw: pd.Series) -> pd.Series:
    """Stripped text (object dtype); empty or missing becomes NaN."""
    text = raw.astype(object).where(raw.notna()).str.strip() if raw.dtype == object else raw.astype("string")
    return text.where(text != "").astype(object)


def _parse_text(raw: pd.Series, col: Column, *, record: str) -> pd.Series:
    text = _text(raw)
    if col.pattern is not None:
        bad = text.notna() & ~text.str.fullmatch(col.pattern[1:-1], na=False).astype(bool)
        refuse(record, col.name, bad=bad, why=f"does not match {col.pattern}", shown=raw)
    if col.choices:
        refuse(record, col.name, bad=text.notna() & ~text.isin(col.choices),
               why=f"expected one of {list(col.choices)}", shown=raw)
    return text.where(text.notna(), None)


def _parse_number(raw: pd.Series, col: Column, *, record: str) -> pd.Series:
    values = pd.to_numeric(raw, errors="coerce") if raw.dtype.kind not in "fiu" else raw.astype(float)
    given = raw.notna() & (raw.astype(str).str.strip() != "") if raw.dtype.kind not in "fiu" else raw.notna()
    refuse(record, col.name, bad=given & values.isna(), why="not a number", shown=raw)
    bounds = [(col.ge, values < (col.ge or 0), ">="), (col.gt, values <= (col.gt or 0), ">"),
              (col.le, values > (col.le or 0), "<=")]
    for bound, bad, op in bounds:
        if bound is not None:
            refuse(record, col.name, bad=bad.fillna(False), why=f"must be {op} {bound}", shown=raw)
    if col.kind == "integer":
        refuse(record, col.name, bad=(values % 1 != 0).fillna(False), why="must be a whole number", shown=raw)
    return values.astype(float)


def _parse_timestamp(raw: pd.Series, col: Column, *, record: str) -> pd.Series:
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        parsed = raw.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(raw.dtype):
        refuse(record, col.name, bad=raw.notna(), why="timestamp without a UTC offset", shown=raw.astype(str))
        parsed = raw
    else:
        text = _text(raw)
        parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
        refuse(record, col.name, bad=text.notna() & parsed.isna(),
               why="unparsable timestamp (ISO 8601 expected)", shown=raw)
        naive = text.notna() & ~text.str.contains(r"(?:[+-]\d\d:?\d\d|Z)$", regex=True, na=False).astype(bool)
        refuse(record, col.name, bad=naive, why="timestamp needs a UTC offset, e.g. +00:00", shown=raw)
    return parsed.astype("datetime64[ns, UTC]")


def _parse_date(raw: pd.Series, col: Column, *, record: str) -> pd.Series:
    """Calendar dates become UTC midnight timestamps (what Feast and merge_asof want)."""
    if isinstance(raw.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(raw.dtype):
        stamps = raw.dt.tz_localize("UTC") if raw.dt.tz is None else raw.dt.tz_convert("UTC")
        refuse(record, col.name, bad=(stamps != stamps.dt.normalize()).fillna(False),
               why="expected a date", shown=raw)
        return stamps.astype("datetime64[ns, UTC]")
    text = _text(raw)
    parsed = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce").dt.tz_localize("UTC")
    refuse(record, col.name, bad=text.notna() & parsed.isna(),
           why="unparsable date (YYYY-MM-DD expected)", shown=raw)
    return parsed.astype("datetime64[ns, UTC]")


def _parse_bool(raw: pd.Series, col: Column, *, record: str) -> pd.Series:
    if raw.dtype == bool:
        return raw
    text = _text(raw)
    parsed = text.str.lower().map(_TRUTH)
    refuse(record, col.name, bad=text.notna() & parsed.isna(), why="expected true or false", shown=raw)
    return parsed.astype(object)


def _parse_choices(raw: pd.Series, col: Column, *, record: str) -> pd.Series:
    """Semicolon-separated codes, e.g. ``pickup;screening``; empty means none. Kept in one spelling,
    each code stripped and empty ones left out (``pickup; screening;`` is ``pickup;screening``): the
    re-rating splits on ``;`` and would not see `` screening`` as the screening it is."""
    text = _text(raw).fillna("")
    tokens = text.str.split(";").explode().str.strip()
    bad_token = (tokens != "") & ~tokens.isin(col.choices)
    bad_rows = bad_token.groupby(level=0).any().reindex(raw.index, fill_value=False)
    refuse(record, col.name, bad=bad_rows, why=f"codes must be among {list(col.choices)}", shown=raw)
    kept = tokens[tokens != ""].groupby(level=0).agg(";".join)
    return kept.reindex(text.index, fill_value="").astype(object)


_PARSERS = {"text": _parse_text, "choice": _parse_text, "json": _parse_text, "number": _parse_number,
            "integer": _parse_number, "timestamp": _parse_timestamp, "date": _parse_date,
            "bool": _parse_bool, "choices": _parse_choices}


def validate_columns(raw: pd.DataFrame, columns: tuple[Column, ...], *, record: str) -> pd.DataFrame:
    """Parse and check every declared column; the result holds exactly these columns, in this order."""
    require_columns(raw, columns, record=record)
    raw = raw.reset_index(drop=True)
    out = pd.DataFrame(index=raw.index)
    for col in columns:
        parsed = _PARSERS[col.kind](raw[col.name], col, record=record)
        if not col.nullable:
            refuse(record, col.name, bad=pd.isna(parsed), why="a value is required", shown=raw[col.name])
        if col.kind == "bool" and not col.nullable:
            parsed = parsed.astype(bool)
        if col.kind == "integer" and not col.nullable:
            parsed = parsed.astype("int64")
        out[col.name] = parsed
    return out


__all__ = ["Column", "first_row", "refuse", "require_columns", "validate_columns"]

"""Reviewer feedback: resolved review cases as labels that override (or add to) the recorded ones.

A feedback file (CSV or Parquet) has one row per resolved case; see docs/invoice-model.md for the
format. It is validated whole before it is used (a bad file names the column and the 1-based row and
trains nothing). When an invoice was resolved more than once the latest decision wins (``decided_at``
when given, else the last row).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import InvalidInput
from features.invoice_world import DISCREPANCY_CLASSES
from features.reference import INVOICE_ID_PATTERN
from features.reference_checks import Column, validate_columns
from features.reference_io import read_table

REQUIRED = (
    Column("invoice_id", "text", pattern=INVOICE_ID_PATTERN),
    Column("discrepancy", "choice", choices=DISCREPANCY_CLASSES),
    Column("verdict_source", "text", pattern=r"^[a-z][a-z0-9_]{0,31}$"),
    Column("reviewer", "text", pattern=r"^.{1,64}$"),
)
OPTIONAL = (
    Column("overbilled_amount", "number", nullable=True, ge=0, le=10_000_000),
    Column("decided_at", "timestamp", nullable=True),
)
RECORD = "feedback"


def read_feedback(path: str | Path) -> pd.DataFrame:
    """Validated feedback, one row per invoice (latest decision), with both optional columns present."""
    frame = read_table(path, REQUIRED, record=RECORD)
    raw = _raw(Path(path))
    present = tuple(c for c in OPTIONAL if c.name in raw.columns)
    extra = validate_columns(raw, present, record=f"{RECORD} ({Path(path).name})") if present else None
    for column in OPTIONAL:
        frame[column.name] = extra[column.name] if extra is not None and column.name in extra else np.nan
    if frame.empty:
        raise InvalidInput(f"{RECORD} ({Path(path).name}): no rows", field="invoice_id")
    ordered = frame.assign(_row=np.arange(len(frame))).sort_values(["decided_at", "_row"], na_position="first",
                                                                   kind="stable")
    return ordered.drop_duplicates("invoice_id", keep="last").drop(columns="_row").set_index("invoice_id")


def _raw(path: Path) -> pd.DataFrame:
    if path.suffix.lower() in {".parquet", ".pq"}:
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def apply_feedback(labels: pd.DataFrame, feedback: pd.DataFrame, *,
                   invoice_ids: pd.Index) -> tuple[pd.DataFrame, dict[str, int]]:
    """Labels (indexed by invoice_id) with the feedback's verdicts applied, and what was used.

    A verdict for an invoice we hold overrides its recorded label (or labels it, if it had none); a
    verdict for an invoice we do not hold cannot be trained on (no features) and is only counted.
    The recorded amount follows the verdict: the reviewer's figure if given, 0 for clean, else unknown.
    """
    known = feedback.index.isin(invoice_ids)
    used = feedback[known]
    out = labels.reindex(labels.index.union(used.index))
    before = out.loc[used.index, "discrepancy"]
    amount = used["overbilled_amount"].where(used["overbilled_amount"].notna(),
                                             np.where(used["discrepancy"] == "clean", 0.0, np.nan))
    out.loc[used.index, "overbilled_amount"] = amount.astype(float)
    out.loc[used.index, "discrepancy"] = used["discrepancy"]
    counts = {"feedback_verdicts": len(feedback), "feedback_labels_used": int(known.sum()),
              "feedback_labels_changed": int((before.to_numpy() != used["discrepancy"].to_numpy()).sum()),
              "feedback_labels_unmatched": int((~known).sum())}
    return out, counts

"""Reviewers' final verdicts as training labels, in the format ``tollgate train invoice --with-feedback`` reads
(``training/invoice_feedback.py``; docs/review-workflow.md#labels).

Only final invoice verdicts count (a four-eyes case once approved); the label was derived when the verdict
was recorded (``serving.verdicts.label_of``) and is exported as it was stored.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import TextIO

import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Engine

from features.reference import INVOICE_ID_PATTERN
from features.reference_io import write_table
from serving.db import case_resolutions, review_cases
from serving.review_queries import iso

VERDICT_SOURCE = "review_queue"
COLUMNS = ("invoice_id", "discrepancy", "verdict_source", "reviewer", "overbilled_amount", "decided_at",
           "case_id", "verdict", "reason_code", "predicted_class", "approved_by")


def final_labels(engine: Engine, *, since: datetime) -> tuple[pd.DataFrame, int]:
    """Labels of invoice cases made final at or after ``since`` (oldest first), and how many were skipped."""
    r, c = case_resolutions.c, review_cases.c
    query = (select(c.subject_id, r.label_class, r.resolved_by_name, r.overbilled_amount, c.resolved_at, c.case_id,
                    r.verdict, r.reason_code, c.predicted_class, c.approved_by)
             .join(review_cases, c.case_id == r.case_id)
             .where(c.status == "resolved", c.kind == "invoice", c.resolved_at >= since)
             .order_by(c.resolved_at, c.case_id))
    rows, skipped = [], 0
    with engine.connect() as conn:
        for row in conn.execute(query):
            if row.label_class is None or not re.fullmatch(INVOICE_ID_PATTERN, row.subject_id):
                skipped += 1  # an id the training data cannot hold: the file must stay valid as a whole
                continue
            rows.append({"invoice_id": row.subject_id, "discrepancy": row.label_class,
                         "verdict_source": VERDICT_SOURCE, "reviewer": row.resolved_by_name,
                         "overbilled_amount": row.overbilled_amount, "decided_at": iso(row.resolved_at),
                         "case_id": row.case_id, "verdict": row.verdict, "reason_code": row.reason_code or "",
                         "predicted_class": row.predicted_class or "", "approved_by": row.approved_by or ""})
    return pd.DataFrame(rows, columns=list(COLUMNS)), skipped


def export_labels(engine: Engine, *, since: datetime, out: Path | TextIO) -> dict:
    """Write the labels to a CSV or Parquet file (by suffix) or a text stream (CSV)."""
    frame, skipped = final_labels(engine, since=since)
    if isinstance(out, Path):
        write_table(frame, out)
    else:
        frame.to_csv(out, index=False)
    return {"labels": len(frame), "skipped": skipped, "since": since.isoformat(),
            "classes": frame["discrepancy"].value_counts().to_dict()}

"""Final verdicts exported as labels that the invoice training job's feedback reader accepts."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from serving.auth import Role
from serving.cli import app
from serving.reviews import ReviewService
from tests.serving.conftest import make_runtime
from tests.serving.review_factory import Clock, invoice_case, person
from training.invoice_feedback import apply_feedback, read_feedback

ANA, CHLOE = person("k-ana"), person("k-chloe", Role.APPROVER)


@pytest.fixture
def resolved(tmp_path, scorer):
    """Five invoice cases, one per verdict kind plus a four-eyes case still waiting for its approval."""
    url = f"sqlite:///{tmp_path}/tollgate.db"
    runtime = make_runtime(url, scorer)
    clock = Clock()
    reviews = ReviewService(runtime.engine, policies=runtime.decisions.policies, clock=clock)
    verdicts = {
        "INV-PAID": ({"verdict": "approve_as_billed"}, {}),
        "INV-ADJ": ({"verdict": "approve_adjusted", "amount": 650, "reason_code": "fuel_surcharge_wrong"}, {}),
        "INV-DISP": ({"verdict": "dispute", "amount": 120, "reason_code": "rate_not_per_contract"},
                     {"predicted": "duplicate"}),
        "INV-CLASS": ({"verdict": "confirm_class", "discrepancy": "weight_overbilled"}, {}),
        "INV-WAIT": ({"verdict": "approve_as_billed"}, {"total": 7000}),
    }
    for invoice_id, (verdict, case) in verdicts.items():
        case_id = invoice_case(runtime.decisions, invoice_id, **case)
        clock.advance(minutes=1)
        reviews.claim(case_id, ANA)
        reviews.resolve(case_id, ANA, verdict)
    return url, reviews, clock


def test_exported_labels_are_read_by_the_training_feedback_reader(resolved, tmp_path, monkeypatch):
    url, _, _ = resolved
    monkeypatch.setenv("TOLLGATE_DATABASE_URL", url)
    out = tmp_path / "labels.csv"
    result = CliRunner().invoke(app, ["export", "labels", "--since", "2026-01-01", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["labels"] == 4
    feedback = read_feedback(out)
    assert feedback["discrepancy"].to_dict() == {
        "INV-PAID": "clean", "INV-ADJ": "fuel_surcharge_error", "INV-DISP": "rate_overcharge",
        "INV-CLASS": "weight_overbilled"}  # the reason code names the class the reviewer found, not the model's
    amounts = feedback["overbilled_amount"]
    assert (amounts["INV-PAID"], amounts["INV-ADJ"], amounts["INV-DISP"]) == (0.0, 150.0, 120.0)
    assert pd.isna(amounts["INV-CLASS"])  # a class without a figure: the amount is unknown
    assert set(feedback["reviewer"]) == {"Ana"} and set(feedback["verdict_source"]) == {"review_queue"}
    labels = pd.DataFrame({"discrepancy": ["clean"] * 3, "overbilled_amount": [0.0] * 3},
                          index=pd.Index(["INV-PAID", "INV-ADJ", "INV-OTHER"], name="invoice_id"))
    _, counts = apply_feedback(labels, feedback, invoice_ids=labels.index)
    assert (counts["feedback_labels_used"], counts["feedback_labels_changed"]) == (2, 1)


def test_four_eyes_label_is_exported_once_approved_and_since_filters(resolved, tmp_path):
    from serving.label_export import export_labels

    url, reviews, clock = resolved
    [waiting] = reviews.list_cases(status="awaiting_approval")["items"]
    cutoff = clock() + pd.Timedelta(seconds=1)
    clock.advance(minutes=5)
    reviews.approve(waiting["case_id"], CHLOE)
    out = tmp_path / "later.parquet"
    assert export_labels(reviews.engine, since=cutoff, out=out)["labels"] == 1
    later = read_feedback(out)
    assert list(later.index) == ["INV-WAIT"] and later.loc["INV-WAIT", "discrepancy"] == "clean"
    assert pd.read_parquet(out)["approved_by"].tolist() == ["Chloe"]

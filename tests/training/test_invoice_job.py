"""The invoice training job: spec loading, reviewer feedback, evaluation helpers, and a smoke run end to
end (MLflow on SQLite and a Feast repo in tmp_path) through to promotion."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from features.errors import InvalidInput
from features.store import StoreSettings, open_store
from training import tracking
from training.cli import app
from training.invoice_evaluation import classification_metrics, recorded_amount_at_risk, split_false_duplicate_rate
from training.invoice_feedback import apply_feedback, read_feedback
from training.invoice_job import load_invoice_world, run_invoice_job
from training.invoice_spec import load_invoice_spec

CLASSES = ("clean", "rate_overcharge", "duplicate")


def test_both_configs_load_and_a_bad_field_is_named(tmp_path):
    assert load_invoice_spec("invoice").model_name == "invoice_discrepancy"
    assert load_invoice_spec("invoice_smoke").world.sample == 8000
    bad = tmp_path / "bad.yaml"
    bad.write_text("world: {sample: 5}\n")
    with pytest.raises(InvalidInput, match="world.sample") as caught:
        load_invoice_spec(bad)
    assert caught.value.field == "world.sample"
    with pytest.raises(InvalidInput, match="not found"):
        load_invoice_spec("no_such_job")
    bad.write_text("params: {n_trees: 10}\n")
    with pytest.raises(InvalidInput, match="n_trees") as caught:
        load_invoice_spec(bad)
    assert caught.value.field == "params"


def test_cli_refuses_a_bad_spec_with_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("test_start: 2012-01-01\n")
    result = CliRunner().invoke(app, ["train", "invoice", "--config", str(bad), "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout.splitlines()[0])["error"] == "InvalidInput"


def _feedback(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_bad_feedback_file_names_column_and_row_and_trains_nothing(tmp_path):
    path = _feedback(tmp_path / "feedback.csv", [
        {"invoice_id": "AA0000001", "discrepancy": "clean", "verdict_source": "review_queue", "reviewer": "ana"},
        {"invoice_id": "AA0000002", "discrepancy": "overcharged", "verdict_source": "review_queue", "reviewer": "bo"},
    ])
    result = CliRunner().invoke(app, ["train", "invoice", "--config", "invoice_smoke", "--with-feedback", str(path)])
    assert result.exit_code == 2
    assert "discrepancy" in result.output and "row 2" in result.output
    assert not (tmp_path / "mlflow-default.db").exists()


def test_feedback_overrides_adds_and_counts(tmp_path):
    path = _feedback(tmp_path / "feedback.csv", [
        {"invoice_id": "A1", "discrepancy": "duplicate", "verdict_source": "review_queue", "reviewer": "ana",
         "decided_at": "2013-05-02T10:00:00+00:00"},
        {"invoice_id": "A1", "discrepancy": "rate_overcharge", "verdict_source": "carrier_dispute", "reviewer": "bo",
         "decided_at": "2013-05-09T10:00:00+00:00", "overbilled_amount": "12.5"},
        {"invoice_id": "A3", "discrepancy": "clean", "verdict_source": "review_queue", "reviewer": "ana"},
        {"invoice_id": "ZZ9", "discrepancy": "clean", "verdict_source": "review_queue", "reviewer": "ana"},
    ])
    feedback = read_feedback(path)
    assert feedback.loc["A1", "discrepancy"] == "rate_overcharge"  # the later decision wins
    labels = pd.DataFrame({"discrepancy": ["clean", "fuel_surcharge_error"], "overbilled_amount": [0.0, 8.0]},
                          index=pd.Index(["A1", "A2"], name="invoice_id"))
    out, counts = apply_feedback(labels, feedback, invoice_ids=pd.Index(["A1", "A2", "A3"]))
    assert out.loc["A1"].tolist() == ["rate_overcharge", 12.5]
    assert out.loc["A2"].tolist() == ["fuel_surcharge_error", 8.0]
    assert out.loc["A3"].tolist() == ["clean", 0.0]  # an unlabelled invoice gains a label
    assert counts == {"feedback_verdicts": 3, "feedback_labels_used": 2, "feedback_labels_changed": 2,
                      "feedback_labels_unmatched": 1}


def test_classification_metrics_and_split_rate_by_hand():
    y = np.array(["clean", "clean", "clean", "rate_overcharge", "duplicate", "duplicate"])
    said = np.array(["clean", "clean", "duplicate", "rate_overcharge", "duplicate", "clean"])
    m = classification_metrics(y, said, classes=CLASSES)
    assert m["clean_precision"] == pytest.approx(2 / 3) and m["recall_clean"] == pytest.approx(2 / 3)
    assert m["duplicate_recall"] == 0.5 and m["precision_duplicate"] == 0.5
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1.0 + 0.5) / 3)
    labels = pd.DataFrame({"lookalikes": ["split_invoice", "", "split_invoice;spot_rate", "", "split_invoice", ""],
                           "true_discrepancy": y})
    assert split_false_duplicate_rate(said, labels) == 0.5  # rows 0 and 2 are legit splits; row 2 called duplicate
    totals = pd.Series([100.0, 200, 300, 400, 500, 600])
    recorded = pd.DataFrame({"discrepancy": y, "overbilled_amount": [0, 0, 0, 40.0, 0, 0]})
    np.testing.assert_allclose(recorded_amount_at_risk(recorded, totals), [0, 0, 0, 40, 500, 600])


def _reviewed(tmp_path: Path, verdicts: list[tuple[str, dict]]) -> Path:
    """Feedback the way it reaches training: cases resolved in the review queue, then `tollgate export labels`."""
    from datetime import UTC, datetime

    from serving.label_export import export_labels
    from serving.reviews import ReviewService
    from tests.serving.conftest import make_runtime
    from tests.serving.review_factory import invoice_case, person

    runtime = make_runtime(f"sqlite:///{tmp_path}/reviews.db", None)
    reviews, ana = ReviewService(runtime.engine, policies=runtime.decisions.policies), person("k-ana")
    for invoice_id, verdict in verdicts:
        case_id = invoice_case(runtime.decisions, invoice_id, predicted="clean", p=0.8)
        reviews.claim(case_id, ana)
        reviews.resolve(case_id, ana, verdict)
    path = tmp_path / "feedback.csv"
    assert export_labels(runtime.engine, since=datetime(2000, 1, 1, tzinfo=UTC), out=path)["labels"] == len(verdicts)
    return path


@pytest.mark.slow
def test_smoke_job_logs_registers_and_promotes(tmp_path, embedded_history):
    spec = load_invoice_spec("invoice_smoke")
    world, _ = load_invoice_world(spec, history=embedded_history)
    labels = world.labels.set_index("invoice_id")
    picked = labels.index[labels["discrepancy"] == "clean"][:2]
    path = _reviewed(tmp_path, [*((i, {"verdict": "confirm_class", "discrepancy": "rate_overcharge"}) for i in picked),
                                ("XX0000001", {"verdict": "approve_as_billed"})])
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    settings = StoreSettings(repo_dir=tmp_path / "feast")
    summary = run_invoice_job(spec, with_feedback=path, settings=settings, tracking_uri=uri)

    for key in ("macro_f1", "rules_only_macro_f1", "clean_precision", "duplicate_recall", "precision_duplicate",
                "recall_weight_overbilled", "split_invoice_false_duplicate_rate", "amount_at_risk_mae",
                "true_macro_f1", "ceiling_macro_f1", "train_seconds"):
        assert isinstance(summary[key], float), key
    assert summary["model_version"] == "1" and summary["macro_f1"] > summary["rules_only_macro_f1"]
    assert (summary["feedback_labels_used"], summary["feedback_labels_unmatched"]) == (2, 1)
    json.dumps(summary, allow_nan=False)

    tracking.configure(uri)
    client = MlflowClient()
    version = client.get_model_version_by_alias("invoice_discrepancy", tracking.CHALLENGER)
    run = client.get_run(version.run_id)
    for param in ("seed", "git_commit", "dataset_digest", "feature_service", "world_seed", "test_period"):
        assert run.data.params[param], param
    assert run.data.params["feedback_labels_used"] == "2"
    assert "model_card.md" in {a.path for a in client.list_artifacts(version.run_id)}
    model = mlflow.pyfunc.load_model("models:/invoice_discrepancy@challenger")
    assert model.metadata.signature is not None
    sample = model.metadata.load_input_example()
    scored = model.predict(sample)
    p = scored[[c for c in scored.columns if c.startswith("p_") and c != "p_predicted"]]
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-9)
    assert {"predicted_class", "p_clean", "amount_at_risk"} <= set(scored.columns)
    assert open_store(settings).get_feature_service("invoice_reference_v1") is not None
    assert tracking.promote("invoice_discrepancy").promoted

"""Training smoke test on a small real sample: Feast join, fit, MLflow logging, registry, promotion."""

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from features.store import StoreSettings
from training import tracking
from training.delay_job import run_delay_job
from training.spec import load_spec

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two identical runs (reproducibility) and a deliberately weak one (gate), one MLflow store."""
    root = tmp_path_factory.mktemp("train")
    uri = f"sqlite:///{root}/mlflow.db"
    settings = StoreSettings(repo_dir=root / "repo")
    spec = load_spec("delay_smoke")
    first = run_delay_job(spec, settings=settings, tracking_uri=uri)
    first_promotion = tracking.promote(spec.model_name)
    second = run_delay_job(spec, settings=settings, tracking_uri=uri)
    second_promotion = tracking.promote(spec.model_name)
    weak_spec = spec.model_copy(update={"params": {**spec.params, "n_estimators": 1, "num_leaves": 2}})
    weak = run_delay_job(weak_spec, settings=settings, tracking_uri=uri)
    weak_promotion = tracking.promote(spec.model_name)
    return {"uri": uri, "first": first, "second": second, "weak": weak, "promotions": (
        first_promotion, second_promotion, weak_promotion)}


def test_summary_has_the_metrics_the_cli_promises(runs):
    summary = runs["first"]
    for key in ("test_auc", "test_pr_auc", "brier", "ece", "precision_at_top_10pct", "baseline_lane_auc",
                "train_seconds", "model_version"):
        assert key in summary
    assert 0.5 < summary["test_auc"] <= 1.0
    assert summary["test_auc"] > summary["baseline_lane_auc"]
    assert summary["brier"] < summary["baseline_base_rate_brier"]


def test_run_logs_params_seed_commit_dataset_and_feature_service(runs):
    mlflow.set_tracking_uri(runs["uri"])
    run = MlflowClient().get_run(runs["first"]["run_id"])
    params = run.data.params
    assert params["seed"] == "13" and params["feature_service"] == "delay_risk_v1"
    assert params["git_commit"] and params["dataset_digest"] and params["origins"] == "EWR"
    assert params["test_period"] == "2013-02-15..2013-03-01"
    artifacts = {a.path for a in MlflowClient().list_artifacts(run.info.run_id)}
    assert "model_card.md" in artifacts
    card = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/model_card.md")
    assert "delay_risk_v1" in card and "test_auc" in card


def test_registered_model_returns_probabilities_not_labels(runs):
    mlflow.set_tracking_uri(runs["uri"])
    uri = "models:/delay_risk@champion"
    model = mlflow.pyfunc.load_model(uri)
    frame = model.input_example
    assert isinstance(frame, pd.DataFrame) and len(frame) == 3
    p = np.asarray(model.predict(frame), dtype=float)
    assert ((p > 0) & (p < 1)).all()
    assert model.metadata.get_input_schema() is not None  # a signature was logged
    requirements = open(mlflow.pyfunc.get_model_dependencies(uri)).read()
    assert "lightgbm==" in requirements and "scikit-learn==" in requirements


def test_same_seed_same_metrics(runs):
    for key in ("test_auc", "test_pr_auc", "brier", "ece"):
        assert runs["first"][key] == runs["second"][key]


def test_first_model_becomes_champion_and_gate_refuses_a_worse_one(runs):
    first, second, weak = runs["promotions"]
    assert first.promoted and first.champion_version is None
    assert second.promoted  # identical metrics: no worse
    assert not weak.promoted and any("test_auc" in r for r in weak.reasons)
    mlflow.set_tracking_uri(runs["uri"])
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("delay_risk", "champion").version) == runs["second"]["model_version"]
    assert str(client.get_model_version_by_alias("delay_risk", "challenger").version) == runs["weak"]["model_version"]

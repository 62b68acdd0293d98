"""Logging a fitted invoice model, its evidence and its card to MLflow; registering it as challenger."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pandas as pd

from models.invoice_card import invoice_model_card
from training import tracking
from training.registry import dataset_digest, log_pyfunc, register_challenger

SUMMARY_EXTRA = ("feedback_verdicts", "feedback_labels_used", "feedback_labels_changed", "feedback_labels_unmatched")


def _params(spec, model, data) -> dict[str, object]:
    received = data.received
    world = spec.world
    return {
        **{f"model.{k}": v for k, v in model.params.lgb_params(len(model.classes_)).items()},
        "model.n_estimators": model.params.n_estimators,
        "model.calibration_blocks": model.params.calibration_blocks,
        "model.clean_sample_rate": model.params.clean_sample_rate,
        **{f"gate.{k}": v for k, v in spec.gate.model_dump().items()},
        "seed": spec.seed, "world_seed": world.seed, "world_sample": world.sample or "default",
        "git_commit": tracking.git_commit(), "feature_service": spec.feature_service,
        "dataset_source": data.source, "dataset_digest": _digest(data),
        "dataset_rows": len(data.features), "classes": ",".join(model.classes_),
        "train_period": f"{spec.train_start}..{spec.test_start}", "test_period": f"{spec.test_start}..{spec.test_end}",
        "first_received": str(received.min()), "last_received": str(received.max()),
        **{k: data.feedback.get(k, 0) for k in SUMMARY_EXTRA},
    }


def _digest(data) -> str:
    """Content digest of invoice headers, lines and the labels actually used (feedback included)."""
    world = data.world
    parts = [world.invoices, world.invoice_lines, data.labels[["discrepancy"]].reset_index()]
    return dataset_digest(pd.concat([pd.util.hash_pandas_object(p, index=False).to_frame() for p in parts]))


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if not (isinstance(v, float) and math.isnan(v))}


def _log_card(spec, *, model, data, params: dict, metrics: dict) -> None:
    import mlflow

    card = invoice_model_card(model_name=spec.model_name, feature_service=spec.feature_service,
                              features=model.features_, classes=model.classes_, params=params,
                              metrics=metrics, data={"source": data.source, "invoices": len(data.features),
                                                     "train invoices": int(data.train.sum()),
                                                     "test invoices": int(data.test.sum()),
                                                     "test period": params["test_period"],
                                                     "feedback labels used": params["feedback_labels_used"]})
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "model_card.md").write_text(card)
        mlflow.log_artifact(str(Path(tmp, "model_card.md")))


def log_and_register_invoice(spec, *, model, data, metrics: dict[str, float], tracking_uri: str | None,
                             fit_seconds: float) -> dict:
    """One MLflow run with params, metrics, model (pyfunc, signature, pip requirements) and card."""
    import mlflow
    from mlflow.models import infer_signature

    from models.mlflow_invoice_wrapper import InvoiceDiscrepancyPyfunc

    uri = tracking.configure(tracking_uri)
    experiment = tracking.ensure_experiment(spec.experiment, uri)
    sample = data.features[data.test].head(200).reset_index(drop=True)
    signature = infer_signature(sample, model.score(sample))
    params = _params(spec, model, data)
    with mlflow.start_run(experiment_id=experiment, run_name=f"{spec.job}-{spec.seed}") as run:
        mlflow.set_tags({"job": spec.job, "feature_service": spec.feature_service,
                         "git_commit": params["git_commit"]})
        mlflow.log_params(params)
        mlflow.log_metrics({**_finite(metrics), "fit_seconds": fit_seconds})
        _log_card(spec, model=model, data=data, params=params, metrics=metrics)
        version = log_pyfunc(spec, python_model=InvoiceDiscrepancyPyfunc(model), signature=signature,
                             example=sample.head(3))
    register_challenger(spec, version)
    summary = {k: (None if isinstance(v, float) and math.isnan(v) else round(v, 6)) for k, v in metrics.items()}
    return {**summary, **{k: data.feedback.get(k, 0) for k in SUMMARY_EXTRA}, "model_name": spec.model_name,
            "model_version": version, "run_id": run.info.run_id, "feature_service": spec.feature_service,
            "tracking_uri": uri, "fit_seconds": round(fit_seconds, 2)}

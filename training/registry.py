"""Logging a fitted model, its evidence and its card to MLflow, and registering it as challenger."""

from __future__ import annotations

import importlib.metadata
import tempfile
from pathlib import Path

import pandas as pd

from models.card import delay_model_card
from training import tracking

PINNED = ("lightgbm", "scikit-learn", "pandas", "numpy", "mlflow", "pyarrow", "cloudpickle")


def pip_requirements() -> list[str]:
    """Exact versions of what the pickled model needs to load and predict."""
    return [f"{name}=={importlib.metadata.version(name)}" for name in PINNED]


def dataset_digest(frame: pd.DataFrame) -> str:
    """Stable content digest of the training shipments (order-sensitive)."""
    return f"{int(pd.util.hash_pandas_object(frame, index=False).sum()) & (2**64 - 1):016x}"


def _params(spec, model, data) -> dict[str, object]:
    times = data.shipments["scheduled_departure"]
    return {
        **{f"model.{k}": v for k, v in model.params.lgb_params().items()},
        "model.n_estimators": model.params.n_estimators,
        "model.calibration_blocks": model.params.calibration_blocks,
        **{f"gate.{k}": v for k, v in spec.gate.model_dump().items()},
        "seed": spec.seed, "git_commit": tracking.git_commit(), "feature_service": spec.feature_service,
        "dataset_source": data.source, "dataset_digest": dataset_digest(data.shipments),
        "dataset_rows": len(data.shipments), "train_period": f"{spec.train_start}..{spec.test_start}",
        "test_period": f"{spec.test_start}..{spec.test_end}", "origins": ",".join(spec.origins or ["all"]),
        "first_departure": str(times.min()), "last_departure": str(times.max()),
    }


def log_pyfunc(spec, *, python_model, signature, example: pd.DataFrame) -> str:
    """Log the model (signature, input example, exact pip requirements, its own code) and register it."""
    import mlflow

    info = mlflow.pyfunc.log_model(
        name="model", python_model=python_model, signature=signature, input_example=example,
        pip_requirements=pip_requirements(), code_paths=[str(Path(__file__).resolve().parent.parent / "models")],
        registered_model_name=spec.model_name,
    )
    return str(info.registered_model_version)


def register_challenger(spec, version: str) -> None:
    """Point alias ``challenger`` at the new version and tag it with its FeatureService."""
    from mlflow import MlflowClient

    client = MlflowClient()
    client.set_registered_model_alias(spec.model_name, tracking.CHALLENGER, version)
    client.set_model_version_tag(spec.model_name, version, "feature_service", spec.feature_service)


def log_and_register(spec, *, model, data, metrics: dict[str, float], tracking_uri: str | None,
                     fit_seconds: float) -> dict:
    """One MLflow run with params, metrics, model (pyfunc, signature, pip requirements) and card."""
    import mlflow
    from mlflow.models import infer_signature

    from models.mlflow_wrapper import DelayRiskPyfunc

    uri = tracking.configure(tracking_uri)
    experiment = tracking.ensure_experiment(spec.experiment, uri)
    sample = data.features[data.test].head(200)
    signature = infer_signature(sample, pd.Series(model.predict_proba(sample), name="p_late"))
    params = _params(spec, model, data)
    with mlflow.start_run(experiment_id=experiment, run_name=f"{spec.job}-{spec.seed}") as run:
        mlflow.set_tags({"job": spec.job, "feature_service": spec.feature_service,
                         "git_commit": params["git_commit"]})
        mlflow.log_params(params)
        mlflow.log_metrics({**metrics, "fit_seconds": fit_seconds})
        card = delay_model_card(model_name=spec.model_name, feature_service=spec.feature_service,
                                features=model.features_, params=params, metrics=metrics,
                                data={"source": data.source, "rows": len(data.shipments),
                                      "test period": params["test_period"]})
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "model_card.md").write_text(card)
            mlflow.log_artifact(str(Path(tmp, "model_card.md")))
        version = log_pyfunc(spec, python_model=DelayRiskPyfunc(model), signature=signature, example=sample.head(3))
    register_challenger(spec, version)
    return {**{k: round(v, 6) for k, v in metrics.items()}, "model_name": spec.model_name,
            "model_version": version, "run_id": run.info.run_id, "feature_service": spec.feature_service,
            "tracking_uri": uri}

"""MLflow wiring: an explicit SQLite tracking store under ``mlruns/``, registry aliases, the promotion gate.

MLflow 3.13+ refuses a plain ``file:`` store and, with no URI set, silently creates ``mlflow.db`` in the
working directory; so the URI is always set explicitly, and only when a job runs (never at import).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHAMPION, CHALLENGER = "champion", "challenger"
HIGHER_IS_BETTER = {"test_auc": True, "test_pr_auc": True, "ece": False, "brier": False}
GATE_METRICS: dict[str, dict[str, bool]] = {
    "invoice_discrepancy": {"macro_f1": True, "clean_precision": True, "duplicate_recall": True,
                            "amount_at_risk_mae": False},
}
"""Per registered model, the held-out metrics the gate compares (True: higher is better). Models not
listed are gated on the delay model's ``HIGHER_IS_BETTER``."""


def gate_metrics(model_name: str) -> dict[str, bool]:
    """The gate's metrics and their direction for a registered model."""
    return GATE_METRICS.get(model_name, HIGHER_IS_BETTER)


def tracking_uri(root: Path | None = None) -> str:
    """``TOLLGATE_MLFLOW_URI`` if set, else ``sqlite:///<root>/mlruns/mlflow.db``."""
    if os.environ.get("TOLLGATE_MLFLOW_URI"):
        return os.environ["TOLLGATE_MLFLOW_URI"]
    mlruns = (root or PROJECT_ROOT) / "mlruns"
    mlruns.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{mlruns / 'mlflow.db'}"


def artifact_root(uri: str) -> str:
    """Artifacts beside the tracking database (``.../mlruns/artifacts``)."""
    if uri.startswith("sqlite:///"):
        return str(Path(uri.removeprefix("sqlite:///")).parent / "artifacts")
    return str(PROJECT_ROOT / "mlruns" / "artifacts")


def configure(uri: str | None = None) -> str:
    """Point MLflow at the tracking store; return the URI used."""
    import mlflow

    uri = uri or tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def ensure_experiment(name: str, uri: str) -> str:
    """Experiment id, creating it with artifacts under ``mlruns/`` if needed."""
    import mlflow

    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    return mlflow.create_experiment(name, artifact_location=Path(artifact_root(uri), name).as_uri())


def git_commit() -> str:
    """HEAD commit of the checkout (``unknown`` outside git), with ``-dirty`` if files changed."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                              text=True, check=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


@dataclass(frozen=True)
class PromotionResult:
    """Outcome of the champion/challenger gate."""

    promoted: bool
    model_name: str
    challenger_version: str | None
    champion_version: str | None
    reasons: list[str]


def alias_version(client, name: str, alias: str):
    """The version behind ``alias`` of the registered model ``name``, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def _metrics(client, version) -> dict[str, float]:
    return client.get_run(version.run_id).data.metrics


def compare(challenger: dict[str, float], champion: dict[str, float], tolerance: dict[str, float],
            higher_is_better: dict[str, bool] | None = None) -> list[str]:
    """Reasons the challenger is worse than the champion beyond tolerance (empty list: promotable)."""
    reasons = []
    for metric, higher in (higher_is_better or HIGHER_IS_BETTER).items():
        if metric not in challenger or metric not in champion:
            reasons.append(f"{metric}: missing on {'challenger' if metric not in challenger else 'champion'}")
            continue
        slack = tolerance.get(metric, 0.0)
        worse = challenger[metric] < champion[metric] - slack if higher else (
            challenger[metric] > champion[metric] + slack)
        if worse:
            reasons.append(f"{metric}: challenger {challenger[metric]:.4f} vs champion {champion[metric]:.4f}")
    return reasons


def promote(model_name: str, tolerance: dict[str, float] | None = None) -> PromotionResult:
    """Move ``champion`` to the ``challenger`` version if it is no worse on the test metrics."""
    from mlflow import MlflowClient

    client = MlflowClient()
    challenger = alias_version(client, model_name, CHALLENGER)
    champion = alias_version(client, model_name, CHAMPION)
    if challenger is None:
        return PromotionResult(False, model_name, None, champion and champion.version, ["no challenger"])
    if champion is not None and champion.version == challenger.version:
        return PromotionResult(False, model_name, challenger.version, champion.version,
                               ["challenger is already champion"])
    reasons = []
    if champion is not None:
        metrics = gate_metrics(model_name)
        tol = tolerance if tolerance is not None else _gate_tolerance(client, challenger.run_id, metrics)
        reasons = compare(_metrics(client, challenger), _metrics(client, champion), tol, metrics)
        ch_period = client.get_run(challenger.run_id).data.params.get("test_period")
        cp_period = client.get_run(champion.run_id).data.params.get("test_period")
        if ch_period != cp_period:
            reasons.append(f"test periods differ ({ch_period} vs {cp_period}): metrics not comparable")
    if not reasons:
        client.set_registered_model_alias(model_name, CHAMPION, challenger.version)
    return PromotionResult(not reasons, model_name, challenger.version,
                           champion.version if champion else None, reasons)


def _gate_tolerance(client, run_id: str, metrics: dict[str, bool] | None = None) -> dict[str, float]:
    params = client.get_run(run_id).data.params
    return {m: float(params.get(f"gate.{m}", 0.0)) for m in (metrics or HIGHER_IS_BETTER)}

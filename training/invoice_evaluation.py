"""Held-out metrics of the invoice model and of the rules-only audit, on the same invoices.

Two sets of labels, never mixed up:

* **recorded** (unprefixed keys: ``macro_f1``, ``clean_precision`` …) — the verdicts as a finance team
  recorded them, 1.5 % of them wrong. This is all a real team has, so it is the primary yardstick.
* **true** (``true_*`` keys) — the generator's ground truth, which only a synthetic world can offer.

``ceiling_*`` scores the *true* labels against the recorded ones: what a perfect model would reach on
the recorded yardstick, i.e. how much of a shortfall is label noise rather than the model.
Nothing here ever sees a training row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score, log_loss, precision_score, recall_score

from features.rerating_rules import rules_only_audit
from models.calibration import expected_calibration_error
from models.invoice_amount import WHOLE_INVOICE
from models.invoice_calibration import top_label_calibration_error

CLEAN, DUPLICATE = "clean", "duplicate"


def _ratio(hit: np.ndarray, of: np.ndarray) -> float:
    return float(hit[of].mean()) if of.any() else float("nan")


def classification_metrics(y: np.ndarray, predicted: np.ndarray, *, classes: tuple[str, ...]) -> dict[str, float]:
    """Macro F1 over the classes present in ``y``, and each class's precision and recall."""
    present = [c for c in classes if (y == c).any()]
    out = {"macro_f1": float(f1_score(y, predicted, labels=present, average="macro", zero_division=0))}
    for name in classes:
        truth, said = y == name, predicted == name
        out[f"precision_{name}"] = float(precision_score(truth, said, zero_division=0)) if said.any() else float("nan")
        out[f"recall_{name}"] = _ratio(said, truth)
    out["clean_precision"] = out[f"precision_{CLEAN}"]
    out["duplicate_recall"] = out[f"recall_{DUPLICATE}"]
    return out


def split_false_duplicate_rate(predicted: np.ndarray, labels: pd.DataFrame) -> float:
    """Share of legitimate split invoices (tagged ``split_invoice``, truly not duplicates) called duplicates."""
    if "lookalikes" not in labels or "true_discrepancy" not in labels:
        return float("nan")
    split = labels["lookalikes"].fillna("").str.split(";").apply(lambda tags: "split_invoice" in tags)
    legit = (split & (labels["true_discrepancy"] != DUPLICATE)).to_numpy()
    return _ratio(predicted == DUPLICATE, legit)


def recorded_amount_at_risk(labels: pd.DataFrame, totals: pd.Series) -> np.ndarray:
    """Dollars at risk by the recorded verdict: 0 if clean, the total for duplicates and premature
    invoices, else the recorded overbilled amount (NaN where a reviewer's verdict gave no figure)."""
    verdict = labels["discrepancy"].to_numpy()
    amount = labels["overbilled_amount"].to_numpy(dtype=float)
    return np.where(verdict == CLEAN, 0.0, np.where(np.isin(verdict, WHOLE_INVOICE), totals.to_numpy(), amount))


def _mae(predicted: np.ndarray, actual: np.ndarray) -> float:
    ok = ~np.isnan(actual)
    return float(np.abs(predicted[ok] - actual[ok]).mean()) if ok.any() else float("nan")


def _scored(prefix: str, y: np.ndarray, predicted: np.ndarray, *, classes: tuple[str, ...],
            labels: pd.DataFrame) -> dict[str, float]:
    metrics = classification_metrics(y, predicted, classes=classes)
    metrics["split_invoice_false_duplicate_rate"] = split_false_duplicate_rate(predicted, labels)
    return {f"{prefix}{k}": v for k, v in metrics.items()}


def _calibration(y: np.ndarray, proba: pd.DataFrame) -> dict[str, float]:
    codes = pd.Categorical(y, categories=list(proba.columns)).codes
    onehot = np.eye(proba.shape[1])[codes]
    return {"ece_clean": expected_calibration_error(y == CLEAN, proba[CLEAN].to_numpy()),
            "ece_top_label": top_label_calibration_error(codes, proba.to_numpy()),
            "brier": float(((onehot - proba.to_numpy()) ** 2).sum(axis=1).mean()),
            "log_loss": float(log_loss(codes, proba.to_numpy(), labels=list(range(proba.shape[1]))))}


def _amount_metrics(at_risk: np.ndarray, labels: pd.DataFrame, totals: pd.Series) -> dict[str, float]:
    actual = recorded_amount_at_risk(labels, totals)
    known = ~np.isnan(actual)
    total = float(actual[known].sum())
    return {"amount_at_risk_mae": _mae(at_risk, actual),
            "amount_at_risk_sum_ratio": float(at_risk[known].sum()) / total if total else float("nan")}


def _true_metrics(predicted: np.ndarray, rules: np.ndarray, at_risk: np.ndarray, *,
                  labels: pd.DataFrame, classes: tuple[str, ...]) -> dict[str, float]:
    """Against the generator's truth, and the truth itself scored against the recorded verdicts."""
    truth, recorded = labels["true_discrepancy"].to_numpy(), labels["discrepancy"].to_numpy()
    ceiling = _scored("ceiling_", recorded, truth, classes=classes, labels=labels)
    return {**_scored("true_", truth, predicted, classes=classes, labels=labels),
            **_scored("true_rules_only_", truth, rules, classes=classes, labels=labels),
            "true_amount_at_risk_mae": _mae(at_risk, labels["amount_at_risk"].to_numpy(dtype=float)),
            **{k: ceiling[k] for k in ("ceiling_macro_f1", "ceiling_clean_precision", "ceiling_duplicate_recall")}}


def evaluate_invoice(model, data) -> dict[str, float]:
    """Recorded-label and true-label metrics of the model and the rules-only audit on the test months."""
    features, labels, classes = data.features[data.test], data.labels[data.test], model.classes_
    scores = model.score(features)
    predicted, at_risk = scores["predicted_class"].to_numpy(), scores["amount_at_risk"].to_numpy()
    rules = rules_only_audit(features).to_numpy()
    recorded = labels["discrepancy"].to_numpy()
    metrics = {**_scored("", recorded, predicted, classes=classes, labels=labels),
               **_scored("rules_only_", recorded, rules, classes=classes, labels=labels),
               **_calibration(recorded, scores[[f"p_{c}" for c in classes]].set_axis(list(classes), axis=1)),
               **_amount_metrics(at_risk, labels, features["total_billed"])}
    if "true_discrepancy" in labels and labels["true_discrepancy"].notna().all():
        metrics |= _true_metrics(predicted, rules, at_risk, labels=labels, classes=classes)
    metrics |= {"test_rows": float(len(features)), "train_rows": float(data.train.sum()),
                **{f"test_count_{c}": float((recorded == c).sum()) for c in classes}}
    return metrics

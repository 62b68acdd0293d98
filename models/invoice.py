"""Invoice-discrepancy model: LightGBM multiclass trees, out-of-fold calibration, amount at risk, TreeSHAP.

Scikit-learn style API (``fit`` / ``predict_proba`` / ``predict`` / ``explain``) over the numeric audit
features of ``features.rerating`` (passed in as a frame; this module imports nothing from ``features``
so a pickled model loads wherever ``models/`` does). Sized for serving: ``pred_contrib`` costs grow
with trees x leaves x classes, and 100 rounds x 7 classes x 15 leaves keeps it at ~1-3 ms a row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.calibration import expanding_blocks
from models.delay import Reason
from models.invoice_amount import class_amounts, expected_amount
from models.invoice_calibration import MulticlassCalibrator

CLEAN = "clean"
THREADS = 1
"""One OpenMP thread for fitting and scoring. On the shared 2-core machine two threads were no faster
when idle and up to 20x slower when another process held a core (OpenMP barriers spin-wait): one
smoke fit took 55 s on two threads and 1.9 s on one, back to back. Override with ``extra``."""


@dataclass(frozen=True)
class InvoiceModelParams:
    """Tree hyper-parameters and the training-time subsampling of clean invoices."""

    n_estimators: int = 100
    num_leaves: int = 15
    learning_rate: float = 0.1
    min_child_samples: int = 50
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    lambda_l2: float = 1.0
    max_bin: int = 63
    clean_sample_rate: float = 0.25
    """Share of clean training rows kept (weighted 1/rate, so the loss stays unbiased): nine invoices
    in ten are clean and say little; keeping a quarter cuts fitting time about three-fold."""
    calibration_blocks: int = 4
    seed: int = 13
    extra: dict = field(default_factory=dict)

    def lgb_params(self, num_class: int) -> dict:
        return {"objective": "multiclass", "num_class": num_class, "num_leaves": self.num_leaves,
                "learning_rate": self.learning_rate, "min_child_samples": self.min_child_samples,
                "feature_fraction": self.feature_fraction, "bagging_fraction": self.bagging_fraction,
                "bagging_freq": 1, "lambda_l2": self.lambda_l2, "max_bin": self.max_bin, "seed": self.seed,
                "deterministic": True, "force_row_wise": True, "num_threads": THREADS, "verbose": -1, **self.extra}


@dataclass(frozen=True)
class InvoiceExplanation:
    """Why one invoice got its verdict: TreeSHAP contributions to the predicted class's raw score."""

    predicted_class: str
    probability: float
    amount_at_risk: float
    reasons: tuple[Reason, ...]


class InvoiceDiscrepancyModel:
    """Calibrated class probabilities, predicted class and dollars at risk for carrier invoices."""

    def __init__(self, params: InvoiceModelParams | None = None) -> None:
        self.params = params or InvoiceModelParams()
        self.classes_: tuple[str, ...] = ()
        self.features_: list[str] = []
        self.booster_: lgb.Booster | None = None
        self.calibrator_: MulticlassCalibrator | None = None

    # -- fitting ----------------------------------------------------------------------------
    def _matrix(self, frame: pd.DataFrame) -> np.ndarray:
        if list(frame.columns) == self.features_:  # the usual case: audit_features' own order, no copy
            return frame.to_numpy(dtype=float)
        missing = [c for c in self.features_ if c not in frame.columns]
        if missing:
            raise KeyError(f"missing feature column(s): {missing}")
        return frame[self.features_].to_numpy(dtype=float)

    def _train(self, x: np.ndarray, y: np.ndarray, rows: np.ndarray) -> lgb.Booster:
        """Trees on ``rows``, keeping every discrepancy and a weighted sample of the clean invoices."""
        rate = self.params.clean_sample_rate
        clean_code = self.classes_.index(CLEAN) if CLEAN in self.classes_ else -1
        draw = np.random.default_rng(self.params.seed).random(len(rows))
        kept = rows[(y[rows] != clean_code) | (draw < rate)]
        weight = np.where(y[kept] == clean_code, 1.0 / rate, 1.0)
        data = lgb.Dataset(x[kept], label=y[kept], weight=weight, feature_name=self.features_,
                           free_raw_data=True)
        return lgb.train(self.params.lgb_params(len(self.classes_)), data,
                         num_boost_round=self.params.n_estimators)

    def fit(self, features: pd.DataFrame, labels: pd.Series, *, times: pd.Series,
            classes: tuple[str, ...]) -> InvoiceDiscrepancyModel:
        """Fit the trees on all rows; fit the calibrator on time-ordered out-of-fold probabilities.

        ``classes`` fixes the column order of the probabilities (every class gets a column even if a
        training period lacks it); ``times`` orders the calibration blocks (the invoices' receipt).
        """
        unknown = sorted(set(labels.astype(str)) - set(classes))
        if unknown:
            raise ValueError(f"labels outside the classes: {unknown}")
        self.classes_, self.features_ = tuple(classes), list(features.columns)
        x = self._matrix(features)
        y = pd.Categorical(labels.astype(str), categories=self.classes_).codes.astype(int)
        stamps = pd.to_datetime(times, utc=True).astype("int64").to_numpy()
        blocks = expanding_blocks(stamps, self.params.calibration_blocks)
        oof_rows, oof_raw = [], []
        for k in range(1, len(blocks)):
            booster = self._train(x, y, np.concatenate(blocks[:k]))
            oof_rows.append(blocks[k])
            oof_raw.append(booster.predict(x[blocks[k]]))
        self.calibrator_ = MulticlassCalibrator().fit(np.vstack(oof_raw), y[np.concatenate(oof_rows)])
        self.booster_ = self._train(x, y, np.arange(len(y)))
        return self

    # -- scoring ----------------------------------------------------------------------------
    def _predict(self, x: np.ndarray, **kwargs) -> np.ndarray:
        return self.booster_.predict(x, num_threads=self.params.extra.get("num_threads", THREADS), **kwargs)

    def predict_raw(self, features: pd.DataFrame) -> np.ndarray:
        """Uncalibrated softmax probabilities, (n, classes)."""
        return self._predict(self._matrix(features))

    def _proba(self, features: pd.DataFrame, x: np.ndarray | None = None) -> np.ndarray:
        return self.calibrator_.transform(self._predict(self._matrix(features) if x is None else x))

    def predict_proba(self, features: pd.DataFrame) -> pd.DataFrame:
        """Calibrated probabilities, one column per class (in ``classes_`` order), index as input."""
        return pd.DataFrame(self._proba(features), index=features.index, columns=list(self.classes_))

    def predict(self, features: pd.DataFrame) -> pd.Series:
        """The most probable class of each invoice."""
        top = self._proba(features).argmax(axis=1)
        return pd.Series(np.asarray(self.classes_, dtype=object)[top], index=features.index, name="predicted_class")

    def amount_at_risk(self, features: pd.DataFrame, proba: pd.DataFrame | None = None) -> pd.Series:
        """Expected recoverable overbilling in dollars (see ``models.invoice_amount``)."""
        proba = self._proba(features) if proba is None else np.asarray(proba, dtype=float)
        amounts = class_amounts(features, self.classes_)
        return pd.Series(expected_amount(proba, amounts), index=features.index, name="amount_at_risk")

    def score(self, features: pd.DataFrame, *, matrix: np.ndarray | None = None) -> pd.DataFrame:
        """What a policy needs: ``p_<class>`` for each class, predicted class, its probability, dollars.

        Plain numpy until one frame is built at the end: this runs for every invoice in serving.
        """
        proba = self._proba(features, matrix)
        top = proba.argmax(axis=1)
        columns = {f"p_{name}": proba[:, k] for k, name in enumerate(self.classes_)}
        columns["predicted_class"] = np.asarray(self.classes_, dtype=object)[top]
        columns["p_predicted"] = proba[np.arange(len(top)), top]
        columns["amount_at_risk"] = expected_amount(proba, class_amounts(features, self.classes_))
        return pd.DataFrame(columns, index=features.index)

    def explain(self, features: pd.DataFrame, top: int = 5) -> list[InvoiceExplanation]:
        """Per invoice: predicted class, its probability, dollars at risk and the ``top`` TreeSHAP
        contributions (raw score of the predicted class), largest magnitude first."""
        x = self._matrix(features)
        scores = self.score(features, matrix=x)
        width = len(self.features_) + 1
        contrib = self._predict(x, pred_contrib=True).reshape(len(x), len(self.classes_), width)
        out = []
        for row, (label, p, amount) in enumerate(scores[["predicted_class", "p_predicted",
                                                          "amount_at_risk"]].itertuples(index=False)):
            values = contrib[row, self.classes_.index(label), :-1]
            order = np.argsort(-np.abs(values), kind="stable")[:top]
            reasons = tuple(Reason(feature=self.features_[i], value=_plain(x[row, i]),
                                   contribution=float(values[i])) for i in order)
            out.append(InvoiceExplanation(predicted_class=label, probability=float(p),
                                          amount_at_risk=float(amount), reasons=reasons))
        return out


def _plain(value: float) -> float | None:
    return None if np.isnan(value) else float(value)

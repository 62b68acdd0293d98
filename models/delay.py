"""Delay-risk model: LightGBM trees, out-of-fold isotonic calibration, TreeSHAP explanations.

Scikit-learn style API (``fit`` / ``predict_proba`` / ``explain``). The hot path calls
``booster.predict`` on a numpy matrix (the sklearn wrapper costs ~1 ms a call); categorical inputs are
mapped to integer codes with a vocabulary frozen at fit time (unknown values become missing).
``explain`` gives exact TreeSHAP reasons, for offline use; the decision service explains by tree path,
tabulated per leaf (``serving/attribution.py``; the two are compared by ``tollgate bench --suite reasons``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.calibration import IsotonicCalibrator, expanding_blocks

CATEGORICAL = ("carrier", "origin", "destination")


@dataclass(frozen=True)
class DelayModelParams:
    """Tree hyper-parameters; sized so that ``pred_contrib`` stays ~1 ms a row."""

    n_estimators: int = 200
    num_leaves: int = 31
    learning_rate: float = 0.05
    min_child_samples: int = 200
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    lambda_l2: float = 1.0
    calibration_blocks: int = 5
    seed: int = 13
    extra: dict = field(default_factory=dict)

    def lgb_params(self) -> dict:
        return {"objective": "binary", "num_leaves": self.num_leaves, "learning_rate": self.learning_rate,
                "min_child_samples": self.min_child_samples, "feature_fraction": self.feature_fraction,
                "bagging_fraction": self.bagging_fraction, "bagging_freq": 1, "lambda_l2": self.lambda_l2,
                "seed": self.seed, "deterministic": True, "force_row_wise": True, "num_threads": 2,
                "verbose": -1, **self.extra}


@dataclass(frozen=True)
class Reason:
    """One signed contribution to a decision's log-odds."""

    feature: str
    value: object
    contribution: float


class DelayRiskModel:
    """Calibrated probability that a shipment arrives late (or is cancelled)."""

    def __init__(self, params: DelayModelParams | None = None) -> None:
        self.params = params or DelayModelParams()
        self.features_: list[str] = []
        self.vocab_: dict[str, list[str]] = {}
        self.booster_: lgb.Booster | None = None
        self.calibrator_: IsotonicCalibrator | None = None

    # -- encoding ---------------------------------------------------------------------------
    def _matrix(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.features_ if c not in frame.columns]
        if missing:
            raise KeyError(f"missing feature column(s): {missing}")
        out = np.empty((len(frame), len(self.features_)), dtype=float)
        for j, name in enumerate(self.features_):
            column = frame[name]
            if name in self.vocab_:
                codes = self._codes(name)
                out[:, j] = [codes.get(str(v), np.nan) if v is not None else np.nan for v in column.to_numpy()]
            else:
                out[:, j] = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
        return out

    def _codes(self, name: str) -> dict[str, float]:
        """Category -> integer code (as float), the vocabulary's order; built once per column."""
        cache = self.__dict__.setdefault("_code_cache", {})
        if name not in cache:
            cache[name] = {value: float(i) for i, value in enumerate(self.vocab_[name])}
        return cache[name]

    def _train(self, x: np.ndarray, y: np.ndarray) -> lgb.Booster:
        cats = [i for i, n in enumerate(self.features_) if n in self.vocab_]
        data = lgb.Dataset(x, label=y, feature_name=self.features_, categorical_feature=cats,
                           free_raw_data=True)
        return lgb.train(self.params.lgb_params(), data, num_boost_round=self.params.n_estimators)

    # -- public API -------------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame, y: pd.Series, *, times: pd.Series) -> DelayRiskModel:
        """Fit the trees on all rows; fit the calibrator on time-ordered out-of-fold scores."""
        self.features_ = list(frame.columns)
        self.vocab_ = {c: sorted(frame[c].astype(str).unique()) for c in CATEGORICAL if c in frame}
        x, target = self._matrix(frame), np.asarray(y, dtype=float)
        blocks = expanding_blocks(pd.to_datetime(times).astype("int64").to_numpy(), self.params.calibration_blocks)
        oof_idx, oof_raw = [], []
        for k in range(1, len(blocks)):
            seen = np.concatenate(blocks[:k])
            booster = self._train(x[seen], target[seen])
            oof_idx.append(blocks[k])
            oof_raw.append(booster.predict(x[blocks[k]]))
        idx = np.concatenate(oof_idx)
        self.calibrator_ = IsotonicCalibrator().fit(np.concatenate(oof_raw), target[idx])
        self.booster_ = self._train(x, target)
        return self

    def predict_raw(self, frame: pd.DataFrame) -> np.ndarray:
        return self.booster_.predict(self._matrix(frame))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated P(late) per row."""
        return self.calibrator_.transform(self.predict_raw(frame))

    def explain(self, frame: pd.DataFrame, top: int = 5) -> list[list[Reason]]:
        """Top contributions (TreeSHAP in log-odds) per row, largest magnitude first."""
        contrib = self.booster_.predict(self._matrix(frame), pred_contrib=True)[:, :-1]
        reasons = []
        for row, values in enumerate(contrib):
            order = np.argsort(-np.abs(values))[:top]
            reasons.append([Reason(feature=self.features_[i], value=_plain(frame.iloc[row][self.features_[i]]),
                                   contribution=float(values[i])) for i in order])
        return reasons


def _plain(value: object) -> object:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value

"""Scoring at decision time: online features from Feast, the champion model, explanations, alternatives.

The scorer owns no business rule: it turns a request into scores and reasons; the policy decides.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from features.assemble import LOOKED_UP, entity_keys, model_columns, with_carrier
from features.errors import FeaturesUnavailable, ModelUnavailable
from features.online import OnlineReader
from serving.attribution import PathAttribution, probability

TRAILING = ("carrier_volume_30d", "lane_volume_30d")


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    feature_service: str
    model: object


def load_champion(model_name: str, tracking_uri: str) -> LoadedModel:
    """The model behind alias ``champion`` (raises ModelUnavailable)."""
    return load_model(model_name, tracking_uri, alias="champion")


def load_model(model_name: str, tracking_uri: str, *, alias: str | None = None,
               version: str | None = None) -> LoadedModel:
    """A registered model by alias or version (raises ModelUnavailable)."""
    import mlflow
    from mlflow import MlflowClient

    ref = f"@{alias}" if alias else f"/{version}"
    try:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        client = MlflowClient()
        found = (client.get_model_version_by_alias(model_name, alias) if alias
                 else client.get_model_version(model_name, str(version)))
        loaded = mlflow.pyfunc.load_model(f"models:/{model_name}{ref}")
        inner = loaded.unwrap_python_model().model
    except Exception as exc:  # noqa: BLE001 - any registry/artifact failure means no model
        raise ModelUnavailable(f"{model_name}{ref} could not be loaded: {exc}") from exc
    service = (found.tags or {}).get("feature_service", "delay_risk_v1")
    return LoadedModel(model_name, str(found.version), service, inner)


def category_codes(inner) -> dict[str, dict[str, float]]:
    """Category -> code (as float) for each categorical input, from the model's frozen vocabulary."""
    return {name: {value: float(i) for i, value in enumerate(values)} for name, values in inner.vocab_.items()}


def model_matrix(inner, codes: dict[str, dict[str, float]], columns: Mapping) -> np.ndarray:
    """The model's input matrix from columns (name -> values); unknown categories become missing."""
    n = len(next(iter(columns.values()))) if columns else 0
    x = np.empty((n, len(inner.features_)), dtype=float)
    for j, name in enumerate(inner.features_):
        values = columns[name]
        known = codes.get(name)
        if known is not None:
            x[:, j] = [known.get(str(v), math.nan) for v in values]
        else:  # numpy columns on the hot path; lists (a logged decision's values, None for missing) otherwise
            x[:, j] = values if isinstance(values, np.ndarray) else [math.nan if v is None else v for v in values]
    return x


@dataclass
class DelayScores:
    p_late: np.ndarray
    reasons: list[list[dict]]
    features: list[dict]
    features_missing: list[bool]


def risk_band(p: float) -> str:
    return "high" if p >= 0.5 else "elevated" if p >= 0.3 else "low"


def _plain_column(values) -> list:
    """A column as JSON-ready values: numpy scalars become Python numbers, NaN becomes None (a batch's
    float columns by numpy's NaN mask; for a decision's few rows the per-value check costs less)."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "f" and len(values) > 16:
        items = values.tolist()
        for i in np.flatnonzero(np.isnan(values)).tolist():
            items[i] = None
        return items
    items = values.tolist() if isinstance(values, np.ndarray) else list(values)
    return [None if value is None or (isinstance(value, float) and math.isnan(value)) else value
            for value in items]


class DelayScorer:
    """Scores shipments with the champion delay model and Feast's online store.

    The hot path works on plain rows and numpy arrays: :func:`features.assemble.model_columns` builds
    the model's inputs (the same values as the training frame, tested), the trees are asked once for the
    leaf each row reaches (one thread: the service runs one worker per core) and the leaves give both the
    score and the reasons (:mod:`serving.attribution`). Only the model's fitted state is used —
    ``features_``, ``vocab_``, ``booster_``, ``calibrator_`` — so a champion logged by an earlier version
    of ``models/`` scores the same way.
    """

    def __init__(self, model: LoadedModel, store, lane_carriers: dict[str, list[str]]) -> None:
        self.model, self.store, self.lane_carriers = model, store, lane_carriers
        self.reader = OnlineReader(store, model.feature_service)
        self._prepare()

    def _prepare(self) -> None:
        inner = self.model.model
        order = {name: j for j, name in enumerate(self.reader.columns)}
        missing = [c for c in LOOKED_UP if c not in order]
        if missing:
            raise FeaturesUnavailable(f"FeatureService {self.model.feature_service} lacks feature(s) {missing}")
        self._take = np.array([order[c] for c in LOOKED_UP])
        self._trailing = [LOOKED_UP.index(c) for c in TRAILING]
        self._codes = category_codes(inner)
        self._paths = PathAttribution(inner.booster_)
        if self._paths.objective != "binary sigmoid:1":
            raise ModelUnavailable(f"{self.model.name} v{self.model.version} has objective "
                                   f"'{self._paths.objective}', not 'binary sigmoid:1'")

    def _lookup(self, rows: list[dict], keys: list[dict] | None = None) -> np.ndarray:
        """Looked-up features, one row per shipment, ``LOOKED_UP`` order (``keys``: the rows' entity keys,
        when already known)."""
        return self.reader.values(keys if keys is not None else [entity_keys(r) for r in rows])[:, self._take]

    def _matrix(self, columns: dict) -> np.ndarray:
        names = self.model.model.features_
        unknown = [name for name in names if name not in columns]
        if unknown:  # a champion trained on features this service does not build: no usable model
            raise ModelUnavailable(f"{self.model.name} v{self.model.version} expects unknown feature(s) {unknown}")
        return model_matrix(self.model.model, self._codes, columns)

    def score(self, shipments: Sequence[Mapping], *, explain: bool = True) -> DelayScores:
        """Score the shipments (request fields as mappings), with their reasons if ``explain``; the other
        carriers on their lanes are :meth:`alternatives`."""
        rows = list(shipments)
        looked_up = self._lookup(rows)
        columns = model_columns(rows, looked_up)
        x = self._matrix(columns)
        inner = self.model.model
        leaves = self._paths.leaves(x)
        p_late = inner.calibrator_.transform(probability(self._paths.raw_of(leaves)))
        names = inner.features_
        features = [dict(zip(names, row, strict=True)) for row in zip(*(_plain_column(columns[name])
                                                                       for name in names), strict=True)]
        reasons: list[list[dict]] = [[] for _ in rows]
        if explain:
            contrib = self._paths.contributions_of(leaves)
            top = np.argsort(-np.abs(contrib), axis=1)[:, :5]  # the same sort as row by row, all rows at once
            weights = np.take_along_axis(contrib, top, axis=1).tolist()
            for i, (columns_i, weights_i) in enumerate(zip(top.tolist(), weights, strict=True)):
                row = features[i]
                reasons[i] = [{"feature": names[j], "value": row[names[j]], "contribution": w}
                              for j, w in zip(columns_i, weights_i, strict=True)]
        missing = np.isnan(looked_up[:, self._trailing]).any(axis=1).tolist()
        return DelayScores(p_late, reasons, features, missing)

    def alternatives(self, shipments: Sequence[Mapping], p_late: np.ndarray) -> list[list[dict]]:
        """Per shipment (``p_late``: its own score), every other carrier on its lane scored for that very
        shipment, least risky first. Asked for only for the shipments whose decision reads them
        (``rules_engine.batch.reads``): they cost more than the shipments' own scores."""
        rows, keys, owners = self._alternative_rows(shipments, [entity_keys(s) for s in shipments])
        if not rows:
            return [[] for _ in shipments]
        x = self._matrix(model_columns(rows, self._lookup(rows, keys)))
        p_alt = self.model.model.calibrator_.transform(probability(self._paths.raw_of(self._paths.leaves(x))))
        return self._ranked([r["carrier"] for r in rows], p_alt, owners, np.asarray(p_late, dtype=float))

    def _alternative_rows(self, shipments: Sequence[Mapping], keys: list[dict]
                          ) -> tuple[list[dict], list[dict], list[int]]:
        """The shipments with each other carrier on their lanes: rows, their entity keys, their owners."""
        rows, alt_keys, owners = [], [], []
        for i, shipment in enumerate(shipments):
            for carrier in self.lane_carriers.get(keys[i]["lane"], ()):
                if carrier != shipment["carrier"]:
                    rows.append({**shipment, "carrier": carrier})
                    alt_keys.append(with_carrier(keys[i], carrier))
                    owners.append(i)
        return rows, alt_keys, owners

    @staticmethod
    def _ranked(carriers: list[str], p_alt, owners: list[int], p) -> list[list[dict]]:
        """Alternatives per shipment, scored for that very shipment, least risky first."""
        out: list[list[dict]] = [[] for _ in range(len(p))]
        for carrier, value, owner in zip(carriers, p_alt, owners, strict=True):
            out[owner].append({"carrier": carrier, "p_late": round(float(value), 4),
                               "gain": round(float(p[owner]) - float(value), 4)})
        return [sorted(alts, key=lambda a: a["p_late"]) for alts in out]

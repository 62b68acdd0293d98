"""Scoring at decision time: online features from Feast, the champion model, explanations, alternatives.

The scorer owns no business rule: it turns a request into scores and reasons; the policy decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.online import OnlineReader
from features.assemble import LOOKED_UP, model_frame
from features.errors import FeaturesUnavailable, ModelUnavailable
from features.transforms import carrier_origin_key, entity_frame, lane_key

TRAILING = ("carrier_volume_30d", "lane_volume_30d")


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    feature_service: str
    model: object


def load_champion(model_name: str, tracking_uri: str) -> LoadedModel:
    """The model behind alias ``champion`` (raises ModelUnavailable)."""
    import mlflow
    from mlflow import MlflowClient

    try:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        version = MlflowClient().get_model_version_by_alias(model_name, "champion")
        loaded = mlflow.pyfunc.load_model(f"models:/{model_name}@champion")
        inner = loaded.unwrap_python_model().model
    except Exception as exc:  # noqa: BLE001 - any registry/artifact failure means no model
        raise ModelUnavailable(f"{model_name}@champion could not be loaded: {exc}") from exc
    service = (version.tags or {}).get("feature_service", "delay_risk_v1")
    return LoadedModel(model_name, str(version.version), service, inner)


@dataclass
class DelayScores:
    p_late: np.ndarray
    reasons: list[list[dict]]
    features: pd.DataFrame
    features_missing: list[bool]
    alternatives: list[list[dict]] = field(default_factory=list)


def risk_band(p: float) -> str:
    return "high" if p >= 0.5 else "elevated" if p >= 0.3 else "low"


class DelayScorer:
    """Scores shipments with the champion delay model and Feast's online store."""

    def __init__(self, model: LoadedModel, store, lane_carriers: dict[str, list[str]]) -> None:
        self.model, self.store, self.lane_carriers = model, store, lane_carriers
        self.reader = OnlineReader(store, model.feature_service)

    def _lookup(self, shipments: pd.DataFrame) -> pd.DataFrame:
        entities = entity_frame(shipments).drop(columns=["shipment_id", "event_timestamp"])
        online = self.reader.read(entities.to_dict("records"))
        missing = [c for c in LOOKED_UP if c not in online.columns]
        if missing:
            raise FeaturesUnavailable(f"online store lacks feature(s) {missing}")
        return online[LOOKED_UP].astype(float)

    def score(self, shipments: pd.DataFrame, *, explain: bool = True, reroute: bool = True) -> DelayScores:
        """Score the shipments and, in the same pass, every alternative carrier on their lanes."""
        shipments = shipments.reset_index(drop=True)
        variants, owners = self._variants(shipments) if reroute else (shipments.iloc[0:0], [])
        combined = pd.concat([shipments, variants], ignore_index=True) if len(variants) else shipments
        looked_up = self._lookup(combined)
        frame = model_frame(combined, looked_up)
        p_all = self.model.model.predict_proba(frame)
        n = len(shipments)
        p, own = p_all[:n], frame.iloc[:n]
        reasons = ([[r.__dict__ for r in row] for row in self.model.model.explain(own, top=5)]
                   if explain else [[] for _ in range(n)])
        missing = looked_up[list(TRAILING)].iloc[:n].isna().any(axis=1).tolist()
        scores = DelayScores(p, reasons, own, missing)
        if reroute:
            scores.alternatives = self._ranked(variants, p_all[n:], owners, p)
        return scores

    def _variants(self, shipments: pd.DataFrame) -> tuple[pd.DataFrame, list[int]]:
        """The same shipments with each other carrier that serves their lane."""
        rows, owners = [], []
        lanes = lane_key(shipments["origin"], shipments["destination"])
        for i, lane in enumerate(lanes):
            for carrier in self.lane_carriers.get(lane, []):
                if carrier != shipments.at[i, "carrier"]:
                    rows.append(shipments.iloc[[i]].assign(carrier=carrier))
                    owners.append(i)
        if not rows:
            return shipments.iloc[0:0], []
        variants = pd.concat(rows, ignore_index=True)
        variants["carrier_origin"] = carrier_origin_key(variants["carrier"], variants["origin"])
        return variants, owners

    @staticmethod
    def _ranked(variants: pd.DataFrame, p_alt, owners: list[int], p) -> list[list[dict]]:
        """Alternatives per shipment, scored for that very shipment, least risky first."""
        out: list[list[dict]] = [[] for _ in range(len(p))]
        for carrier, value, owner in zip(variants["carrier"] if len(variants) else [], p_alt, owners, strict=False):
            out[owner].append({"carrier": carrier, "p_late": round(float(value), 4),
                               "gain": round(float(p[owner]) - float(value), 4)})
        return [sorted(alts, key=lambda a: a["p_late"]) for alts in out]

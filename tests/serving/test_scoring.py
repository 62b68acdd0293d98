"""DelayScorer: alternatives are the lane's other carriers, scored for the very same shipment."""

import numpy as np
import pandas as pd

from features.assemble import LOOKED_UP
from serving.decisions import _shipment_frame
from serving.schemas import ShipmentIn
from serving.scoring import DelayScorer, LoadedModel
from tests.serving.conftest import SHIPMENT

RISK = {"AA": 0.7, "DL": 0.2, "UA": 0.4, "B6": 0.5}


class CarrierModel:
    """Risk by carrier, plus a little for distance: shows the alternatives keep the shipment's own facts."""

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.array([RISK[c] for c in frame["carrier"]]) + frame["distance_miles"].to_numpy() / 1e5

    def explain(self, frame, top=5):
        return [[] for _ in range(len(frame))]


class NanReader:
    def __init__(self):
        self.calls = []

    def read(self, rows):
        self.calls.append(rows)
        return pd.DataFrame({c: [np.nan] * len(rows) for c in LOOKED_UP})


def _scorer(lanes) -> DelayScorer:
    scorer = DelayScorer.__new__(DelayScorer)
    scorer.model = LoadedModel("delay_risk", "1", "delay_risk_v1", CarrierModel())
    scorer.lane_carriers, scorer.reader, scorer.store = lanes, NanReader(), None
    return scorer


def test_alternatives_ranked_per_shipment_in_one_pass():
    scorer = _scorer({"JFK-LAX": ["AA", "B6", "DL", "UA"], "EWR-ORD": ["UA", "AA"]})
    shipments = _shipment_frame([ShipmentIn(**SHIPMENT), ShipmentIn(**{**SHIPMENT, "shipment_id": "S-2",
                                 "origin": "EWR", "destination": "ORD", "carrier": "UA", "distance_miles": 719})])
    scores = scorer.score(shipments)
    assert len(scorer.reader.calls) == 1 and len(scorer.reader.calls[0]) == 2 + 3 + 1
    first, second = scores.alternatives
    assert [a["carrier"] for a in first] == ["DL", "UA", "B6"]
    assert first[0]["p_late"] == round(0.2 + 2475 / 1e5, 4) and first[0]["gain"] == round(0.7 - 0.2, 4)
    assert [a["carrier"] for a in second] == ["AA"] and second[0]["gain"] < 0
    np.testing.assert_allclose(scores.p_late, [0.7 + 2475 / 1e5, 0.4 + 719 / 1e5])


def test_lane_without_other_carriers_has_no_alternatives():
    scorer = _scorer({})
    scores = scorer.score(_shipment_frame([ShipmentIn(**SHIPMENT)]))
    assert scores.alternatives == [[]] and scores.features_missing == [True]

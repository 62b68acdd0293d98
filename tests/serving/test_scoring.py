"""DelayScorer: alternatives are the lane's other carriers, scored for the very same shipment."""

import numpy as np
import pytest

from features.assemble import LOOKED_UP
from serving.schemas import ShipmentIn
from features.errors import ModelUnavailable
from serving.scoring import DelayScorer, LoadedModel
from tests.serving.conftest import SHIPMENT

RISK = {"AA": 0.7, "DL": 0.2, "UA": 0.4, "B6": 0.5}


class CarrierBooster:
    """Risk by carrier, plus a little for distance: shows the alternatives keep the shipment's own facts."""

    def predict(self, x: np.ndarray, pred_contrib: bool = False, num_threads: int = 0) -> np.ndarray:
        assert num_threads == 1  # the service runs one worker per core
        if pred_contrib:
            return np.zeros((len(x), x.shape[1] + 1))
        carriers = np.array([RISK[c] for c in CarrierModel.vocab_["carrier"]])
        return carriers[x[:, 0].astype(int)] + x[:, 1] / 1e5


class Identity:
    def transform(self, raw):
        return raw


class CarrierModel:
    features_ = ["carrier", "distance_miles", "carrier_volume_30d"]
    vocab_ = {"carrier": sorted(RISK)}
    booster_, calibrator_ = CarrierBooster(), Identity()


class NanReader:
    columns = list(reversed(LOOKED_UP))  # the scorer reorders what the FeatureService returns

    def __init__(self):
        self.calls = []

    def values(self, rows):
        self.calls.append(rows)
        return np.full((len(rows), len(self.columns)), np.nan)


def _scorer(lanes) -> DelayScorer:
    scorer = DelayScorer.__new__(DelayScorer)
    scorer.model = LoadedModel("delay_risk", "1", "delay_risk_v1", CarrierModel())
    scorer.lane_carriers, scorer.reader, scorer.store = lanes, NanReader(), None
    scorer._prepare()
    return scorer


def _rows(*shipments: dict) -> list[dict]:
    return [ShipmentIn(**s).model_dump() for s in shipments]


def test_alternatives_ranked_per_shipment_in_one_pass():
    scorer = _scorer({"JFK-LAX": ["AA", "B6", "DL", "UA"], "EWR-ORD": ["UA", "AA"]})
    shipments = _rows(SHIPMENT, {**SHIPMENT, "shipment_id": "S-2", "origin": "EWR", "destination": "ORD",
                                  "carrier": "UA", "distance_miles": 719})
    scores = scorer.score(shipments)
    assert len(scorer.reader.calls) == 1 and len(scorer.reader.calls[0]) == 2 + 3 + 1
    first, second = scores.alternatives
    assert [a["carrier"] for a in first] == ["DL", "UA", "B6"]
    assert first[0]["p_late"] == round(0.2 + 2475 / 1e5, 4) and first[0]["gain"] == round(0.7 - 0.2, 4)
    assert [a["carrier"] for a in second] == ["AA"] and second[0]["gain"] < 0
    np.testing.assert_allclose(scores.p_late, [0.7 + 2475 / 1e5, 0.4 + 719 / 1e5])


def test_lane_without_other_carriers_has_no_alternatives():
    scorer = _scorer({})
    scores = scorer.score(_rows(SHIPMENT))
    assert scores.alternatives == [[]] and scores.features_missing == [True]


def test_a_champion_expecting_features_the_service_does_not_build_is_unavailable():
    scorer = _scorer({})
    scorer.model = LoadedModel("delay_risk", "9", "delay_risk_v1", type("Odd", (CarrierModel,), {
        "features_": ["carrier", "wind_chill"]})())
    with pytest.raises(ModelUnavailable, match="wind_chill"):
        scorer.score(_rows(SHIPMENT))

"""DelayScorer: alternatives are the lane's other carriers, scored for the very same shipment."""

import lightgbm as lgb
import numpy as np
import pytest

from features.assemble import LOOKED_UP
from serving.schemas import ShipmentIn
from features.errors import ModelUnavailable
from serving.scoring import DelayScorer, LoadedModel
from tests.serving.conftest import SHIPMENT

RISK = {"AA": 0.7, "DL": 0.2, "UA": 0.4, "B6": 0.5}


def _fit_carrier_model():
    """A real little LightGBM: late with the carrier's risk, a little more with distance."""
    rng = np.random.default_rng(3)
    vocab = sorted(RISK)
    codes = rng.integers(0, len(vocab), 8000)
    distance = rng.uniform(100, 3000, 8000)
    p = np.array([RISK[c] for c in vocab])[codes] + distance / 3e4
    x = np.column_stack([codes.astype(float), distance, np.full(8000, np.nan)])
    data = lgb.Dataset(x, label=(rng.random(8000) < p).astype(float), categorical_feature=[0],
                       feature_name=["carrier", "distance_miles", "carrier_volume_30d"])
    booster = lgb.train({"objective": "binary", "num_leaves": 8, "min_child_samples": 50, "verbose": -1,
                         "seed": 1, "deterministic": True, "num_threads": 1}, data, num_boost_round=40)
    return type("CarrierModel", (), {"features_": ["carrier", "distance_miles", "carrier_volume_30d"],
                                     "vocab_": {"carrier": vocab}, "booster_": booster,
                                     "calibrator_": Identity()})()


class Identity:
    def transform(self, raw):
        return raw


CARRIER_MODEL = _fit_carrier_model()


def _direct(carrier: str, distance: float) -> float:
    """The booster asked directly, for comparison with the scorer."""
    x = np.array([[CARRIER_MODEL.vocab_["carrier"].index(carrier), distance, np.nan]], dtype=float)
    return float(CARRIER_MODEL.booster_.predict(x)[0])


class NanReader:
    columns = list(reversed(LOOKED_UP))  # the scorer reorders what the FeatureService returns

    def __init__(self):
        self.calls = []

    def values(self, rows):
        self.calls.append(rows)
        return np.full((len(rows), len(self.columns)), np.nan)


def _scorer(lanes) -> DelayScorer:
    scorer = DelayScorer.__new__(DelayScorer)
    scorer.model = LoadedModel("delay_risk", "1", "delay_risk_v1", CARRIER_MODEL)
    scorer.lane_carriers, scorer.reader, scorer.store = lanes, NanReader(), None
    scorer._prepare()
    return scorer


def _rows(*shipments: dict) -> list[dict]:
    return [ShipmentIn(**s).model_dump() for s in shipments]


def test_alternatives_ranked_per_shipment():
    scorer = _scorer({"JFK-LAX": ["AA", "B6", "DL", "UA"], "EWR-ORD": ["UA", "AA"], "BOS-SFO": ["B6"]})
    shipments = _rows(SHIPMENT, {**SHIPMENT, "shipment_id": "S-2", "origin": "EWR", "destination": "ORD",
                                  "carrier": "UA", "distance_miles": 719},
                      {**SHIPMENT, "shipment_id": "S-3", "origin": "BOS", "destination": "SFO", "carrier": "B6"})
    scores = scorer.score(shipments)
    assert len(scorer.reader.calls) == 1 and len(scorer.reader.calls[0]) == 3  # the shipments alone
    np.testing.assert_allclose(scores.p_late[:2], [_direct("AA", 2475), _direct("UA", 719)], rtol=1e-12)
    first, second, third = scorer.alternatives(shipments, scores.p_late)
    assert len(scorer.reader.calls) == 2 and len(scorer.reader.calls[1]) == 3 + 1  # their alternatives, once
    assert [a["carrier"] for a in first] == ["DL", "UA", "B6"]
    assert first[0]["p_late"] == round(_direct("DL", 2475), 4)
    assert first[0]["gain"] == round(_direct("AA", 2475) - _direct("DL", 2475), 4)
    assert [a["carrier"] for a in second] == ["AA"] and second[0]["gain"] < 0
    assert third == []  # the lane's only carrier: nothing else to suggest
    # asked for some shipments only, each gets what it got among all of them
    assert scorer.alternatives(shipments[1:2], scores.p_late[1:2]) == [second]
    assert scorer.alternatives(shipments[2:], scores.p_late[2:]) == [[]]


def test_reasons_add_up_to_the_score_and_name_the_carrier():
    scorer = _scorer({})
    scores = scorer.score(_rows(SHIPMENT))
    reasons = scores.reasons[0]
    assert reasons[0]["feature"] == "carrier" and reasons[0]["value"] == "AA" and reasons[0]["contribution"] > 0
    p = float(scores.p_late[0])  # identity calibrator: the model's own probability
    total = scorer._paths.bias + sum(r["contribution"] for r in reasons)  # all three features are listed
    assert len(reasons) == 3 and abs(total - np.log(p / (1 - p))) < 1e-9
    assert all(r["feature"] != "carrier_volume_30d" for r in reasons if r["contribution"] != 0)


def test_a_champion_that_is_not_a_binary_classifier_is_unavailable():
    scorer = _scorer({})
    booster = lgb.train({"objective": "regression", "verbose": -1, "num_threads": 1},
                        lgb.Dataset(np.random.default_rng(0).random((200, 3)), label=np.arange(200.0)),
                        num_boost_round=2)
    scorer.model = LoadedModel("delay_risk", "9", "delay_risk_v1", type("Reg", (), {
        "features_": CARRIER_MODEL.features_, "vocab_": CARRIER_MODEL.vocab_, "booster_": booster,
        "calibrator_": Identity()})())
    with pytest.raises(ModelUnavailable, match="regression"):
        scorer._prepare()


def test_lane_without_other_carriers_has_no_alternatives():
    scorer = _scorer({})
    scores = scorer.score(_rows(SHIPMENT))
    assert scorer.alternatives(_rows(SHIPMENT), scores.p_late) == [[]] and scores.features_missing == [True]


def test_a_champion_expecting_features_the_service_does_not_build_is_unavailable():
    scorer = _scorer({})
    scorer.model = LoadedModel("delay_risk", "9", "delay_risk_v1", type("Odd", (), {
        **{k: getattr(CARRIER_MODEL, k) for k in ("vocab_", "booster_", "calibrator_")},
        "features_": ["carrier", "wind_chill"]})())
    with pytest.raises(ModelUnavailable, match="wind_chill"):
        scorer.score(_rows(SHIPMENT))

"""Point-in-time correctness: what happens after a decision can never change that decision's features.

Every raw field that becomes known after a cut-off time T (actual departures and arrivals after T, delays,
cancellations of shipments scheduled after T, weather observed after T) is rewritten; the features that
Feast's point-in-time join returns for every decision taken at or before T must not move. The same
perturbation applied *before* T must move them — so the test can fail.
"""

import numpy as np
import pandas as pd
import pytest

from features import store as feature_store
from features.history import read_weather
from features.tables import build_feature_tables
from features.transforms import decision_times, entity_frame

pytestmark = pytest.mark.integration
CUTOFF = pd.Timestamp("2013-03-06T17:00Z")


def _perturb_after(history: pd.DataFrame, cutoff: pd.Timestamp, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    h = history.copy()
    shift = pd.to_timedelta(rng.integers(5, 240, len(h)), unit="m")
    dep_later = h["actual_departure"] > cutoff
    h.loc[dep_later, "actual_departure"] += shift[dep_later]
    arr_later = h["actual_arrival"] > cutoff
    h.loc[arr_later, "actual_arrival"] += shift[arr_later] * 2
    future = h["scheduled_departure"] > cutoff
    flip = future & (rng.random(len(h)) < 0.2)
    h.loc[flip & ~h["cancelled"], ["actual_departure", "actual_arrival"]] = pd.NaT
    h.loc[flip, "cancelled"] = ~h.loc[flip, "cancelled"]
    revived = flip & ~h["cancelled"] & h["actual_departure"].isna()
    h.loc[revived, "actual_departure"] = h.loc[revived, "scheduled_departure"] + pd.Timedelta(minutes=90)
    h.loc[revived, "actual_arrival"] = h.loc[revived, "scheduled_arrival"] + pd.Timedelta(minutes=95)
    return h


def _weather_perturbed(weather: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    w = weather.copy()
    later = w["observed_at"] > cutoff
    w.loc[later, ["temp", "visib", "precip", "wind_speed"]] = [120.0, 0.0, 3.0, 80.0]
    return w


def _features(tmp_path, name, history, weather, decisions):
    settings = feature_store.StoreSettings(repo_dir=tmp_path / name)
    feature_store.write_tables(build_feature_tables(history, weather), settings.data_dir)
    store = feature_store.open_store(settings)
    feature_store.apply(store, settings)
    return feature_store.historical_features(store, entity_frame(decisions)).set_index("shipment_id")


def test_features_at_decision_time_ignore_everything_after_it(tmp_path, march_sample):
    weather = read_weather()
    decided = march_sample[decision_times(march_sample["scheduled_departure"]) <= CUTOFF]
    assert len(decided) > 3000
    original = _features(tmp_path, "orig", march_sample, weather, decided)
    perturbed = _features(tmp_path, "pert", _perturb_after(march_sample, CUTOFF),
                          _weather_perturbed(weather, CUTOFF), decided)
    pd.testing.assert_frame_equal(original, perturbed.loc[original.index])


def test_the_same_perturbation_before_the_decisions_is_detected(tmp_path, march_sample):
    weather = read_weather()
    early = pd.Timestamp("2013-03-03T00:00Z")
    decided = march_sample[decision_times(march_sample["scheduled_departure"]).between(early, CUTOFF)]
    original = _features(tmp_path, "orig", march_sample, weather, decided)
    perturbed = _features(tmp_path, "pert", _perturb_after(march_sample, early),
                          _weather_perturbed(weather, early), decided)
    changed = (original != perturbed.loc[original.index]) & ~(original.isna() & perturbed.isna())
    moved = changed.any()
    for column in ("origin_live_mean_dep_delay_60m", "eq_last_dep_delay", "weather_temp",
                   "carrier_late_rate_30d", "origin_live_undeparted_120m"):
        assert moved[column], f"perturbing the past did not move {column}: the test would have no power"

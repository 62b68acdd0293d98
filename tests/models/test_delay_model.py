import numpy as np
import pandas as pd
import pytest

from models.calibration import IsotonicCalibrator, expanding_blocks, expected_calibration_error
from models.delay import DelayModelParams, DelayRiskModel


@pytest.fixture(scope="module")
def synthetic():
    """Late risk driven by a congestion signal and one bad carrier; times spread over a year."""
    rng = np.random.default_rng(0)
    n = 6000
    frame = pd.DataFrame({
        "carrier": rng.choice(["AA", "UA", "EV"], n),
        "origin": rng.choice(["JFK", "EWR"], n),
        "destination": rng.choice(["LAX", "ORD", "ATL"], n),
        "congestion": rng.gamma(2.0, 2.0, n),
        "noise": rng.normal(size=n),
    })
    logit = -2.0 + 0.5 * frame["congestion"] + 1.0 * (frame["carrier"] == "EV")
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int))
    times = pd.Series(pd.date_range("2013-01-01", periods=n, freq="85min", tz="UTC"))
    return frame, y, times


@pytest.fixture(scope="module")
def fitted(synthetic):
    frame, y, times = synthetic
    params = DelayModelParams(n_estimators=60, num_leaves=15, min_child_samples=30, calibration_blocks=4)
    return DelayRiskModel(params).fit(frame.iloc[:5000], y.iloc[:5000], times=times.iloc[:5000])


def test_probabilities_are_calibrated_and_informative(fitted, synthetic):
    frame, y, _ = synthetic
    p = fitted.predict_proba(frame.iloc[5000:])
    assert ((p >= 0) & (p <= 1)).all()
    held_out = y.iloc[5000:].to_numpy()
    assert expected_calibration_error(held_out, p) < 0.06
    assert p[held_out == 1].mean() > p[held_out == 0].mean() + 0.15


def test_risk_rises_with_congestion_and_the_bad_carrier(fitted, synthetic):
    frame, _, _ = synthetic
    calm = frame.iloc[[0]].assign(congestion=0.5, carrier="AA")
    jammed = calm.assign(congestion=15.0)
    assert fitted.predict_proba(jammed)[0] > fitted.predict_proba(calm)[0]
    assert fitted.predict_proba(calm.assign(carrier="EV"))[0] > fitted.predict_proba(calm)[0]


def test_unknown_category_is_scored_not_refused(fitted, synthetic):
    frame, _, _ = synthetic
    p = fitted.predict_proba(frame.iloc[[0]].assign(carrier="ZZ", destination="XXX"))
    assert 0 <= p[0] <= 1


def test_explanations_add_up_to_the_raw_score(fitted, synthetic):
    frame, _, _ = synthetic
    rows = frame.iloc[5000:5005]
    contrib = fitted.booster_.predict(fitted._matrix(rows), pred_contrib=True)
    raw = fitted.booster_.predict(fitted._matrix(rows), raw_score=True)
    np.testing.assert_allclose(contrib.sum(axis=1), raw, rtol=1e-6)
    reasons = fitted.explain(rows, top=3)
    assert len(reasons) == 5 and all(len(r) == 3 for r in reasons)
    first = reasons[0]
    assert abs(first[0].contribution) >= abs(first[1].contribution) >= abs(first[2].contribution)
    assert first[0].value == rows.iloc[0][first[0].feature]


def test_same_seed_same_model(synthetic):
    frame, y, times = synthetic
    params = DelayModelParams(n_estimators=20, num_leaves=7, calibration_blocks=3)
    a = DelayRiskModel(params).fit(frame.iloc[:3000], y.iloc[:3000], times=times.iloc[:3000])
    b = DelayRiskModel(params).fit(frame.iloc[:3000], y.iloc[:3000], times=times.iloc[:3000])
    np.testing.assert_array_equal(a.predict_proba(frame.iloc[3000:]), b.predict_proba(frame.iloc[3000:]))


def test_missing_feature_column_is_named(fitted, synthetic):
    frame, _, _ = synthetic
    with pytest.raises(KeyError, match="congestion"):
        fitted.predict_proba(frame.drop(columns=["congestion"]).iloc[:3])


def test_isotonic_calibrator_is_monotone_and_clipped():
    raw = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    y = np.array([0, 0, 1, 0, 1, 1])
    cal = IsotonicCalibrator().fit(raw, y)
    out = cal.transform(np.array([0.0, 0.15, 0.35, 0.55, 1.0]))
    assert (np.diff(out) >= 0).all() and out[0] == 0.0 and out[-1] == 1.0


def test_expected_calibration_error_by_hand():
    y = np.array([1, 0, 1, 1])
    p = np.array([0.5, 0.5, 0.9, 0.9])  # bin of 0.5: rate 0.5, error 0; bin of 0.9: rate 1.0, error 0.1
    assert expected_calibration_error(y, p) == pytest.approx(0.05)


def test_expanding_blocks_are_time_ordered_and_cover_every_row():
    times = np.array([5, 1, 4, 2, 3, 0])
    blocks = expanding_blocks(times, 3)
    assert [sorted(times[b].tolist()) for b in blocks] == [[0, 1], [2, 3], [4, 5]]


def test_encoding_matches_pandas_categorical_codes(fitted, synthetic):
    frame, _, _ = synthetic
    rows = frame.iloc[:50].assign(carrier=["ZZ"] + list(frame["carrier"].iloc[1:50]))
    matrix = fitted._matrix(rows)
    for j, name in enumerate(fitted.features_):
        if name in fitted.vocab_:
            codes = pd.Categorical(rows[name].astype("string"), categories=fitted.vocab_[name]).codes
            expected = np.where(codes < 0, np.nan, codes).astype(float)
        else:
            expected = rows[name].to_numpy(dtype=float)
        np.testing.assert_array_equal(matrix[:, j], expected)

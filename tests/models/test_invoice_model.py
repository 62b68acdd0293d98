"""The invoice model: calibrated probabilities, explanations, amount at risk, and how it behaves on invoices
built by hand against the world's contracts (exact re-rating, a 20 % linehaul overcharge, an exact
re-submission, a legitimate split invoice). Trained once per module from the smoke spec."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from features.invoice_world import DISCREPANCY_CLASSES
from features.rerating import audit_features, rerate
from features.rerating_evidence import ACCESSORIAL_NAMES
from models.invoice import InvoiceDiscrepancyModel, InvoiceModelParams
from models.invoice_amount import class_amounts, expected_amount
from models.invoice_calibration import MulticlassCalibrator
from training.invoice_job import build_dataset, fit_model
from training.invoice_spec import load_invoice_spec

pytestmark = pytest.mark.slow
DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def smoke(embedded_history):
    spec = load_invoice_spec("invoice_smoke")
    data = build_dataset(spec, history=embedded_history)
    return data, fit_model(spec, data)


def _features(world, invoices: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    return audit_features(invoices, lines, facts=world.shipment_facts, contracts=world.contracts,
                          fuel_index=world.fuel_index)


@pytest.fixture(scope="module")
def exact(smoke):
    """Ten held-out invoices re-billed at exactly the re-rated amounts (contract lanes, full evidence)."""
    data, _ = smoke
    f, world = data.features, data.world
    ok = (data.test & (data.labels["true_discrepancy"] == "clean").to_numpy() & (f["is_spot"] == 0).to_numpy()
          & (f["has_linehaul"] == 1).to_numpy() & (f["prior_same_shipment_invoices"] == 0).to_numpy()
          & (f["dims_missing"] == 0).to_numpy() & (f["pod_present_at_invoice"] == 1).to_numpy()
          & (data.labels["lookalikes"] == "").to_numpy())
    chosen = f.index[ok][:10]
    assert len(chosen) == 10
    due = rerate(world.invoices, world.invoice_lines, facts=world.shipment_facts, contracts=world.contracts,
                 fuel_index=world.fuel_index).set_index("invoice_id").loc[chosen]
    lines = world.invoice_lines
    keep = lines[~lines["invoice_id"].isin(chosen)]
    rows = []
    for invoice_id, r in due.iterrows():
        amounts = {"linehaul": r["linehaul_expected"], "fuel": r["fuel_expected"]}
        amounts |= {c: r[f"billed_{c}"] - r[f"{c}_delta"] for c in ACCESSORIAL_NAMES if r[f"billed_{c}"] > 0}
        rows += [{"invoice_id": invoice_id, "line_no": k, "code": code, "amount": round(float(v), 2),
                  "quantity": np.nan} for k, (code, v) in enumerate(amounts.items(), 1)]
    new_lines = pd.concat([keep, pd.DataFrame(rows)], ignore_index=True)
    heads = world.invoices.copy()
    sums = new_lines.groupby("invoice_id")["amount"].sum().round(2)
    heads["total"] = heads["invoice_id"].map(sums)
    weights = f.loc[chosen, "chargeable_weight_kg"]
    heads.loc[heads["invoice_id"].isin(chosen), "billed_weight_kg"] = heads["invoice_id"].map(weights)
    return replace(world, invoices=heads, invoice_lines=new_lines), list(chosen)


def test_exact_rerating_is_clean_with_nothing_at_risk(smoke, exact):
    _, model = smoke
    world, chosen = exact
    features = _features(world, world.invoices, world.invoice_lines).loc[chosen]
    assert (features["total_delta"].abs() < 0.02).all()
    scores = model.score(features)
    assert (scores["predicted_class"] == "clean").all(), scores
    assert (scores["amount_at_risk"] < 0.1 * features["total_billed"]).all()


def test_linehaul_billed_20_percent_over_contract_is_never_clean(smoke, exact):
    _, model = smoke
    world, chosen = exact
    lines = world.invoice_lines.copy()
    inflate = lines["invoice_id"].isin(chosen) & lines["code"].isin(["linehaul", "fuel"])
    lines.loc[inflate, "amount"] = (lines.loc[inflate, "amount"] * 1.2).round(2)
    heads = world.invoices.assign(total=world.invoices["invoice_id"].map(lines.groupby("invoice_id")["amount"].sum()))
    features = _features(world, heads, lines).loc[chosen]
    scores = model.score(features)
    assert (scores["predicted_class"] != "clean").all(), scores
    assert (scores["p_clean"] < 0.5).all()
    assert (scores["amount_at_risk"] > 0.1 * features["linehaul_billed"]).all()


def _resubmitted(world, chosen: list[str], *, codes: list[str] | None, suffix: str, days: int) -> tuple:
    """Copies of ``chosen`` (only ``codes`` lines when given) under new numbers, ``days`` later."""
    heads = world.invoices.set_index("invoice_id").loc[chosen].reset_index()
    lines = world.invoice_lines[world.invoice_lines["invoice_id"].isin(chosen)]
    lines = lines if codes is None else lines[lines["code"].isin(codes)]
    lines = lines.assign(invoice_id=lines["invoice_id"] + suffix)
    heads = heads.assign(invoice_id=heads["invoice_id"] + suffix,
                         invoice_date=heads["invoice_date"] + days * DAY, received_at=heads["received_at"] + days * DAY,
                         total=(heads["invoice_id"] + suffix).map(lines.groupby("invoice_id")["amount"].sum()))
    return heads, lines


def test_exact_resubmission_is_a_duplicate(smoke, exact):
    _, model = smoke
    world, chosen = exact
    heads, lines = _resubmitted(world, chosen, codes=None, suffix="R", days=9)
    features = _features(world, pd.concat([world.invoices, heads], ignore_index=True),
                         pd.concat([world.invoice_lines, lines], ignore_index=True)).loc[heads["invoice_id"]]
    scores = model.score(features)
    assert (scores["predicted_class"] == "duplicate").all(), scores
    np.testing.assert_allclose(scores["amount_at_risk"], features["total_billed"], rtol=0.1)


def test_legitimate_split_invoices_are_not_duplicates(smoke, exact):
    data, model = smoke
    world, chosen = exact
    main = world.invoice_lines[~(world.invoice_lines["invoice_id"].isin(chosen)
                                 & (world.invoice_lines["code"] == "handling"))]
    trimmed = world.invoices.assign(total=world.invoices["invoice_id"].map(main.groupby("invoice_id")["amount"].sum()))
    heads, lines = _resubmitted(world, chosen, codes=["handling"], suffix="S", days=12)
    features = _features(world, pd.concat([trimmed, heads], ignore_index=True),
                         pd.concat([main, lines], ignore_index=True)).loc[heads["invoice_id"]]
    assert (model.predict(features) != "duplicate").all()
    held_out = data.labels[data.test]
    split = held_out["lookalikes"].str.contains("split_invoice") & (held_out["true_discrepancy"] != "duplicate")
    called = model.predict(data.features[data.test][split.to_numpy()])
    assert split.sum() > 100 and (called == "duplicate").mean() <= 0.01


def test_probabilities_are_calibrated_on_held_out_months(smoke):
    data, model = smoke
    proba = model.predict_proba(data.features[data.test])
    assert list(proba.columns) == list(DISCREPANCY_CLASSES)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)
    clean = (data.labels["discrepancy"][data.test] == "clean").to_numpy()
    p_clean = proba["clean"].to_numpy()
    assert abs(p_clean.mean() - clean.mean()) < 0.02
    assert clean[p_clean >= 0.97].mean() > clean[p_clean < 0.5].mean() + 0.5


def test_explanations_add_up_for_the_predicted_class(smoke):
    data, model = smoke
    rows = data.features[data.test].head(20)
    explanations = model.explain(rows, top=4)
    contrib = model.booster_.predict(rows.to_numpy(float), pred_contrib=True).reshape(20, len(model.classes_), -1)
    raw = model.booster_.predict(rows.to_numpy(float), raw_score=True)
    np.testing.assert_allclose(contrib.sum(axis=2), raw, rtol=1e-6, atol=1e-9)
    for (_, row), ex in zip(rows.iterrows(), explanations, strict=True):
        assert ex.predicted_class in model.classes_ and 0 < ex.probability <= 1 and len(ex.reasons) == 4
        sizes = [abs(r.contribution) for r in ex.reasons]
        assert sizes == sorted(sizes, reverse=True)
        first = ex.reasons[0]
        assert first.value is None or first.value == pytest.approx(row[first.feature])


def test_missing_feature_column_is_named(smoke):
    data, model = smoke
    with pytest.raises(KeyError, match="fuel_delta"):
        model.predict_proba(data.features.head(2).drop(columns="fuel_delta"))


def test_same_seed_same_model_and_unknown_labels_refused(smoke):
    data, _ = smoke
    rows = np.flatnonzero(data.train)[:2000]
    frame, labels, times = data.features.iloc[rows], data.labels["discrepancy"].iloc[rows], data.received.iloc[rows]
    params = InvoiceModelParams(n_estimators=8, calibration_blocks=3)
    a = InvoiceDiscrepancyModel(params).fit(frame, labels, times=times, classes=DISCREPANCY_CLASSES)
    b = InvoiceDiscrepancyModel(params).fit(frame, labels, times=times, classes=DISCREPANCY_CLASSES)
    pd.testing.assert_frame_equal(a.predict_proba(frame), b.predict_proba(frame))
    with pytest.raises(ValueError, match="overcharge_typo"):
        InvoiceDiscrepancyModel(params).fit(frame, labels.where(labels != "clean", "overcharge_typo"),
                                            times=times, classes=DISCREPANCY_CLASSES)


def test_calibrator_rows_sum_to_one_and_follow_the_raw_order():
    rng = np.random.default_rng(0)
    raw = rng.dirichlet([5, 1, 1], size=3000)
    y = np.array([rng.choice(3, p=p) for p in raw])
    calibrated = MulticlassCalibrator().fit(raw, y).transform(raw)
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)
    order = np.argsort(raw[:, 1])
    assert np.corrcoef(raw[order, 1], calibrated[order, 1])[0, 1] > 0.9


def test_amount_at_risk_by_hand():
    features = pd.DataFrame({
        "total_billed": [400.0, 250.0], "total_delta": [60.0, np.nan], "fuel_pct_billed": [15.0, 10.0],
        "linehaul_delta_at_billed_weight": [40.0, np.nan], "fuel_delta": [6.0, np.nan],
        "accessorial_delta": [0.0, 35.0], "linehaul_delta": [40.0, np.nan], "security_delta": [0.0, np.nan]})
    amounts = class_amounts(features, DISCREPANCY_CLASSES)
    assert amounts.loc[0, "rate_overcharge"] == pytest.approx(46.0)  # 40 linehaul + 15 % fuel on it
    assert amounts.loc[0, "weight_overbilled"] == pytest.approx(46.0)
    assert amounts.loc[1, "rate_overcharge"] == 0.0  # unknown expectation, unknown total delta
    assert amounts.loc[1, "unbacked_accessorial"] == 35.0
    assert amounts.loc[1, "duplicate"] == amounts.loc[1, "billed_before_delivery"] == 250.0
    proba = np.zeros((2, len(DISCREPANCY_CLASSES)))
    proba[0, [0, 1]] = 0.5
    proba[1, DISCREPANCY_CLASSES.index("duplicate")] = 1.0
    np.testing.assert_allclose(expected_amount(proba, amounts), [23.0, 250.0])


def test_the_job_fits_on_what_the_service_serves(smoke):
    """The service has no outcome for an invoice it approved, so it serves the carrier's resolved-invoice
    count and dispute rate as missing; the job must fit on the same (it once fitted on the world's
    outcomes: values the model was never served)."""
    data, _ = smoke
    for name in ("carrier_resolved_invoices", "carrier_prior_dispute_rate"):
        assert data.features[name].isna().all(), name
    served = _features(data.world, data.world.invoices, data.world.invoice_lines).loc[data.features.index]
    pd.testing.assert_frame_equal(data.features, served)

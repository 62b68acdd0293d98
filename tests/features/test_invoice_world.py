"""The embedded invoice world: determinism, documented proportions, links to the real flights.

One world is generated from a seeded 20,000-flight sample of the embedded history (about 4,800
invoices) and shared by the module; proportions are asserted with bands wide enough for that size.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.errors import InvalidInput
from features.invoice_world import DISCREPANCY_CLASSES, LABEL_COLUMNS, generate_world, load_world, save_world
from features.reference_io import (
    validate_contracts,
    validate_fuel_index,
    validate_invoices,
    validate_shipment_facts,
)
from features.rerating import FEATURE_NAMES, audit_features
from features.rerating_rules import rules_only_audit

FRAMES = ("contracts", "shipment_facts", "fuel_index", "invoices", "invoice_lines", "labels")


@pytest.fixture(scope="module")
def flights(embedded_history) -> pd.DataFrame:
    sample = embedded_history.sample(20_000, random_state=7)
    return sample.sort_values(["scheduled_departure", "shipment_id"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def world(flights):
    return generate_world(flights, seed=13)


@pytest.fixture(scope="module")
def labelled(world) -> pd.DataFrame:
    """Labels joined to invoice headers and the shipment facts they reference."""
    heads = world.invoices.merge(world.labels, on=["invoice_id", "shipment_id"], validate="one_to_one")
    return heads.merge(world.shipment_facts, on="shipment_id", how="left", suffixes=("", "_fact"))


@pytest.fixture(scope="module")
def features(world) -> pd.DataFrame:
    return audit_features(world.invoices, world.invoice_lines, facts=world.shipment_facts,
                          contracts=world.contracts, fuel_index=world.fuel_index)


def test_same_seed_same_world_other_seed_other_world(flights, world):
    again = generate_world(flights, seed=13, sample=1_500)
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(again, name), getattr(generate_world(flights, seed=13, sample=1_500),
                                                                    name))
    other = generate_world(flights, seed=14, sample=1_500)
    assert not other.invoices["total"].equals(again.invoices["total"])


def test_sample_must_be_positive(flights):
    with pytest.raises(InvalidInput, match="sample"):
        generate_world(flights, sample=0)


def test_every_frame_passes_the_validating_loaders(world):
    validate_contracts(world.contracts)
    validate_shipment_facts(world.shipment_facts)
    validate_fuel_index(world.fuel_index)
    validate_invoices(world.invoices, world.invoice_lines)
    assert list(world.labels.columns) == list(LABEL_COLUMNS)
    assert world.invoices["shipment_id"].isin(world.shipment_facts["shipment_id"]).all()


def test_saved_world_reads_back_identically(world, tmp_path):
    save_world(world, tmp_path)
    back = load_world(tmp_path)
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(back, name), getattr(world, name), check_dtype=False)


def test_documented_proportions(world):
    labels = world.labels
    assert set(labels["discrepancy"]) == set(DISCREPANCY_CLASSES)
    assert 0.05 <= (labels["true_discrepancy"] != "clean").mean() <= 0.13
    assert 0.06 <= (labels["discrepancy"] != "clean").mean() <= 0.15
    assert 0.005 <= labels["label_noise"].mean() <= 0.03
    shares = labels["true_discrepancy"].value_counts(normalize=True)
    for name in DISCREPANCY_CLASSES[1:]:
        assert 0.004 <= shares[name] <= 0.04, name
    two = labels[labels["secondary_discrepancy"] != ""]
    assert 0.01 <= len(two) / (labels["true_discrepancy"] != "clean").sum() <= 0.25


def test_dollars_overbilled_are_zero_for_clean_and_positive_for_component_problems(world):
    labels = world.labels
    assert (labels.loc[labels["discrepancy"] == "clean", "overbilled_amount"] == 0).all()
    component = labels["true_discrepancy"].isin(
        ["rate_overcharge", "fuel_surcharge_error", "unbacked_accessorial", "weight_overbilled", "duplicate"])
    assert (labels.loc[component, "true_overbilled_amount"] > 2.0).all()
    assert (labels["amount_at_risk"] >= labels["true_overbilled_amount"] - 1e-9).all()
    premature = labels["true_discrepancy"] == "billed_before_delivery"
    assert (labels.loc[premature, "true_overbilled_amount"] == 0).all()
    assert (labels.loc[premature, "amount_at_risk"] > 0).all()


def test_carrier_caused_charges_follow_what_happened_to_the_flight(labelled):
    delay = (labelled["actual_arrival"] - labelled["scheduled_arrival"]).dt.total_seconds() / 3600
    storage = labelled["scenario"] == "storage_for_carrier_delay"
    assert storage.any() and (delay[storage] >= 3.0).all()
    rebooking = labelled["scenario"] == "rebooking_after_carrier_cancellation"
    assert rebooking.any() and labelled.loc[rebooking, "cancelled"].all()
    early = labelled[(labelled["true_discrepancy"] == "billed_before_delivery")
                     & labelled["proof_of_delivery_at"].notna()]
    assert len(early) and (early["invoice_date"] + pd.Timedelta(days=1) <= early["proof_of_delivery_at"]).all()
    clean = labelled[(labelled["true_discrepancy"] == "clean") & labelled["proof_of_delivery_at"].notna()]
    assert (clean["invoice_date"] + pd.Timedelta(days=1) > clean["proof_of_delivery_at"]).mean() > 0.99


def test_look_alikes_exist_and_are_clean(world):
    labels = world.labels
    clean = labels[labels["true_discrepancy"] == "clean"]
    for tag in ("split_invoice", "balance_due", "amended_contract", "late_collection_storage",
                "dimensional_weight", "spot_rate", "standing_order", "pod_not_recorded"):
        assert clean["lookalikes"].str.contains(tag).any(), tag
    per_shipment = clean.groupby("shipment_id").size()
    assert (per_shipment > 1).any()  # one shipment, several legitimate invoices


def test_rerating_reproduces_clean_bills_and_sees_overcharges(world, features):
    labels = world.labels.set_index("invoice_id").loc[features.index]
    assert list(features.columns) == list(FEATURE_NAMES)
    plain = (labels["true_discrepancy"] == "clean") & (labels["lookalikes"] == "")
    assert (features.loc[plain, "total_delta"].abs() <= 2.0).mean() > 0.97
    over = labels["scenario"] == "rate_above_contract"
    assert (features.loc[over, "linehaul_delta"] > 0).mean() > 0.9


def test_rules_baseline_is_a_fair_yardstick(world, features):
    truth = world.labels.set_index("invoice_id").loc[features.index, "true_discrepancy"]
    verdict = rules_only_audit(features)
    flagged = verdict != "clean"
    assert (verdict[truth == "duplicate"] == "duplicate").mean() > 0.7
    assert (truth[flagged] != "clean").mean() > 0.3  # precision: far better than chance...
    assert ((verdict == "clean") & (truth != "clean")).mean() < 0.02
    assert (flagged & (truth == "clean")).sum() > 0  # ...and the look-alikes still fool it


def test_generation_is_vectorised_enough_for_a_full_year(flights):
    world = generate_world(flights, sample=8_000)
    assert len(world.invoices) > 8_000
    assert np.isclose(world.invoice_lines.groupby("invoice_id")["amount"].sum()
                      .reindex(world.invoices["invoice_id"]).to_numpy(), world.invoices["total"]).all()

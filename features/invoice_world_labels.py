"""Ground truth per invoice: the discrepancy class, dollars overbilled, and the recorded (noisy) label.

Primary label when an invoice has two component problems: the one that overbilled more dollars on
*this* invoice (an auditor disputes the bigger item first); the other is kept as
``secondary_discrepancy``. A duplicate is a duplicate whatever it copies (the copied invoice's own
problem becomes the secondary). Premature invoices carry no other problem by construction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.invoice_world_discrepancies import SCENARIOS, Context
from features.invoice_world_invoices import CODES
from features.invoice_world_scenarios import Plan
from features.reference import ChargeCode, Discrepancy
from features.reference_pricing import round_cents

LABEL_NOISE_SHARE = 0.015
"""Share of invoices whose recorded verdict is wrong (reviewer error), as in any hand-labelled history."""
_CLEAN = Discrepancy.CLEAN.value


def _labels_of(names: np.ndarray) -> np.ndarray:
    return np.array([SCENARIOS[n].label.value if n else "" for n in names], dtype=object)


def _problem(names: np.ndarray, delta: pd.DataFrame, *, wide: pd.DataFrame, on: np.ndarray) -> tuple:
    """Per invoice: the problem's label (or "") and the dollars it adds on this invoice's codes."""
    ship = wide["ship"].to_numpy()
    per_code = delta[CODES].to_numpy()[ship] * on
    present = (names[ship] != "") & (np.abs(per_code).sum(axis=1) > 0.005)
    return np.where(present, _labels_of(names)[ship], ""), np.where(present, per_code.sum(axis=1), 0.0), \
        np.where(present, names[ship], "")


def true_labels(wide: pd.DataFrame, plan: Plan, *, premature: np.ndarray) -> pd.DataFrame:
    """True class, secondary class, scenario and overbilled dollars for every invoice row of ``wide``."""
    on = wide[CODES].to_numpy() > 0
    a_label, a_usd, a_name = _problem(plan.first, plan.first_delta, wide=wide, on=on)
    b_label, b_usd, b_name = _problem(plan.second, plan.second_delta, wide=wide, on=on)
    a_wins = (a_label != "") & ((b_label == "") | (a_usd >= b_usd))
    label = np.where(a_wins, a_label, np.where(b_label != "", b_label, _CLEAN))
    secondary = np.where(a_wins, b_label, np.where(b_label != "", a_label, ""))
    scenario = np.where(a_wins, a_name, b_name)
    billed = wide[CODES].to_numpy()
    clean = plan.clean_amounts[CODES].to_numpy()[wide["ship"].to_numpy()]
    overbilled = round_cents(np.where(on, billed - clean, 0.0).sum(axis=1))
    total = round_cents(billed.sum(axis=1))
    ship_premature = premature[wide["ship"].to_numpy()]
    early = (wide["kind"].to_numpy() == "main") & (ship_premature != "")
    label = np.where(early, Discrepancy.BILLED_BEFORE_DELIVERY.value, label)
    scenario = np.where(early, ship_premature, scenario)
    overbilled = np.where(label == _CLEAN, 0.0, np.where(early, 0.0, overbilled))
    frame = pd.DataFrame({"true_discrepancy": label, "secondary_discrepancy": secondary, "scenario": scenario,
                          "true_overbilled_amount": overbilled, "total": total})
    return _mark_duplicates(frame, wide)


def _mark_duplicates(frame: pd.DataFrame, wide: pd.DataFrame) -> pd.DataFrame:
    dup = wide["kind"].to_numpy() == "duplicate"
    original = wide["original"].to_numpy()[dup]
    copied = frame["true_discrepancy"].to_numpy()[original]
    frame.loc[dup, "secondary_discrepancy"] = np.where(copied == _CLEAN, "", copied)
    frame.loc[dup, "true_discrepancy"] = Discrepancy.DUPLICATE.value
    frame.loc[dup, "scenario"] = wide.loc[dup, "duplicate_kind"].to_numpy()
    frame.loc[dup, "true_overbilled_amount"] = frame.loc[dup, "total"]
    return frame


def recorded_labels(truth: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Add the verdicts as recorded: 1.5 % are wrong; ``amount_at_risk`` = what a wrong payment would cost.

    A flipped discrepancy becomes "clean" four times in five, another class otherwise; a flipped clean
    invoice takes a class drawn in proportion to the true classes. A recorded "clean" carries 0 dollars.
    """
    n = len(truth)
    true = truth["true_discrepancy"].to_numpy()
    noisy = rng.random(n) < LABEL_NOISE_SHARE
    classes = [d.value for d in Discrepancy if d != Discrepancy.CLEAN]
    counts = pd.Series(true[true != _CLEAN]).value_counts().reindex(classes, fill_value=0).to_numpy(float)
    weights = (counts + 1.0) / (counts + 1.0).sum()
    random_class = rng.choice(classes, size=n, p=weights)
    to_clean = rng.random(n) < 0.8
    flipped = np.where(true == _CLEAN, random_class, np.where(to_clean, _CLEAN, random_class))
    flipped = np.where(flipped == true, _CLEAN, flipped)
    recorded = np.where(noisy, flipped, true)
    label_noise = recorded != true
    amount = np.where(label_noise, 0.0, truth["true_overbilled_amount"].to_numpy())
    whole = np.isin(true, [Discrepancy.DUPLICATE.value, Discrepancy.BILLED_BEFORE_DELIVERY.value])
    at_risk = np.where(whole, truth["total"].to_numpy(), truth["true_overbilled_amount"].to_numpy())
    return truth.assign(discrepancy=recorded, overbilled_amount=amount, amount_at_risk=at_risk,
                        label_noise=label_noise)


def lookalike_tags(wide: pd.DataFrame, plan: Plan, *, ctx: Context, facts: pd.DataFrame,
                   clean: pd.DataFrame) -> pd.Series:
    """``;``-joined legitimate situations an invoice is in that naive rules mistake for problems.

    Kept for every invoice (not only clean ones) so evaluation can slice errors by situation.
    """
    ship = wide["ship"].to_numpy()
    storage = ChargeCode.STORAGE.value
    split = pd.Series(wide["kind"] == "supplement").groupby(ship).transform("any").to_numpy()
    balance = pd.Series(wide["kind"] == "balance").groupby(ship).transform("any").to_numpy()
    legit_storage = (wide[storage].to_numpy() > 0) & (plan.clean_amounts[storage].to_numpy()[ship] > 0)
    delayed = (ctx.ships["arrival_delay_hours"].to_numpy() >= 3.0) | ctx.ships["cancelled"].to_numpy(bool)
    dims_rule = ctx.cargo["chargeable_kg"].to_numpy() > ctx.cargo["actual_weight_kg"].to_numpy() + 0.5
    tags = {
        "split_invoice": split,
        "balance_due": balance,
        "late_collection_storage": legit_storage,
        "storage_after_flight_delay": legit_storage & delayed[ship],
        "amended_contract": ctx.terms["amended"].to_numpy(bool)[ship],
        "spot_rate": ctx.terms["spot"].to_numpy(bool)[ship],
        "standing_order": ctx.cargo["recurring"].to_numpy(bool)[ship],
        "dimensional_weight": dims_rule[ship],
        "reweigh_or_rounding": (clean["kg"].to_numpy() != ctx.cargo["chargeable_kg"].to_numpy())[ship],
        "dims_understated_by_shipper": (ctx.cargo["declared_dims_factor"].to_numpy() < 1.0)[ship],
        "attempt_not_recorded": ctx.col("recorded_attempts")[ship] < ctx.col("delivery_attempts")[ship],
        "fuel_index_revised": ctx.terms["index_revised"].to_numpy(bool)[ship],
        "pod_not_recorded": facts["proof_of_delivery_at"].isna().to_numpy()[ship],
        "dims_not_recorded": facts["length_cm"].isna().to_numpy()[ship],
        "dwell_not_recorded": facts["dwell_hours"].isna().to_numpy()[ship],
    }
    text = pd.Series("", index=wide.index)
    for name, mask in tags.items():
        text = text + np.where(mask, name + ";", "")
    return text.str.rstrip(";")


__all__ = ["LABEL_NOISE_SHARE", "lookalike_tags", "recorded_labels", "true_labels"]

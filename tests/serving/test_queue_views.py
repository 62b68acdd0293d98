"""What the queue pages say, without HTTP: phrases, the charge comparison, facts, query parsing."""

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from starlette.datastructures import QueryParams

from serving.auth import Caller, Role
from serving.web import evidence, phrases, views

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
RITA = Caller(key_id="k-rita", role=Role.REVIEWER, name="Rita Reviewer")


def test_feature_names_read_as_words_with_units():
    assert phrases.feature_label("linehaul_delta") == "Linehaul billed minus the contract amount"
    assert phrases.feature_value("linehaul_delta", 400.0) == "+$400.00"
    assert phrases.feature_value("total_delta", -12.5) == "−$12.50"
    assert phrases.feature_value("fuel_pct_delta", 2.0) == "2.0%"
    assert phrases.feature_value("pod_present_at_invoice", 1.0) == "yes"
    assert phrases.feature_value("carrier_prior_dispute_rate", 0.25) == "25%"
    assert phrases.feature_value("arrival_delay_hours", math.nan) == "unknown"
    assert phrases.feature_label("storage_delta") == "Storage billed minus what the facts support"
    assert phrases.feature_label("brand_new_sched_dep_feature") == "Brand new scheduled departure feature"
    assert phrases.label_of("billed_before_delivery") == "Billed before delivery"


def test_sla_countdown():
    assert phrases.sla_left(NOW + timedelta(hours=3, minutes=12), now=NOW) == ("3 h 12 min left", False)
    assert phrases.sla_left(NOW + timedelta(days=2, hours=1), now=NOW) == ("2 d 1 h left", False)
    assert phrases.sla_left(NOW - timedelta(hours=2), now=NOW) == ("breached 2 h 0 min ago", True)
    assert phrases.sla_left((NOW - timedelta(hours=2)).isoformat(), now=NOW, final=True, breached=False) == (
        "met", False)


def _lines(*pairs):
    return {"lines": [{"code": c, "amount": a} for c, a in pairs]}


def test_charge_table_puts_each_billed_code_beside_its_expected_amount():
    request = _lines(("FUEL", 120.0), ("LINEHAUL", 1000.0), ("STORAGE", 75.0), ("HANDLING", 30.0),
                     ("HANDLING", 10.0))
    features = {"linehaul_expected": 900.0, "fuel_expected": 120.0, "handling_delta": 15.0,
                "storage_delta": math.nan, "total_expected": 1140.0, "total_billed": 1235.0, "rate_expected": 2.0}
    table = evidence.charge_table(request, features)
    by_code = {r.code: r for r in table.rows}
    assert [r.code for r in table.rows][:2] == ["linehaul", "fuel"]
    assert by_code["linehaul"].difference == 100.0 and by_code["linehaul"].flagged
    assert by_code["fuel"].difference == 0.0 and not by_code["fuel"].flagged
    assert by_code["handling"].billed == 40.0 and by_code["handling"].expected == 25.0
    assert by_code["storage"].expected is None and by_code["storage"].flagged and "cannot be checked" in \
        by_code["storage"].note
    assert table.total.billed == 1235.0 and table.total.expected == 900.0 + 120.0 + 75.0 + 25.0
    assert "storage counted as billed" in table.total.note
    assert ("Contract rate", "2") in table.basis


def test_no_recorded_rerating_means_no_comparison_and_no_linehaul_means_no_expected_total():
    assert evidence.charge_table(_lines(("LINEHAUL", 10.0)), {}) is None
    table = evidence.charge_table(_lines(("LINEHAUL", 10.0)), {"linehaul_expected": math.nan, "total_billed": 10.0})
    assert table.rows[0].expected is None and table.total.expected is None


def test_reference_facts_in_words_or_the_reason_there_are_none():
    found = {"ship_date": pd.Timestamp("2013-12-02"), "proof_of_delivery_at": pd.Timestamp("2013-12-03T14:25Z"),
             "consignee_pickup_at": pd.NaT, "dangerous_goods": np.False_, "delivery_attempts": 2}
    facts, note = evidence.reference_facts(lambda _: found, "S-1")
    assert note == "" and ("ship_date", "Ship date", "2013-12-02") in facts
    assert ("proof_of_delivery_at", "Proof of delivery at", "2013-12-03 14:25 UTC") in facts
    assert ("dangerous_goods", "Dangerous goods declared", "no") in facts
    assert ("consignee_pickup_at", "Consignee pickup at", "—") in facts
    assert ("delivery_attempts", "Delivery attempts", "2") in facts
    merged = evidence.merge_facts([("actual_arrival", "Actual arrival", evidence.MISSING)],
                                  [("actual_arrival", "Arrived", "2013-12-02 19:05 UTC")] + facts,
                                  evidence.recorded_facts({"delivery_attempts": 2.0, "pod_missing": 0.0}))
    assert merged[0] == ("Actual arrival", "2013-12-02 19:05 UTC")
    assert [w for w, _ in merged].count("Delivery attempts") == 1 and ("No proof of delivery on record", "no") in merged
    assert evidence.reference_facts(lambda _: None, "S-1")[1] == "no reference shipment facts for this shipment"

    def broken(_):
        raise ConnectionError("redis down")
    assert "unavailable (ConnectionError)" in evidence.reference_facts(broken, "S-1")[1]

    class NoStore:
        store_settings = None
    assert "no feature store" in evidence.reference_facts(evidence.feast_facts(NoStore()), "S-1")[1]


def test_queue_query_is_lenient_and_links_keep_the_filters():
    query = views.QueueQuery.parse(QueryParams("carrier=ua&amount_min=1,000&amount_max=x&sort=rm+-rf&page=0"))
    assert query.carrier == "ua" and query.amount_min == 1000.0 and query.amount_max is None
    assert query.sort == "priority" and query.page == 1 and len(query.problems) == 3
    args = query.service_args()
    assert args["carrier"] == "UA" and args["status"] == "open" and args["descending"] and args["offset"] == 0
    assert query.link(page=3) == "?carrier=ua&amount_min=1000.0&page=3"
    assert query.sort_link("priority") == "?carrier=ua&amount_min=1000.0&order=asc"
    assert query.sort_link("amount_at_risk") == "?carrier=ua&amount_min=1000.0&sort=amount_at_risk"
    assert query.aria_sort("priority") == "descending" and query.aria_sort("sla_due_at") == "none"


def test_what_a_reviewer_may_do_follows_the_case_state():
    mine = {"status": "claimed", "claimed_by_key": "k-rita", "claimed_by": "Rita Reviewer",
            "lease_expires_at": (NOW + timedelta(minutes=15)).isoformat()}
    assert views.allowed_actions(mine, RITA)["resolve"] and not views.allowed_actions(mine, RITA)["claim"]
    theirs = {**mine, "claimed_by_key": "k-other", "claimed_by": "Otto"}
    can = views.allowed_actions(theirs, RITA)
    assert can["held_by_other"] and can["holder_name"] == "Otto" and not can["resolve"]
    waiting = {"status": "awaiting_approval"}
    assert not views.allowed_actions(waiting, RITA)["approve"]
    assert views.allowed_actions(waiting, Caller(key_id="k-abe", role=Role.APPROVER, name="Abe"))["approve"]


def test_history_rows_name_the_actor_and_the_verdict():
    row = views.history_row({"at": "2026-11-27T12:00:00+00:00", "actor": "Rita Reviewer", "role": "reviewer",
                             "action": "resolved", "from_status": "claimed", "to_status": "resolved",
                             "payload": {"verdict": "dispute", "amount": 493.0, "reason_code": "rate_not_per_contract",
                                         "note": "old rate"}})
    assert row["actor"] == "Rita Reviewer" and row["action"] == "Resolved" and row["to"] == "Resolved"
    assert row["details"] == "Verdict: Dispute; Amount: $493.00; Reason code: Rate not per contract; Note: old rate"

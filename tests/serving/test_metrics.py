"""Decision metrics count each decision and action once, however many a batch brings."""

import prometheus_client

from serving.metrics import observe


def _value(name: str, **labels) -> float:
    return prometheus_client.REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_batch_is_counted_per_decision_action_and_degraded_reason():
    labels = {"kind": "shipment", "outcome": "hold", "policy_version": "9.9.9", "model_version": "41",
              "degraded": "false"}
    before = (_value("tollgate_decisions_total", **labels),
              _value("tollgate_actions_total", kind="shipment", action="notify_customer"),
              _value("tollgate_degraded_decisions_total", kind="shipment", reason="model_unavailable"))
    held = {"kind": "shipment", "outcome": "hold", "policy_version": "9.9.9", "model_version": 41, "degraded": False,
            "actions": [{"type": "notify_customer"}, {"type": "hold_invoice"}]}
    degraded = {"kind": "shipment", "outcome": "review", "policy_version": "9.9.9", "model_version": None,
                "degraded": True, "degraded_reason": "model_unavailable", "actions": [{"type": "enqueue_review"}]}
    observe([held] * 5 + [degraded] * 2)
    assert _value("tollgate_decisions_total", **labels) - before[0] == 5
    assert _value("tollgate_actions_total", kind="shipment", action="notify_customer") - before[1] == 5
    assert _value("tollgate_degraded_decisions_total", kind="shipment", reason="model_unavailable") - before[2] == 2
    assert _value("tollgate_decisions_total", kind="shipment", outcome="review", policy_version="9.9.9",
                  model_version="None", degraded="true") >= 2

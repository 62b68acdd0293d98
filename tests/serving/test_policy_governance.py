"""Maker-checker: a policy change goes live only when a different admin approves it, without a restart."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from features.errors import InvalidInput, PolicyInvalid
from serving.auth import Role
from serving.policy_store import PolicySource, approve, propose
from tests.serving.conftest import SHIPMENT

POLICY = Path(__file__).resolve().parents[2] / "policies" / "delay.yaml"


def _stricter(version: str = "1.1.0") -> str:
    text = POLICY.read_text().replace("version: 1.0.0", f"version: {version}")
    # notify from 0.3 instead of 0.5 (and keep the embedded examples consistent with it)
    text = text.replace("  notify: 0.5", "  notify: 0.3")
    return text.replace("- name: no better carrier, no reroute\n    facts: {shipment: {shipment_id: s1}, scores: "
                        "{p_late: 0.45}, reroute: {gain: 0.02, alternatives: []}}\n    expected: {outcome: approve, "
                        "actions: [], rules_fired: []}",
                        "- name: no better carrier, no reroute\n    facts: {shipment: {shipment_id: s1}, scores: "
                        "{p_late: 0.45}, reroute: {gain: 0.02, alternatives: []}}\n    expected: {outcome: approve, "
                        "actions: [notify_customer]}")


def test_proposal_is_not_served_until_a_different_admin_approves(api):
    headers = api.headers_for(Role.ORCHESTRATOR)
    medium = {**SHIPMENT, "carrier": "UA"}  # p_late 0.45 with the stub
    first = api.post("/shipments/decide", json=medium, headers=headers).json()
    assert [a["type"] for a in first["actions"]] == ["suggest_reroute"]
    proposal = propose(api.runtime.engine, _stricter(), by="alice")
    second = {**medium, "shipment_id": "S-2"}
    assert api.post("/shipments/decide", json=second, headers=headers).json()["policy_version"] == "1.0.0"
    with pytest.raises(PolicyInvalid, match="different admin"):
        approve(api.runtime.engine, proposal["proposal_id"], by="alice")
    approve(api.runtime.engine, proposal["proposal_id"], by="bob")
    third = api.post("/shipments/decide", json={**medium, "shipment_id": "S-3"}, headers=headers).json()
    assert third["policy_version"] == "1.1.0"
    assert [a["type"] for a in third["actions"]] == ["notify_customer", "suggest_reroute"]
    with pytest.raises(InvalidInput, match="approved, not proposed"):
        approve(api.runtime.engine, proposal["proposal_id"], by="carol")


def test_a_policy_contradicting_its_examples_cannot_be_proposed(api):
    broken = POLICY.read_text().replace("version: 1.0.0", "version: 1.2.0").replace("  notify: 0.5", "  notify: 0.9")
    with pytest.raises(PolicyInvalid, match="example 'likely late notifies'"):
        propose(api.runtime.engine, broken, by="alice")
    assert PolicySource(api.runtime.engine, ttl=0).get("delay").version == "1.0.0"


def test_cli_requires_admin_keys_and_two_people(tmp_path, monkeypatch, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("CLI path checked on SQLite")
    monkeypatch.setenv("TOLLGATE_DATABASE_URL", database_url)
    from serving.cli import app

    runner = CliRunner()
    keys = {}
    for name, role in (("alice", "admin"), ("bob", "admin"), ("olly", "orchestrator")):
        out = runner.invoke(app, ["keys", "create", "--role", role, "--name", name, "--json"])
        assert out.exit_code == 0, out.output
        keys[name] = __import__("json").loads(out.stdout)["key"]
    document = tmp_path / "delay.yaml"
    document.write_text(_stricter("1.3.0"))
    refused = runner.invoke(app, ["policy", "propose", str(document), "--key", keys["olly"], "--json"])
    assert refused.exit_code == 2 and "admin API key" in refused.stdout
    proposed = runner.invoke(app, ["policy", "propose", str(document), "--key", keys["alice"], "--json"])
    proposal_id = __import__("json").loads(proposed.stdout)["proposal_id"]
    same = runner.invoke(app, ["policy", "approve", proposal_id, "--key", keys["alice"], "--json"])
    assert same.exit_code == 2 and "different admin" in same.stdout
    ok = runner.invoke(app, ["policy", "approve", proposal_id, "--key", keys["bob"], "--json"])
    assert ok.exit_code == 0, ok.output

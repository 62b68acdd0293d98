"""Loading policy documents, checking their embedded examples, exporting the JSON Schema for editors."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from pydantic import ValidationError

from rules_engine.engine import decide
from rules_engine.schema import Policy


class PolicyInvalid(Exception):
    """A policy document failed validation or contradicts one of its own examples."""


def parse_policy(text: str, *, source: str = "<policy>") -> Policy:
    """Parse and validate a YAML policy; the error names the offending field."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyInvalid(f"{source}: not valid YAML: {exc}") from exc
    try:
        policy = Policy.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        raise PolicyInvalid(f"{source}: field '{where}': {first['msg']}") from exc
    failures = example_failures(policy)
    if failures:
        raise PolicyInvalid(f"{source}: " + "; ".join(failures))
    return policy


def load_policy(path: str | Path) -> Policy:
    path = Path(path)
    return parse_policy(path.read_text(), source=path.name)


def example_failures(policy: Policy) -> list[str]:
    """Every embedded example whose decision differs from what it expects."""
    failures = []
    for example in policy.examples:
        decision = decide(policy, example.facts)
        want = example.expected
        if decision.outcome != want.outcome:
            failures.append(f"example '{example.name}': outcome {decision.outcome}, expected {want.outcome}")
        if want.actions is not None and sorted(a["type"] for a in decision.actions) != sorted(want.actions):
            got = sorted(a["type"] for a in decision.actions)
            failures.append(f"example '{example.name}': actions {got}, expected {sorted(want.actions)}")
        if want.rules_fired is not None and decision.rules_fired != want.rules_fired:
            failures.append(f"example '{example.name}': rules {decision.rules_fired}, expected {want.rules_fired}")
    return failures


def policy_json_schema() -> str:
    """JSON Schema of the policy format (for editors: point yaml-language-server at it)."""
    return json.dumps(Policy.model_json_schema(by_alias=True), indent=2)

"""Operator verbs of the ``tollgate`` CLI (keys, policies, decision export), added to the training CLI."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select

from features.errors import TollgateError
from serving.auth import Role, authenticate, create_key, has_any_key
from serving.db import decisions
from serving.runtime import build_runtime
from training.cli import BENCH_SUITES, JsonFlag, _emit, _fail, _Steps, app, err

keys_app = typer.Typer(help="API keys (stored hashed; shown once).", no_args_is_help=True)
policy_app = typer.Typer(help="Policies under maker-checker.", no_args_is_help=True)
decisions_app = typer.Typer(help="The decision log, for auditors.", no_args_is_help=True)
export_app = typer.Typer(help="Data sets made from the service's records.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(policy_app, name="policy")
app.add_typer(decisions_app, name="decisions")
app.add_typer(export_app, name="export")
BENCH_SUITES["reviews"] = "benchmarks.review_bench"
BENCH_SUITES["http"] = "benchmarks.http_bench"
BENCH_SUITES["reasons"] = "benchmarks.reasons_bench"
BENCH_SUITES["invoices"] = "benchmarks.invoice_bench"

AdminKey = Annotated[str, typer.Option("--key", envvar="TOLLGATE_API_KEY",
                                       help="Your admin API key (or TOLLGATE_API_KEY).")]


@keys_app.command("create")
def keys_create(role: Annotated[Role, typer.Option(help="orchestrator | reviewer | approver | admin")],
                name: Annotated[str, typer.Option(help="Who or what holds the key.")] = "unnamed",
                as_json: JsonFlag = False) -> None:
    """Create a key and print it once."""
    key = create_key(build_runtime().engine, role=role, name=name)
    _emit({"role": role.value, "name": name, "key": key}, as_json, "new API key (shown once)")


@keys_app.command("bootstrap")
def keys_bootstrap(as_json: JsonFlag = False) -> None:
    """On first start only: one key per role, printed once."""
    engine = build_runtime().engine
    if has_any_key(engine):
        _emit({"created": False, "note": "keys already exist; use 'tollgate keys create'"}, as_json, "keys")
        return
    created = {role.value: create_key(engine, role=role, name=f"first-start {role.value}") for role in Role}
    _emit({"created": True, **created}, as_json, "API keys (shown once - store them now)")


@app.command("replay")
def replay_command(
    days: Annotated[int, typer.Option(min=1, max=30, help="How many of the last days to replay.")] = 2,
    max_invoices: Annotated[int, typer.Option(min=0, max=100_000, help="At most this many invoices.")] = 120,
    as_json: JsonFlag = False,
) -> None:
    """First start only: replay the embedded world's last days through the decision API (cases to work on)."""
    from serving.replay import replay

    try:
        result = replay(build_runtime(), days=days, max_invoices=max_invoices, step=_Steps(quiet=False))
    except (TollgateError, FileNotFoundError) as exc:
        _fail(exc, as_json)
    _emit(result, as_json, "replay")


def _admin(key: str) -> str:
    caller = authenticate(build_runtime().engine, f"Bearer {key}")
    if caller is None or caller.role != Role.ADMIN:
        from features.errors import InvalidInput

        raise InvalidInput("an admin API key is required (--key or TOLLGATE_API_KEY)", field="key")
    return f"{caller.name} ({caller.key_id})"


@policy_app.command("propose")
def policy_propose(file: Path, key: AdminKey, as_json: JsonFlag = False) -> None:
    """Validate a policy document (including its examples) and propose it."""
    from serving.policy_store import propose

    try:
        result = propose(build_runtime().engine, file.read_text(), by=_admin(key))
    except TollgateError as exc:
        _fail(exc, as_json)
    _emit(result, as_json, "policy proposed")


@policy_app.command("approve")
def policy_approve(proposal_id: str, key: AdminKey, as_json: JsonFlag = False) -> None:
    """Approve a proposal (a different admin from the proposer); served within seconds, no restart."""
    from serving.policy_store import approve

    try:
        result = approve(build_runtime().engine, proposal_id, by=_admin(key))
    except TollgateError as exc:
        _fail(exc, as_json)
    _emit(result, as_json, "policy approved")


@policy_app.command("schema")
def policy_schema() -> None:
    """Print the JSON Schema of the policy format (for editors)."""
    from rules_engine.loader import policy_json_schema

    sys.stdout.write(policy_json_schema() + "\n")


@decisions_app.command("export")
def decisions_export(since: Annotated[datetime, typer.Option(help="ISO date or time (UTC if no offset).")],
                     output: Annotated[Path | None, typer.Option(help="File; default stdout.")] = None) -> None:
    """Every decision since a time, one JSON object a line, in the order they were made."""
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    engine = build_runtime().engine
    out = output.open("w") if output else sys.stdout
    query = select(decisions).where(decisions.c.created_at >= since).order_by(decisions.c.created_at)
    with engine.connect() as conn:
        for row in conn.execute(query).mappings():
            record = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
            out.write(json.dumps(record, default=str) + "\n")
    if output:
        out.close()


@export_app.command("labels")
def export_labels(since: Annotated[datetime, typer.Option(help="ISO date or time (UTC if no offset).")],
                  out: Annotated[Path | None, typer.Option(help="CSV or Parquet file; default: CSV on stdout.")] = None,
                  as_json: JsonFlag = False) -> None:
    """Reviewers' final invoice verdicts since a time, as labels for 'tollgate train invoice --with-feedback'."""
    from serving.label_export import export_labels as write_labels

    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    engine = build_runtime().engine
    try:
        result = write_labels(engine, since=since, out=out if out else sys.stdout)
    except TollgateError as exc:
        _fail(exc, as_json)
    if out:
        _emit({**result, "out": str(out)}, as_json, "labels exported")
    else:
        err.print(f"{result['labels']} labels ({result['skipped']} skipped)")


__all__ = ["app"]

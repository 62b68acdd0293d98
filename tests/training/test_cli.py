"""The tollgate CLI: help everywhere, --json output, refused input names the column and row."""

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from training.cli import app

runner = CliRunner()


@pytest.mark.parametrize("args", [[], ["train"], ["train", "delay"], ["features"], ["promote"], ["bootstrap"],
                                  ["features", "materialize"], ["bench"], ["load"], ["train", "invoice"]])
def test_help_everywhere(args):
    result = runner.invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def _nothing_written() -> None:
    mlflow_db = Path(os.environ["TOLLGATE_MLFLOW_URI"].removeprefix("sqlite:///"))
    feast_data = Path(os.environ["TOLLGATE_FEAST_REPO"]) / "data"
    assert not mlflow_db.exists(), "MLflow was written despite refused input"
    assert not feast_data.exists() or not any(feast_data.glob("*.parquet")), "feature store was written"


@pytest.fixture
def history_csv(tmp_path, march_sample):
    def write(mutate) -> Path:
        frame = march_sample.head(50).copy().astype({"scheduled_departure": str, "mode": object})
        mutate(frame)
        path = tmp_path / "history.csv"
        frame.to_csv(path, index=False)
        return path
    return write


@pytest.mark.parametrize("mutate, expected", [
    (lambda f: f.drop(columns=["scheduled_arrival"], inplace=True), "missing required column(s): scheduled_arrival"),
    (lambda f: f.__setitem__("scheduled_departure", f["scheduled_departure"].where(f.index != 9, "32/13/2013")),
     "column 'scheduled_departure', row 10: unparsable timestamp"),
    (lambda f: f.__setitem__("mode", f["mode"].where(f.index != 4, "zeppelin")), "column 'mode', row 5: unknown mode"),
])
def test_bad_history_is_refused_and_nothing_is_written(history_csv, mutate, expected):
    path = history_csv(mutate)
    result = runner.invoke(app, ["train", "delay", "--history", str(path), "--json"])
    assert result.exit_code == 2
    error = json.loads(result.stdout.strip().splitlines()[0])
    assert expected in error["message"]
    assert error["error"] == "InvalidInput"
    _nothing_written()
    features = runner.invoke(app, ["features", "build", "--history", str(path)])
    assert features.exit_code == 2 and expected.split(":")[0] in features.output.replace("\n", "")
    _nothing_written()


def test_bad_job_spec_names_the_field(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("seed: thirteen\n")
    result = runner.invoke(app, ["train", "delay", "--config", str(spec), "--json"])
    assert result.exit_code == 2
    assert "field 'seed'" in json.loads(result.stdout.strip().splitlines()[0])["message"]


def test_promote_without_any_model_says_so(tmp_path):
    result = runner.invoke(app, ["promote", "delay_risk", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["reasons"] == "no challenger"


@pytest.mark.slow
@pytest.mark.integration
def test_train_delay_json_then_promote(tmp_path):
    result = runner.invoke(app, ["train", "delay", "--config", "delay_smoke", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("test_auc", "test_pr_auc", "brier", "ece", "precision_at_top_10pct", "baseline_lane_auc",
                "train_seconds", "model_version"):
        assert key in summary
    promoted = runner.invoke(app, ["promote", "delay_risk", "--json"])
    assert promoted.exit_code == 0 and json.loads(promoted.stdout)["promoted"] is True
    again = runner.invoke(app, ["promote", "delay_risk", "--json"])
    assert again.exit_code == 1 and "already champion" in json.loads(again.stdout)["reasons"]


def test_the_http_bench_without_champion_models_says_so_and_starts_nothing(tmp_path, monkeypatch):
    import psutil

    import serving.cli  # noqa: F401 - the entry point's module: it adds the http suite to `tollgate bench`

    monkeypatch.setenv("TOLLGATE_MLFLOW_URI", f"sqlite:///{tmp_path}/empty-mlflow.db")
    before = set(psutil.Process().children(recursive=True))
    result = runner.invoke(app, ["bench", "--suite", "http"])
    assert result.exit_code == 1, result.output
    assert "no champion delay_risk or invoice_discrepancy" in result.output and "make bootstrap" in result.output
    assert set(psutil.Process().children(recursive=True)) == before  # no server was launched

"""``tollgate load``: reference files validated whole, stored offline, materialized online, looked up by key;
bad files refused with exit 2 naming the field and row, leaving the store exactly as it was."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from features import store as delay_store
from features.feast_invoice_defs import (
    FEATURE_SERVICE,
    KINDS,
    _KEYS,
    contract_lane_key,
    decode_online,
    from_table,
    fuel_week_key,
    online_reference,
    table_path,
    value_columns,
)
from features.invoice_world import generate_world, save_world
from features.reference_io import write_table
from features.store import StoreSettings, open_store
from training.cli import app
from training.load_job import load_reference

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(embedded_history):
    return generate_world(embedded_history, seed=13, sample=400)


@pytest.fixture(scope="module")
def files(world, tmp_path_factory):
    return save_world(world, tmp_path_factory.mktemp("world"), suffix=".csv")


def _settings(tmp_path) -> StoreSettings:
    return StoreSettings(repo_dir=tmp_path / "feast")


def _sorted(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    return frame.sort_values(key).reset_index(drop=True)


def test_loaded_reference_is_looked_up_online_by_key(world, files, tmp_path):
    settings = _settings(tmp_path)
    for kind, name in (("contracts", "contracts"), ("shipments", "shipment_facts"), ("fuel-index", "fuel_index")):
        summary = load_reference(kind, files[name], settings=settings)
        assert summary["rows_loaded"] == len(getattr(world, name)) and summary["rows_replaced"] == 0
        assert table_path(settings.data_dir, kind).exists()
    store = open_store(settings)
    facts = world.shipment_facts.head(5)
    found = online_reference(store, "shipments", [*facts["shipment_id"], "NO-SUCH-SHIPMENT"])
    pd.testing.assert_frame_equal(_sorted(found, "shipment_id"), _sorted(facts, "shipment_id"), check_dtype=False)
    amended = world.contracts[world.contracts.duplicated(["carrier", "origin", "destination"], keep=False)]
    lane = contract_lane_key(amended.iloc[0])
    versions = online_reference(store, "contracts", [lane])
    assert len(versions) == 2  # the amendment in force now and the contract it replaced
    expected = amended[amended["contract_id"].isin(versions["contract_id"])]
    pd.testing.assert_frame_equal(_sorted(versions, "contract_id"), _sorted(expected, "contract_id"),
                                  check_dtype=False)
    week = world.fuel_index.iloc[10]
    price = online_reference(store, "fuel-index", [fuel_week_key(week["fuel_kind"], week["week_start"])])
    assert price["price_per_gallon"].tolist() == [week["price_per_gallon"]]
    assert store.get_feature_service(FEATURE_SERVICE) is not None


def _online_rows(store, kind: str, keys: list[str]) -> pd.DataFrame:
    refs = [f"{KINDS[kind]}:{name}" for name in value_columns(kind)]
    return store.get_online_features(features=refs, entity_rows=[{_KEYS[kind]: k} for k in keys]).to_df()


@pytest.fixture(scope="module")
def loaded_store(world, files, tmp_path_factory):
    settings = _settings(tmp_path_factory.mktemp("decode"))
    for kind, name in (("contracts", "contracts"), ("shipments", "shipment_facts"), ("fuel-index", "fuel_index")):
        load_reference(kind, files[name], settings=settings)
    return open_store(settings)


def _stored_keys(world) -> dict[str, list[str]]:
    return {"shipments": world.shipment_facts["shipment_id"].tolist(),
            "contracts": list(dict.fromkeys(contract_lane_key(world.contracts))),
            "fuel-index": fuel_week_key(world.fuel_index["fuel_kind"], world.fuel_index["week_start"]).tolist()}


def test_online_rows_decoded_by_type_are_the_frame_the_validating_loader_gives(world, loaded_store):
    """The serving path skips the second validation of online rows (decode_online): it must build the
    very frame from_table builds, values exactly and dtypes, for every stored row, read all at once and
    one by one."""
    facts = world.shipment_facts
    with_empties = facts.loc[facts["actual_arrival"].isna() | facts["length_cm"].isna(), "shipment_id"]
    assert len(with_empties) >= 3  # rows with empty optional values are among those read one by one
    rows_of = {"shipments": len(facts), "contracts": len(world.contracts), "fuel-index": len(world.fuel_index)}
    key_column = {"shipments": "shipment_id", "contracts": "contract_id", "fuel-index": "fuel_kind"}
    for kind, wanted in _stored_keys(world).items():
        everything = _online_rows(loaded_store, kind, [*wanted[::-1], "NO-SUCH-KEY"])  # not in stored order
        decoded = decode_online(kind, everything)
        assert len(decoded) == rows_of[kind] and "NO-SUCH-KEY" not in set(decoded[key_column[kind]])
        pd.testing.assert_frame_equal(decoded, from_table(kind, everything), check_exact=True)
        one_by_one = [*wanted[:25], *(with_empties.head(5) if kind == "shipments" else []), "NO-SUCH-KEY"]
        for key in one_by_one:
            rows = _online_rows(loaded_store, kind, [key])
            pd.testing.assert_frame_equal(decode_online(kind, rows), from_table(kind, rows), check_exact=True)


def _refused(kind: str, rows: pd.DataFrame, column: str, value, match: str) -> None:
    bad = rows.astype({column: object})
    bad.loc[1, column] = value
    with pytest.raises(ValueError, match=match):
        decode_online(kind, bad)


def test_an_online_value_of_the_wrong_type_missing_or_read_twice_raises(world, loaded_store):
    keys = _stored_keys(world)
    shipments = _online_rows(loaded_store, "shipments", keys["shipments"][:2])
    _refused("shipments", shipments, "scheduled_arrival", "not a time", "not a time")
    _refused("shipments", shipments, "scheduled_arrival", 20131226, "is not text")
    _refused("shipments", shipments, "cancelled", "maybe", "not true or false")
    _refused("shipments", shipments, "pieces", "nan", "not a number")
    _refused("shipments", shipments, "carrier", 7, "is not text")
    for column in ("cancelled", "pieces", "carrier", "ship_date"):  # required: never False, garbage or None
        for empty in (None, ""):
            _refused("shipments", shipments, column, empty, f"column '{column}' has no value")
    twice = pd.concat([shipments, shipments.iloc[[0]]], ignore_index=True)
    with pytest.raises(ValueError, match="read twice"):
        decode_online("shipments", twice)
    fuel = _online_rows(loaded_store, "fuel-index", keys["fuel-index"][:2])
    _refused("fuel-index", fuel, "price_per_gallon", None, "column 'price_per_gallon' has no value")
    contracts = _online_rows(loaded_store, "contracts", keys["contracts"][:2])
    records = json.loads(contracts.loc[1, "versions"])
    _refused("contracts", contracts, "versions", json.dumps([{**records[0], "effective_from": 20240101},
                                                             *records[1:]]), "is not text")
    del records[0]["base_rate"]
    _refused("contracts", contracts, "versions", json.dumps(records), "column 'base_rate' has no value")
    assert len(decode_online("shipments", shipments)) == 2 and len(decode_online("fuel-index", fuel)) == 2


def test_reload_replaces_records_with_the_same_identity(world, files, tmp_path):
    settings = _settings(tmp_path)
    load_reference("shipments", files["shipment_facts"], settings=settings)
    changed = world.shipment_facts.head(3).assign(delivery_attempts=2)
    path = write_table(changed, tmp_path / "update.parquet")
    summary = load_reference("shipments", path, settings=settings)
    assert (summary["rows_replaced"], summary["rows_in_store"]) == (3, len(world.shipment_facts))
    found = online_reference(open_store(settings), "shipments", changed["shipment_id"].tolist())
    assert (found["delivery_attempts"] == 2).all()


def _bad_contracts(world, tmp_path):
    frame = world.contracts.copy()
    frame.loc[2, "base_rate"] = -1.0
    return write_table(frame, tmp_path / "bad_contracts.csv")


def test_cli_refuses_a_bad_file_naming_field_and_row_and_writes_nothing(world, tmp_path):
    bad = _bad_contracts(world, tmp_path)
    result = CliRunner().invoke(app, ["load", "contracts", str(bad), "--json"])
    assert result.exit_code == 2
    error = json.loads(result.stdout.splitlines()[0])
    assert (error["field"], error["row"]) == ("base_rate", 3)
    assert "base_rate" in result.output and "row 3" in result.output
    repo = tmp_path / "feast-default"  # TOLLGATE_FEAST_REPO of this test (tests/conftest.py)
    assert not repo.exists() or not any(repo.rglob("*.parquet"))
    assert not (repo / "data" / "registry.db").exists()


def test_refused_file_leaves_a_loaded_store_unchanged(world, files, tmp_path):
    settings = _settings(tmp_path)
    load_reference("contracts", files["contracts"], settings=settings)
    before = table_path(settings.data_dir, "contracts").read_bytes()
    overlapping = world.contracts.head(1).assign(contract_id="NEW-ROW-1")  # same lane and dates, new id
    path = write_table(overlapping, tmp_path / "overlap.csv")
    with pytest.raises(Exception, match="effective_from") as caught:
        load_reference("contracts", path, settings=settings)
    assert type(caught.value).__name__ == "InvalidInput"
    assert table_path(settings.data_dir, "contracts").read_bytes() == before


def test_unknown_kind_exits_2(files):
    result = CliRunner().invoke(app, ["load", "invoices", str(files["contracts"])])
    assert result.exit_code == 2 and "kind" in result.output


def test_applying_invoice_definitions_keeps_the_delay_definitions(files, tmp_path):
    settings = _settings(tmp_path)
    store = open_store(settings)
    delay_store.apply(store, settings)
    load_reference("fuel-index", files["fuel_index"], settings=settings)
    delay_store.apply(store, settings)  # and the other way round
    names = {view.name for view in open_store(settings).list_feature_views()}
    assert {"carrier_perf", "lane_perf", "contract_terms", "shipment_facts", "fuel_prices"} <= names
    services = {s.name for s in open_store(settings).list_feature_services()}
    assert {delay_store.FEATURE_SERVICE, FEATURE_SERVICE} <= services

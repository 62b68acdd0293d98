"""Fuzz the API from its own OpenAPI document: whatever arrives, no 5xx (stub models, real database)."""

import schemathesis
from hypothesis import HealthCheck, given, settings

from features import store as feature_store
from features.history import read_weather
from features.tables import build_feature_tables
from serving.app import create_app
from serving.auth import Role, create_key
from tests.serving.conftest import StubDelayScorer, make_runtime


def test_no_server_errors_from_generated_requests(tmp_path, march_sample):
    runtime = make_runtime(f"sqlite:///{tmp_path}/fuzz.db", StubDelayScorer({"AA": 0.7, "DL": 0.2}))
    store_settings = feature_store.StoreSettings(repo_dir=tmp_path / "repo")
    feature_store.write_tables(build_feature_tables(march_sample.head(500), read_weather()), store_settings.data_dir)
    feature_store.apply(feature_store.open_store(store_settings), store_settings)
    runtime.store_settings = store_settings
    key = create_key(runtime.engine, role=Role.ADMIN, name="fuzz")
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(lambda: runtime))
    seen = set()

    @given(case=schema.as_strategy())
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
              database=None)
    def check(case):
        response = case.call(headers={"Authorization": f"Bearer {key}"})
        seen.add((case.method, case.path, response.status_code // 100))
        assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"

    check()
    assert {path for _, path, _ in seen} >= {"/shipments/decide", "/events"}
    # the fuzzed app still decides a well-formed request afterwards
    from fastapi.testclient import TestClient

    from tests.serving.conftest import SHIPMENT

    client = TestClient(create_app(lambda: runtime))
    assert client.post("/shipments/decide", json=SHIPMENT, headers={"Authorization": f"Bearer {key}"}).status_code == 200

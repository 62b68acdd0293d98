"""A Redis that accepts connections and never answers ends a read in FeaturesUnavailable within about one
socket timeout (features/store.py: the timeouts, and a retry policy that does not retry timeouts): the
decision comes back degraded instead of holding its worker."""

import socket
import threading
import time

import pytest

from features import store as feature_store
from features.errors import FeaturesUnavailable
from features.online import OnlineReader
from features.transforms import entity_frame
from tests.features.online_stores import materialized_store

pytestmark = pytest.mark.integration


@pytest.fixture
def silent_redis():
    """A TCP listener on a free loopback port that accepts and reads, and never writes a byte."""
    server = socket.create_server(("127.0.0.1", 0))
    held, stop = [], threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    server.close()


def test_a_redis_that_never_answers_is_features_unavailable(tmp_path, march_sample, silent_redis, monkeypatch):
    settings, store = materialized_store(tmp_path / "repo", march_sample, online="redis", prefix="h")
    rows = entity_frame(march_sample.tail(5)).drop(columns=["shipment_id", "event_timestamp"]).to_dict("records")
    assert not OnlineReader(store, "delay_risk_v1").read(rows).empty  # the real Redis answers

    monkeypatch.setattr(feature_store, "REDIS_TIMEOUT_SECONDS", 1)
    hanging = feature_store.open_store(settings.model_copy(update={"redis_url": silent_redis}))
    outcome: list = []

    def read() -> None:
        started = time.perf_counter()
        try:
            OnlineReader(hanging, "delay_risk_v1").read(rows)
            outcome.append("answered")
        except FeaturesUnavailable as exc:
            outcome.append(exc)
        outcome.append(time.perf_counter() - started)

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(30)  # without the socket timeout the read would still be waiting here
    assert outcome, "the read against a silent Redis did not return within 30 s"
    assert isinstance(outcome[0], FeaturesUnavailable), outcome[0]
    # One 1 s timeout, not a multiple: with redis-py's default retries (timeouts retried three times,
    # with backoff) this read took 10.6 s in CI. 5 s leaves room for a slow machine.
    assert outcome[1] < 5, f"the read took {outcome[1]:.1f} s with a 1 s socket timeout"
    store.teardown()

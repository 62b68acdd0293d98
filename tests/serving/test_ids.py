import threading
import time
import uuid

from serving.ids import uuid7


def test_uuid7_is_a_valid_version_7_uuid_carrying_the_time():
    before = time.time_ns() // 1_000_000
    text = uuid7()
    after = time.time_ns() // 1_000_000
    parsed = uuid.UUID(text)
    assert str(parsed) == text
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert before <= parsed.int >> 80 <= after + 1


def test_uuid7_ids_of_one_process_strictly_increase_even_within_a_millisecond():
    ids = [uuid7() for _ in range(20_000)]  # far more than 4,096 a millisecond: the counter overflows
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_uuid7_from_several_threads_are_unique():
    out: list[list[str]] = [[] for _ in range(4)]

    def make(slot: list[str]) -> None:
        slot.extend(uuid7() for _ in range(5_000))

    threads = [threading.Thread(target=make, args=(slot,)) for slot in out]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for slot in out for i in slot]
    assert len(set(every)) == len(every)
    for slot in out:
        assert slot == sorted(slot)


def test_uuid7_keeps_increasing_when_the_clock_steps_back(monkeypatch):
    import serving.ids as ids

    class Clock:
        now = (time.time_ns() // 1_000_000 + 60_000) * 1_000_000  # a minute ahead of everything so far

        def time_ns(self) -> int:
            return self.now

    clock = Clock()
    monkeypatch.setattr(ids, "time", clock)
    # restored afterwards: later ids in this process must not carry the fake minute-ahead time
    monkeypatch.setattr(ids, "_last_ms", ids._last_ms)
    monkeypatch.setattr(ids, "_seq", ids._seq)
    ahead = [uuid7() for _ in range(3)]
    clock.now -= 30_000 * 1_000_000  # NTP steps the clock back 30 s
    behind = [uuid7() for _ in range(3)]
    made = ahead + behind
    assert made == sorted(made) and len(set(made)) == 6
    assert {uuid.UUID(i).int >> 80 for i in behind} <= {clock.now // 1_000_000 + 30_000}  # the last time seen


def test_uuid7_many_continues_the_sequence_beyond_a_millisecond_counter():
    from serving.ids import uuid7_many

    before = uuid7()
    batch = uuid7_many(10_000)  # one clock reading: the counter overflows into the next milliseconds
    after = uuid7()
    every = [before, *batch, after]
    assert every == sorted(every) and len(set(every)) == len(every)
    assert all(uuid.UUID(i).version == 7 for i in batch)

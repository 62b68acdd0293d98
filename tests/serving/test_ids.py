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

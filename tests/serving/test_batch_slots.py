"""Batches in flight across the service's processes (serving/batch_slots.py): a batch is alone only when no
other process or thread holds a slot, and a slot is freed when its holder ends or dies."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from serving.batch_slots import BatchSlots

ROOT = Path(__file__).resolve().parents[2]


def test_a_batch_is_alone_only_while_no_other_holds_a_slot(tmp_path):
    slots = BatchSlots(tmp_path / "batches", slots=3)
    with slots.hold() as first:
        assert first is True
        with slots.hold() as second:  # another thread's batch opens its own files: the locks conflict
            assert second is False
            with slots.hold() as third, BatchSlots(tmp_path / "batches", slots=3).hold() as fourth:
                assert third is False and fourth is False  # the last finds every slot taken
    with slots.hold() as again:
        assert again is True  # every slot was given back


def _holder(directory) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from serving.batch_slots import BatchSlots
        with BatchSlots(Path({str(directory)!r})).hold() as alone:
            print("held", alone, flush=True)
            time.sleep(60)
    """)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def test_a_batch_in_another_process_counts_until_that_process_dies(tmp_path):
    directory = tmp_path / "batches"
    holder = _holder(directory)
    try:
        assert holder.stdout.readline().split() == ["held", "True"]
        with BatchSlots(directory).hold() as alone:
            assert alone is False
    finally:
        holder.kill()
        holder.wait()
    with BatchSlots(directory).hold() as alone:
        assert alone is True  # the kernel dropped the dead holder's lock


def test_slots_that_cannot_be_made_never_count_a_batch_as_alone(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    slots = BatchSlots(blocker / "batches")
    assert slots.usable is False
    with slots.hold() as alone:
        assert alone is False

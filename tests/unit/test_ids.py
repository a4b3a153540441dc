"""Request and event ids (strongroom/ids.py): random version-4 UUIDs for requests, time-ordered
version-7 UUIDs for audit events, a fresh sequence per process."""

from __future__ import annotations

import os
import uuid

import time

from strongroom.ids import ordered_id, unique_id


def test_ids_are_version_4_uuids_in_text_form() -> None:
    ids = [unique_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:500]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_a_forked_process_does_not_repeat_its_parents_ids() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send its next id and leave at once
        os.write(write, unique_id().encode())
        os._exit(0)
    os.close(write)
    parent = unique_id()
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert uuid.UUID(child).version == 4 and child != parent


def test_event_ids_are_version_7_uuids_in_time_order() -> None:
    before = time.time_ns() // 1_000_000
    first = [ordered_id() for _ in range(2000)]
    time.sleep(0.003)
    later = ordered_id()
    after = time.time_ns() // 1_000_000
    assert len(set(first)) == len(first)
    for text in first[:200] + [later]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert before <= parsed.int >> 80 <= after  # the millisecond it was made, in its first 48 bits
    # A later millisecond sorts after every id of an earlier one, as text too: appended in order.
    assert all(text < later for text in first)

"""Request and event ids (strongroom/ids.py): random version-4 UUIDs, a fresh sequence per process."""

from __future__ import annotations

import os
import uuid

from strongroom.ids import unique_id


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

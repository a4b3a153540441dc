"""Backup files: round trips, and every way of altering one is refused (crypto/backupfile.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from strongroom.crypto.backupfile import (
    SEGMENT,
    BackupError,
    BackupWriter,
    WrongRootKey,
    read_header,
    read_plaintext,
)
from strongroom.crypto.rootkey import FileRootKey


def write(path: Path, root: FileRootKey, *chunks: bytes) -> None:
    writer = BackupWriter(path, root, schema_revision="0006", source_backend="sqlite", created=1.0,
                          strongroom_version="test")
    for chunk in chunks:
        writer.write(chunk)
    writer.close()


def read(path: Path, root: FileRootKey) -> bytes:
    return b"".join(read_plaintext(path, root))


@pytest.fixture
def root() -> FileRootKey:
    return FileRootKey(os.urandom(32))


def test_round_trip_across_several_segments(tmp_path: Path, root: FileRootKey) -> None:
    data = os.urandom(SEGMENT) * 2 + os.urandom(SEGMENT // 2)  # incompressible: three segments
    path = tmp_path / "b"
    write(path, root, data[:1000], data[1000:])
    assert read(path, root) == data
    header = read_header(path)
    assert (header.root_key_id, header.schema_revision, header.source_backend) == (root.key_id, "0006", "sqlite")
    assert path.stat().st_mode & 0o777 == 0o600


def test_an_empty_snapshot_round_trips(tmp_path: Path, root: FileRootKey) -> None:
    write(tmp_path / "b", root)
    assert read(tmp_path / "b", root) == b""


def test_another_root_key_is_named_as_wrong(tmp_path: Path, root: FileRootKey) -> None:
    write(tmp_path / "b", root, b"data")
    other = FileRootKey(os.urandom(32))
    with pytest.raises(WrongRootKey, match=root.key_id):
        read(tmp_path / "b", other)


@pytest.mark.parametrize("how", ["flip-header", "flip-body", "truncate", "append", "drop-segment", "swap"])
def test_altered_files_are_refused(tmp_path: Path, root: FileRootKey, how: str) -> None:
    path = tmp_path / "b"
    write(path, root, os.urandom(SEGMENT * 3))  # incompressible: at least three segments
    data = bytearray(path.read_bytes())
    header_end = data.index(b"}") + 1
    segments, pos = [], header_end
    while pos < len(data):
        size = int.from_bytes(data[pos:pos + 4], "big")
        segments.append(bytes(data[pos:pos + 4 + size]))
        pos += 4 + size
    head = bytes(data[:header_end])
    if how == "flip-header":
        altered = head.replace(b'"created":1.0', b'"created":2.0') + b"".join(segments)
    elif how == "flip-body":
        data[-5] ^= 1
        altered = bytes(data)
    elif how == "truncate":
        altered = bytes(data[:-100])
    elif how == "append":
        altered = bytes(data) + segments[0]
    elif how == "drop-segment":
        altered = head + segments[0] + segments[2]
    else:
        altered = head + segments[1] + segments[0] + segments[2]
    path.write_bytes(altered)
    with pytest.raises(BackupError):
        read(path, root)


def test_not_a_backup(tmp_path: Path, root: FileRootKey) -> None:
    (tmp_path / "b").write_bytes(b"SQLite format 3\x00")
    with pytest.raises(BackupError, match="not a strongroom backup"):
        read_header(tmp_path / "b")

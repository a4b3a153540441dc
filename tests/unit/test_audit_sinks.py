"""Audit sinks: JSON-lines files with rotation and retention, stdout, syslog."""

from __future__ import annotations

import json
import os
import socket
import stat
import time
from pathlib import Path

import pytest

from strongroom.audit.sinks import FileSink, StdoutSink, SyslogSink, build_sink


def lines(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_file_sink_appends_json_lines_in_a_private_file(tmp_path: Path):
    sink = FileSink(tmp_path / "audit.jsonl")
    sink.write(['{"n":1}', '{"n":2}'])
    sink.write(['{"n":3}'])
    sink.close()
    assert [r["n"] for r in lines(tmp_path / "audit.jsonl")] == [1, 2, 3]
    assert stat.S_IMODE(os.stat(tmp_path / "audit.jsonl").st_mode) == 0o600


def test_file_sink_rotates_by_size_and_keeps_only_the_newest(tmp_path: Path):
    sink = FileSink(tmp_path / "audit.jsonl", max_bytes=100, keep=2, rotate_seconds=0)
    for i in range(20):
        sink.write([json.dumps({"n": i, "pad": "x" * 30})])
        time.sleep(0.002)  # rotated names carry microseconds; keep them distinct
    sink.close()
    rotated = sorted(tmp_path.glob("audit.jsonl.*"))
    assert len(rotated) == 2
    kept = [r["n"] for p in [*rotated, tmp_path / "audit.jsonl"] for r in lines(p)]
    assert kept == sorted(kept) and kept[-1] == 19  # the newest events, in order


def test_file_sink_rotates_by_age(tmp_path: Path):
    sink = FileSink(tmp_path / "audit.jsonl", rotate_seconds=0.05)
    sink.write(['{"n":1}'])
    time.sleep(0.1)
    sink.write(['{"n":2}'])
    sink.close()
    assert len(list(tmp_path.glob("audit.jsonl.*"))) == 1
    assert [r["n"] for r in lines(tmp_path / "audit.jsonl")] == [2]


def test_file_sink_removes_files_older_than_the_retention(tmp_path: Path):
    old = tmp_path / "audit.jsonl.20000101T000000000000Z"
    old.write_text("{}\n")
    os.utime(old, (0, 0))
    sink = FileSink(tmp_path / "audit.jsonl", max_bytes=10, max_age_days=1)
    sink.write(['{"n":1}'])
    sink.write(['{"n":2}'])  # rotates, and prunes the old file
    sink.close()
    assert not old.exists()


def test_stdout_sink(capsys: pytest.CaptureFixture[str]):
    StdoutSink().write(['{"a":1}', '{"b":2}'])
    assert capsys.readouterr().out == '{"a":1}\n{"b":2}\n'


def test_syslog_sink_sends_each_record_over_udp():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(5)
        port = rx.getsockname()[1]
        sink = SyslogSink(address=f"127.0.0.1:{port}", facility="local3", tag="sr-test")
        sink.write(['{"eventName":"GetSecretValue"}'])
        sink.close()
        datagram = rx.recv(65536).decode()
    assert datagram.startswith(f"<{19 * 8 + 6}>sr-test: ")  # local3.info
    assert '{"eventName":"GetSecretValue"}' in datagram


def test_build_sink_from_config(tmp_path: Path):
    sink = build_sink({"type": "file", "path": "logs/a.jsonl", "max_bytes": 5}, tmp_path)
    assert isinstance(sink, FileSink) and sink.path == tmp_path / "logs" / "a.jsonl"
    assert sink.name == f"file:{tmp_path / 'logs' / 'a.jsonl'}"
    assert build_sink({"type": "stdout", "name": "out"}, tmp_path).name == "out"
    with pytest.raises(ValueError):
        build_sink({"type": "kafka"}, tmp_path)

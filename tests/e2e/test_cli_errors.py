"""The CLI meets ordinary mistakes (a broken config file, a data directory never initialized,
a missing directory, bad YAML, an unreachable endpoint) with one `error:` line and exit 1:
no traceback, and nothing created on the way."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.e2e.keys_support import env_for, init


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The installed `strongroom` entry point, as a user runs it."""
    import sys

    script = Path(sys.executable).parent / "strongroom"
    return subprocess.run([str(script), *args], env=env, capture_output=True, text=True, timeout=120)


def refused(out: subprocess.CompletedProcess[str], *words: str) -> None:
    assert out.returncode == 1, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    assert out.stderr.lower().startswith("error:"), out.stderr
    for word in words:
        assert word in out.stderr, (word, out.stderr)


@pytest.fixture
def initialized(tmp_path: Path) -> dict[str, str]:
    init(tmp_path)
    return env_for(tmp_path)


def test_a_broken_config_file_is_named(tmp_path: Path, initialized: dict[str, str]):
    config = tmp_path / "data" / "config.toml"
    good = config.read_text()
    config.write_text(good + "x = [\n")
    refused(run(initialized, "account", "list"), str(config), "not valid TOML")
    config.write_text(good + "[cache]\nmax_secrets = -1\n")
    refused(run(initialized, "serve", "--port", "1"), "[cache] max_secrets")  # markup-like text kept


def test_an_uninitialized_data_directory_is_not_created_empty(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    env = env_for(tmp_path)
    for command in (["account", "list"], ["usage"], ["audit"], ["rotation", "status"],
                    ["iam", "list-users"]):
        out = run(env, *command, "--data-dir", str(empty))
        assert out.returncode == 1 and "Traceback" not in out.stderr, (command, out.stderr)
        assert "strongroom init" in out.stderr, (command, out.stderr)
    assert list(empty.iterdir()) == []


def test_files_and_endpoints_that_are_not_there(tmp_path: Path, initialized: dict[str, str]):
    refused(run(initialized, "backup", str(tmp_path / "missing" / "x.backup")), "is not a directory")
    bad = tmp_path / "bad.yaml"
    bad.write_text("accounts: [\n")
    refused(run(initialized, "iam", "apply", str(bad)), "not valid YAML")
    refused(run(initialized, "functions", "list", "--endpoint-url", "http://127.0.0.1:1"), "Could not connect")


@pytest.mark.parametrize("options, words", [
    (["--root-key", "passphrase", "--shares", "2", "--threshold", "3"], ["--threshold <= --shares"]),
    (["--shares", "3", "--threshold", "2"], ["--shares, --threshold go with the passphrase source"]),
    (["--root-key", "passphrase", "--threshold", "2"], ["--threshold needs --shares"]),
    (["--root-key", "kms", "--pkcs11-module", "/x.so", "--kms-key-id", "k"], ["--pkcs11-module go with the pkcs11"]),
])
def test_init_refuses_options_that_cannot_work_before_writing_anything(tmp_path: Path, options, words):
    data = tmp_path / "data"
    refused(run(env_for(tmp_path), "init", "--endpoint-url", "http://127.0.0.1:1", *options), *words)
    assert not data.exists()


def test_serve_on_a_directory_never_initialized_creates_nothing(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    refused(run(env_for(tmp_path), "serve", "--data-dir", str(empty), "--port", "1"), "strongroom init")
    assert list(empty.iterdir()) == []

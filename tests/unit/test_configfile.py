"""config.toml: the [root_key] table is replaced, everything else kept."""

from __future__ import annotations

import stat
import tomllib

from strongroom.rootkeys.configfile import replace_table, write_root_key

BEFORE = '''# deployment settings
[server]
region = "eu-west-1"

[root_key]
source = "file"
path = "root.key"   # the original

[root_key.extra]
x = 1

[storage]
database_url = "sqlite:///x.db"
'''


def test_replace_keeps_other_tables_and_drops_the_old_root_key():
    text = replace_table(BEFORE, "root_key", {"source": "pkcs11", "module": "/usr/lib/x.so",
                                              "token_label": 'tok "1"', "pin": None, "slot": 3, "rw": True})
    data = tomllib.loads(text)
    assert data["server"] == {"region": "eu-west-1"}
    assert data["storage"] == {"database_url": "sqlite:///x.db"}
    assert data["root_key"] == {"source": "pkcs11", "module": "/usr/lib/x.so", "token_label": 'tok "1"',
                                "slot": 3, "rw": True}
    assert "# deployment settings" in text and "the original" not in text


def test_write_creates_the_file_owner_only(tmp_path):
    path = tmp_path / "config.toml"
    write_root_key(path, {"source": "passphrase", "root_key_id": "passphrase:0123"})
    assert tomllib.loads(path.read_text())["root_key"]["root_key_id"] == "passphrase:0123"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    write_root_key(path, {"source": "file"})
    assert tomllib.loads(path.read_text()) == {"root_key": {"source": "file"}}


def test_the_read_cache_bound_comes_from_config(tmp_path):
    import pytest

    from strongroom.config import load_settings

    assert load_settings(tmp_path).cache_max_secrets == 100_000  # the default
    (tmp_path / "config.toml").write_text("[cache]\nmax_secrets = 250\n")
    assert load_settings(tmp_path).cache_max_secrets == 250
    (tmp_path / "config.toml").write_text("[cache]\nmax_secrets = -1\n")
    with pytest.raises(ValueError, match="max_secrets"):
        load_settings(tmp_path)

"""Rewrite the [root_key] table of config.toml, leaving the rest of the file as it was.

tomllib only reads; the table strongroom writes holds strings, integers and
booleans, which JSON's scalar syntax writes as valid TOML. The file is
replaced atomically, so a crash leaves the old or the new file, never half.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from strongroom.crypto.passphrase import write_private

_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\"' -]+?)\s*\]\]?\s*(#.*)?$")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)


def render_table(name: str, values: dict[str, Any]) -> str:
    lines = [f"[{name}]"]
    lines += [f"{key} = {_value(v)}" for key, v in values.items() if v is not None]
    return "\n".join(lines) + "\n"


def replace_table(text: str, name: str, values: dict[str, Any]) -> str:
    """`text` with table `name` (and its sub-tables) replaced by `values`, appended at the end."""
    kept: list[str] = []
    skipping = False
    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            table = m.group(1).strip().strip("\"'")
            skipping = table == name or table.startswith(name + ".")
        if not skipping:
            kept.append(line)
    body = "\n".join(kept).rstrip()
    return (body + "\n\n" if body else "") + render_table(name, values)


def write_root_key(config_path: Path, spec: dict[str, Any]) -> None:
    text = config_path.read_text() if config_path.exists() else ""
    write_private(config_path, replace_table(text, "root_key", spec).encode())

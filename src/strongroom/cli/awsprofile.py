"""Write a named profile into the AWS shared config and credentials files.

Only the profile's own section is replaced; every other line of the files,
comments included, is kept as it was.
"""

from __future__ import annotations

import os
from pathlib import Path


def config_path() -> Path:
    return Path(os.environ.get("AWS_CONFIG_FILE", "~/.aws/config")).expanduser()


def credentials_path() -> Path:
    return Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")).expanduser()


def replace_section(text: str, header: str, values: dict[str, str]) -> str:
    lines = text.splitlines()
    out: list[str] = []
    skipping = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            skipping = stripped == header
            if skipping:
                continue
        if not skipping:
            out.append(line)
    while out and not out[-1].strip():
        out.pop()
    block = [header, *(f"{k} = {v}" for k, v in values.items())]
    return "\n".join([*out, "", *block]).lstrip("\n") + "\n"


def _write(path: Path, header: str, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.read_text() if path.exists() else ""
    tmp = path.with_name(path.name + ".strongroom-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(replace_section(old, header, values))
    os.replace(tmp, path)


def write_profile(name: str, *, region: str, endpoint_url: str, access_key_id: str, secret_access_key: str) -> None:
    header = "[default]" if name == "default" else f"[profile {name}]"
    _write(config_path(), header, {"region": region, "endpoint_url": endpoint_url, "output": "json"})
    _write(credentials_path(), f"[{name}]",
           {"aws_access_key_id": access_key_id, "aws_secret_access_key": secret_access_key})

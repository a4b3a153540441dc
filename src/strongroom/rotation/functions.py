"""The function registry: rotation functions stored in the database (Lambda-compatible subset).

A function is either a Python handler (a zip with `lambda_function.py` and optionally
`requirements.txt`) run in a subprocess, or a webhook: a function whose environment has
STRONGROOM_WEBHOOK_URL receives each event as a signed HTTP POST instead. The zip and the
environment are stored wrapped by the root key; each node unpacks a zip into its data
directory on first use, keyed by the code's SHA-256, and installs its requirements.txt into
a virtualenv keyed by the requirements' SHA-256, which sees the server's boto3 after its own
packages (as Lambda's Python runtime does).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import io
import json
import logging
import re
import shutil
import subprocess
import sys
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, update

from strongroom.crypto.rootkey import RootKey
from strongroom.storage import Store
from strongroom.storage import tables as t

log = logging.getLogger("strongroom.functions")
NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
ARN = re.compile(r"^arn:aws:lambda:([a-z0-9-]+):(\d{12}):function:([a-zA-Z0-9_-]{1,64})(?::\$LATEST)?$")
WEBHOOK_URL = "STRONGROOM_WEBHOOK_URL"  # the environment variable that makes a function a webhook
RUNTIMES = ("python3.8", "python3.9", "python3.10", "python3.11", "python3.12", "python3.13")
MAX_ZIP = 50 * 1024 * 1024
# What Lambda's Python runtime provides without packaging: boto3 and what it needs.
RUNTIME_DISTRIBUTIONS = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "urllib3", "six")


def function_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:aws:lambda:{region}:{account_id}:function:{name}"


def _purpose(arn: str, what: str) -> bytes:
    return f"strongroom/function-{what}/v1\0{arn}".encode()


@dataclass(slots=True)
class FunctionRecord:
    account_id: str
    region: str
    name: str
    arn: str
    runtime: str
    handler: str
    role: str
    timeout: int = 3
    memory_size: int = 128
    description: str = ""
    code_sha256: str = ""  # hex
    code_size: int = 0
    environment: dict[str, str] = field(default_factory=dict)
    policy: str | None = None
    revision_id: str = ""
    last_modified: float = 0.0
    code: bytes | None = None  # the zip, when loaded

    @property
    def webhook_url(self) -> str | None:
        return self.environment.get(WEBHOOK_URL)


class FunctionRegistry:
    def __init__(self, store: Store, root: RootKey, cache_dir: Path):
        self.store, self.root, self.cache_dir = store, root, cache_dir
        self._runtime: Path | None = None  # the runtime layer, once built or found

    # -- rows --------------------------------------------------------------------------------
    def _record(self, row: Any, with_code: bool) -> FunctionRecord:
        m = row._mapping
        env = json.loads(self.root.unwrap(m["environment_wrapped"], _purpose(m["arn"], "env"))) \
            if m["environment_wrapped"] else {}
        code = self.root.unwrap(m["code_wrapped"], _purpose(m["arn"], "code")) \
            if with_code and m["code_wrapped"] else None
        return FunctionRecord(m["account_id"], m["region"], m["name"], m["arn"], m["runtime"], m["handler"],
                              m["role"], m["timeout"], m["memory_size"], m["description"], m["code_sha256"],
                              m["code_size"], env, m["policy"], m["revision_id"], m["last_modified"], code)

    def get(self, arn: str, *, with_code: bool = False) -> FunctionRecord | None:
        m = ARN.match(arn)
        if m is None:
            return None
        with self.store.read() as tx:
            row = tx.conn.execute(select(t.functions).where(t.functions.c.arn == function_arn(*m.groups()))).first()
        return self._record(row, with_code) if row else None

    def list(self, account_id: str, region: str) -> list[FunctionRecord]:
        c = t.functions.c
        with self.store.read() as tx:
            rows = tx.conn.execute(select(t.functions).where(c.account_id == account_id, c.region == region)
                                   .order_by(c.name)).all()
        return [self._record(r, False) for r in rows]

    def _row(self, fn: FunctionRecord) -> dict[str, Any]:
        row = {k: getattr(fn, k) for k in ("account_id", "region", "name", "arn", "runtime", "handler", "role",
                                           "timeout", "memory_size", "description", "code_sha256", "code_size",
                                           "policy", "revision_id", "last_modified")}
        row["environment_wrapped"] = self.root.wrap(json.dumps(fn.environment).encode(), _purpose(fn.arn, "env"))
        if fn.code is not None:
            row["code_wrapped"] = self.root.wrap(fn.code, _purpose(fn.arn, "code"))
        return row

    def insert(self, fn: FunctionRecord) -> bool:
        """False when a function of that name exists."""
        fn.revision_id = str(uuid.uuid4())
        with self.store.write() as tx:
            if tx.conn.execute(select(t.functions.c.arn).where(t.functions.c.arn == fn.arn)).first():
                return False
            tx.conn.execute(insert(t.functions).values(**self._row(fn)))
        return True

    def update(self, fn: FunctionRecord) -> None:
        fn.revision_id = str(uuid.uuid4())
        row = self._row(fn)
        with self.store.write() as tx:
            tx.conn.execute(update(t.functions).where(t.functions.c.arn == fn.arn).values(**row))

    def delete(self, arn: str) -> bool:
        with self.store.write() as tx:
            return bool(tx.conn.execute(delete(t.functions).where(t.functions.c.arn == arn)).rowcount)

    # -- code ----------------------------------------------------------------------------------
    @staticmethod
    def check_zip(code: bytes) -> tuple[str, int]:
        """(sha256 hex, size) of a valid zip; ValueError otherwise."""
        if len(code) > MAX_ZIP:
            raise ValueError("Unzipped size must be smaller than 52428800 bytes")
        try:
            with zipfile.ZipFile(io.BytesIO(code)) as zf:
                for name in zf.namelist():
                    if name.startswith("/") or ".." in Path(name).parts:
                        raise ValueError(f"the zip entry {name} escapes the function's directory")
        except zipfile.BadZipFile:
            raise ValueError("Could not unzip uploaded file. Please check your file, then try to upload again.") \
                from None
        return hashlib.sha256(code).hexdigest(), len(code)

    def prepare(self, fn: FunctionRecord) -> Prepared:
        """The unpacked code of the function's current version and the virtualenv it runs in.

        Done once per code hash and once per distinct requirements.txt per node
        (CreateFunction/UpdateFunctionCode warm both), as installing requirements may take
        long; a half-done directory is never used.
        """
        code = fn.code
        root = self.cache_dir / fn.code_sha256
        if code is None and not (root / ".ready").exists():
            code = (self.get(fn.arn, with_code=True) or fn).code
            if code is None:
                raise FileNotFoundError("the function has no code")
        if not (root / ".ready").exists():
            assert code is not None
            staging_dir = self.cache_dir / f".{fn.code_sha256}.{uuid.uuid4().hex[:8]}"
            (staging_dir / "code").mkdir(parents=True)
            with zipfile.ZipFile(io.BytesIO(code)) as zf:
                zf.extractall(staging_dir / "code")
            (staging_dir / ".ready").write_text("ok")
            _publish(staging_dir, root)
        requirements = root / "code" / "requirements.txt"
        env = self.environment(requirements.read_bytes() if requirements.is_file() else b"")
        return Prepared(root / "code", env / "bin" / "python", env)

    def environment(self, requirements: bytes) -> Path:
        """The virtualenv for one requirements.txt (by content): its packages, then the runtime's boto3.

        Keyed by the requirements' hash (and the runtime layer), not the code's: an
        UpdateFunctionCode that keeps its requirements reuses the virtualenv without pip.
        """
        runtime = self.runtime_layer()
        key = hashlib.sha256(b"\0".join([requirements, str(runtime).encode(),
                                          sys.version.encode()])).hexdigest()[:32]
        env = self.cache_dir / "envs" / key
        if (env / ".ready").exists():
            return env
        staging_dir = env.with_name(f".{key}.{uuid.uuid4().hex[:8]}")
        staging_dir.parent.mkdir(parents=True, exist_ok=True)
        # --without-pip: ensurepip costs tens of seconds per environment; the server's pip
        # installs into this environment instead (`pip --python`, which runs as its interpreter).
        proc = subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(staging_dir)],
                              capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            shutil.rmtree(staging_dir, ignore_errors=True)
            raise RuntimeError(f"creating the function's virtualenv failed: {proc.stderr.strip()[-500:]}")
        python = staging_dir / "bin" / "python"
        if requirements.strip():
            req_file = staging_dir / "requirements.txt"
            req_file.write_bytes(requirements)
            proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                                   "--disable-pip-version-check", "--no-input", "-r", str(req_file)],
                                  capture_output=True, text=True, timeout=900)
            if proc.returncode != 0:
                shutil.rmtree(staging_dir, ignore_errors=True)
                raise RuntimeError(f"installing requirements.txt failed: {_pip_error(proc.stderr)}")
        site_dir = _site_packages(python)
        # .pth files are processed in name order and their entries appended after site-packages,
        # so the runtime's boto3 comes after every package the function installed itself: a
        # function pinning its own boto3 (or dateutil, urllib3...) gets its own, as on Lambda.
        (site_dir / "zzz-strongroom-runtime.pth").write_text(str(runtime) + "\n")
        (staging_dir / ".ready").write_text("ok")
        _publish(staging_dir, env)
        return env

    def runtime_layer(self) -> Path:
        """A directory holding only the server's boto3 and its dependencies (symlinks).

        Lambda's Python runtime offers boto3 and nothing else of its own; pointing a function
        at the server's whole site-packages would leak SQLAlchemy, strongroom itself and more.
        """
        if self._runtime is not None and self._runtime.exists():
            return self._runtime
        dists = []
        for name in RUNTIME_DISTRIBUTIONS:
            try:
                dists.append(importlib.metadata.distribution(name))
            except importlib.metadata.PackageNotFoundError:  # six, for one, is gone from newer botocore
                continue
        key = hashlib.sha256("\0".join(f"{d.metadata['Name']}=={d.version}@{d.locate_file('')}"
                                        for d in dists).encode()).hexdigest()[:16]
        layer = self.cache_dir / "runtime" / key
        if layer.exists():
            self._runtime = layer
            return layer
        staging_dir = layer.with_name(f".{key}.{uuid.uuid4().hex[:8]}")
        staging_dir.mkdir(parents=True)
        for dist in dists:
            tops = {Path(str(f)).parts[0] for f in dist.files or ()}
            for top in sorted(tops - {"..", "__pycache__", "bin"}):
                source = Path(str(dist.locate_file(top)))
                if source.exists() and not (staging_dir / top).exists():
                    (staging_dir / top).symlink_to(source)
        _publish(staging_dir, layer)
        self._runtime = layer
        return layer


@dataclass(frozen=True, slots=True)
class Prepared:
    """Where a function runs: its unpacked code, and the interpreter of its virtualenv."""

    code: Path
    python: Path
    env: Path


def _publish(staging_dir: Path, final: Path) -> None:
    """Move a finished directory into place; if another thread or process won, keep theirs."""
    try:
        staging_dir.rename(final)
    except OSError:
        shutil.rmtree(staging_dir, ignore_errors=True)


def _site_packages(python: Path) -> Path:
    found = sorted(python.parent.parent.glob("lib/python*/site-packages"))
    if not found:
        raise RuntimeError("the function's virtualenv has no site-packages")
    return found[0]


def _pip_error(stderr: str) -> str:
    """pip's complaint, without its warnings about ignored index locations."""
    lines = [ln for ln in stderr.strip().splitlines() if not ln.startswith("WARNING:")]
    return "\n".join(lines)[-500:]


def code_sha256_b64(hex_digest: str) -> str:
    """Lambda reports CodeSha256 as base64 of the digest."""
    return base64.b64encode(bytes.fromhex(hex_digest)).decode() if hex_digest else ""

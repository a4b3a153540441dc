"""Assembly: build the running service from settings (the only module that wires layers)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette

from strongroom.auth.credentials import CredentialResolver
from strongroom.config import Settings, load_settings
from strongroom.crypto.keyring import RootKeyring
from strongroom.crypto.rootkey import FileRootKey, RootKey, RootKeyError
from strongroom.http.app import Gateway, build_app
from strongroom.services import iam, sts
from strongroom.services.kms import Kms, KmsDeps, run_maintenance
from strongroom.services.kms.keyring import KmsKeyring
from strongroom.services.iam.principals import PolicyCache
from strongroom.services.secretsmanager import SecretsManager
from strongroom.services.secretsmanager.core import Deps
from strongroom.services.secretsmanager.secrets import purge_deleted
from strongroom.storage import Store, open_store
from strongroom.storage.migrate import upgrade

log = logging.getLogger("strongroom")


def load_root_key(settings: Settings) -> RootKey:
    if settings.root_key_source != "file":
        raise RootKeyError(f"unknown root key source {settings.root_key_source!r}")
    assert settings.root_key_path is not None
    return FileRootKey.load(settings.root_key_path)


@dataclass
class Runtime:
    settings: Settings
    store: Store
    root: RootKey
    deps: Deps
    gateway: Gateway
    kms: KmsDeps | None = None


def open_runtime(settings: Settings, *, migrate: bool = True) -> Runtime:
    root = load_root_key(settings)
    store = open_store(settings.database_url)
    if migrate:
        upgrade(store)
    kms_deps = KmsDeps(store=store, root=root)
    # Secrets are sealed under KMS keys; versions sealed before KMS existed still open via the root keyring.
    deps = Deps(store=store, keyring=KmsKeyring(kms_deps, legacy=RootKeyring(root)))
    sm = SecretsManager(deps)
    kms = Kms(kms_deps)
    resolver = CredentialResolver(store, root)

    def ready() -> tuple[bool, str]:
        try:
            with store.read() as tx:
                tx.ping()
        except Exception as exc:  # noqa: BLE001 - readiness reports, never raises
            return False, f"storage unreachable: {type(exc).__name__}"
        return True, "ready"

    gateway = Gateway(services={sm.target_prefix: sm, kms.target_prefix: kms}, resolver=resolver, ready=ready,
                      policies=PolicyCache(store))
    iam_deps = iam.Deps(store=store, root=root, on_key_changed=[resolver.invalidate])
    gateway.query_services.update({"iam": iam.IAM(iam_deps), "sts": sts.STS(iam_deps)})
    return Runtime(settings, store, root, deps, gateway, kms=kms_deps)


async def _purge_loop(rt: Runtime) -> None:
    while True:
        try:
            n = await asyncio.to_thread(purge_deleted, rt.deps)
            if n:
                log.info("purged secrets past their recovery window", extra={"count": n})
            if rt.kms is not None:
                await asyncio.to_thread(run_maintenance, rt.kms)  # KMS key deletion and rotation
        except Exception as exc:  # noqa: BLE001 - a failed pass is retried on the next tick
            log.error("purge failed: %s", type(exc).__name__)
        await asyncio.sleep(rt.settings.purge_interval)


def create_app(rt: Runtime) -> Starlette:
    app = build_app(rt.gateway)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(_purge_loop(rt))
        try:
            yield
        finally:
            task.cancel()
            rt.store.close()

    app.router.lifespan_context = lifespan
    return app


def app_from_env() -> Starlette:
    """Factory for uvicorn workers: settings come from the environment `serve` sets."""
    configure_logging()
    settings = load_settings(os.environ.get("STRONGROOM_DATA_DIR"), os.environ.get("STRONGROOM_DATABASE_URL"))
    return create_app(open_runtime(settings))


class JsonFormatter(logging.Formatter):
    _STD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update({k: v for k, v in vars(record).items() if k not in self._STD})
        return json.dumps(out, default=str)


def configure_logging(level: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("STRONGROOM_LOG_LEVEL", "INFO"))

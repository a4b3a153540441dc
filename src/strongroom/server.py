"""Assembly: build the running service from settings (the only module that wires layers)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from starlette.applications import Starlette

from strongroom.auth.credentials import CredentialResolver
from strongroom.auth.memo import size_decisions
from strongroom.background import BackgroundWork, Job
from strongroom.cache.secrets import SecretCache
from strongroom.config import Settings, load_settings
from strongroom.crypto.keyring import RootKeyring
from strongroom.crypto.rootchain import SEALED_MESSAGE, SealedError
from strongroom.crypto.rootkey import RootKey
from strongroom.http import admin
from strongroom.http.app import Gateway, JsonFirst, build_app
from strongroom.monitoring import Monitoring, attach as attach_monitoring
from strongroom.http.rest import lambda_routes
from strongroom.rotation.dispatch import FunctionInvoker, endpoint_from
from strongroom.rotation.engine import RotationEngine
from strongroom.rotation.functions import FunctionRegistry
from strongroom.rotation.permission import check_invoke_permission
from strongroom.rotation.scheduler import RotationScheduler, settings_from_env
from strongroom.services.functions import Functions
from strongroom.rootkeys.manager import RootKeys
from strongroom.services import iam, sts
from strongroom.services.kms import Kms, KmsDeps, run_maintenance
from strongroom.services.kms.keyring import KmsKeyring
from strongroom.services.kms.keys import KEY_CHANGED
from strongroom.services.iam.core import IAM_CHANGED
from strongroom.services.iam.principals import PolicyCache
from strongroom.services.secretsmanager import SecretsManager
from strongroom.services.secretsmanager.core import Deps
from strongroom.services.secretsmanager.secrets import purge_deleted
from strongroom.storage import Store, open_store
from strongroom.storage.migrate import upgrade
from strongroom.storage.notify import ChangeFeed, open_feed
from strongroom.storage.store import KMS_KEYS_CHANGED, SECRET_CHANGED

log = logging.getLogger("strongroom")


def load_root_key(settings: Settings) -> RootKey:
    """The root key for local commands (config.toml's source, and both keys of a running rekey).

    A passphrase source is unsealed from the file $STRONGROOM_PASSPHRASE_FILE names
    (the passphrase, or one share per line); otherwise it raises SealedError.
    """
    store = open_store(settings.database_url)
    try:
        keys = RootKeys(settings, store)
        keys.load()
        unseal_locally(keys)
        keys.store = None  # nothing more to read; the chain keeps the loaded keys
        return keys.chain
    finally:
        store.close()


def unseal_locally(keys: RootKeys, ask: Callable[[str], str] | None = None) -> None:
    """Unseal a passphrase source for a command run without a server: from the file
    $STRONGROOM_PASSPHRASE_FILE names (the passphrase, or one share per line), else by `ask`ing
    (a prompt) when given; SealedError if the key stays sealed."""
    if not keys.sealed:
        return
    status = keys.status().get("unseal", {})
    shares = status.get("mode") == "shares"
    unseal_file = os.environ.get("STRONGROOM_PASSPHRASE_FILE")
    if unseal_file:
        with open(unseal_file, encoding="utf-8") as f:
            lines = [ln.strip() for ln in f.read().splitlines() if ln.strip()]
    elif ask is not None:
        lines = [ask("Unseal share") for _ in range(int(status.get("threshold", 1)))] if shares else [
            ask("Passphrase")]
    else:
        raise SealedError(SEALED_MESSAGE.replace("run `strongroom unseal`",
                                                 "set STRONGROOM_PASSPHRASE_FILE for local commands"))
    for line in lines if shares else lines[:1]:
        if shares:
            keys.unseal(share=line, resume=False)
        else:
            keys.unseal(passphrase_text=line, resume=False)
    if keys.sealed:
        given = keys.status().get("unseal", {})
        raise SealedError(f"the root key stays sealed: {given.get('progress', 0)} of {given.get('threshold')} "
                          "shares given" if shares else "the root key stays sealed: no passphrase given")


@dataclass
class Runtime:
    settings: Settings
    store: Store
    root: RootKey
    deps: Deps
    gateway: Gateway
    kms: KmsDeps | None = None
    keys: RootKeys | None = None
    feed: ChangeFeed | None = None
    background: BackgroundWork | None = None
    monitoring: Monitoring | None = None  # audit trail, alerts, metrics
    functions: Functions | None = None  # rotation functions (Lambda API)
    rotation: RotationEngine | None = None


def open_runtime(settings: Settings, *, migrate: bool = True) -> Runtime:
    store = open_store(settings.database_url)
    if migrate:
        upgrade(store)
    # Sealed (empty) for a passphrase source until `strongroom unseal`; every component shares the chain.
    keys = RootKeys(settings, store)
    keys.load()
    root = keys.chain
    kms_deps = KmsDeps(store=store, root=root)
    feed = open_feed(store)
    store.feed = feed
    # Secrets are sealed under KMS keys; versions sealed before KMS existed still open via the root keyring.
    keyring = KmsKeyring(kms_deps, legacy=RootKeyring(root), max_data_keys=max(settings.cache_max_secrets, 1))
    cache = SecretCache(settings.cache_max_secrets) if settings.cache_max_secrets else None
    size_decisions(settings.cache_max_secrets)
    deps = Deps(store=store, keyring=keyring, cache=cache, fresh=feed.sync, may_invoke=check_invoke_permission)
    sm = SecretsManager(deps)
    kms = Kms(kms_deps)
    resolver = CredentialResolver(store, root, ttl=settings.cache_ttl)
    policies = PolicyCache(store, ttl=settings.cache_ttl)
    _invalidate_on_change(feed, resolver, policies, kms_deps, keyring, cache)

    monitoring: Monitoring | None = None

    def ready() -> tuple[bool, str]:
        if keys.sealed:
            return False, "sealed"
        if monitoring is not None and not monitoring.audit.alive():
            return False, "audit writer not running"
        try:
            with store.read() as tx:
                tx.ping()
        except Exception as exc:  # noqa: BLE001 - readiness reports, never raises
            return False, f"storage unreachable: {type(exc).__name__}"
        return True, "ready"

    gateway = Gateway(services={sm.target_prefix: sm, kms.target_prefix: kms}, resolver=resolver, ready=ready,
                      policies=policies, sealed=lambda: keys.sealed)
    iam_deps = iam.Deps(store=store, root=root, on_key_changed=[resolver.invalidate])
    gateway.query_services.update({"iam": iam.IAM(iam_deps), "sts": sts.STS(iam_deps)})
    monitoring = attach_monitoring(settings, store, gateway)  # after every service is in place
    jobs = [Job("purge-deleted-secrets", partial(_purge, deps), settings.purge_interval),
            Job("kms-maintenance", partial(run_maintenance, kms_deps), settings.purge_interval)]
    background = BackgroundWork(store, jobs, lease_ttl=settings.lease_seconds)
    registry = FunctionRegistry(store, root, settings.data_dir / "functions")
    invoker = FunctionInvoker(registry, deps, root, endpoint_from(settings.data_dir))
    rotation = RotationEngine(deps, invoker, settings_from_env()[2],
                              audit=monitoring.audit if monitoring is not None else None)
    return Runtime(settings, store, root, deps, gateway, kms=kms_deps, keys=keys, feed=feed,
                   functions=Functions(registry, invoker), rotation=rotation,
                   background=background, monitoring=monitoring)


def _invalidate_on_change(feed: ChangeFeed, resolver: CredentialResolver, policies: PolicyCache,
                          kms: KmsDeps, keyring: KmsKeyring, cache: SecretCache | None) -> None:
    """Caches drop what any node changed: this node's changes at commit, others' through the feed
    (and, for the secrets read path, before any request trusts them: ChangeFeed.sync)."""

    def iam_changed(_account_id: str) -> None:
        resolver.invalidate()
        policies.invalidate()

    def key_changed(key_id: str) -> None:
        kms.cache.invalidate(None if key_id == "*" else key_id)
        keyring.forget_key(key_id)

    feed.subscribe(IAM_CHANGED, iam_changed)
    feed.subscribe(KEY_CHANGED, key_changed)
    feed.subscribe(KMS_KEYS_CHANGED, keyring.forget_key)
    if cache is not None:
        feed.subscribe(SECRET_CHANGED, cache.invalidate)


def _purge(deps: Deps) -> int:
    n = purge_deleted(deps)
    if n:
        log.info("purged secrets past their recovery window", extra={"count": n})
    return n


async def _root_key_loop(keys: RootKeys) -> None:
    """Follow rekeys other processes start or finish; resume one a crash interrupted."""
    await asyncio.to_thread(keys.resume_rekey)
    while True:
        await asyncio.sleep(1.0)
        try:
            await asyncio.to_thread(keys.refresh)
        except Exception as exc:  # noqa: BLE001 - retried in a second; requests keep the keys they have
            log.warning("root key refresh failed: %s", type(exc).__name__)


async def _rotation_loop(engine: RotationEngine) -> None:
    """Run due rotations (docs/rotation.md); every process runs one, leases share the work."""
    interval, concurrency, _ = settings_from_env()
    await RotationScheduler(engine, interval=interval, concurrency=concurrency).run()


def create_app(rt: Runtime, admin_token: str | None = None) -> JsonFirst:
    """The ASGI app; with `admin_token`, also the local admin endpoint (unseal, rekey)."""
    app = build_app(rt.gateway)
    if rt.functions is not None:
        app.router.routes.extend(lambda_routes(rt.gateway, rt.functions))
    if rt.monitoring is not None:
        app.router.routes.extend(rt.monitoring.routes())
    if admin_token and rt.keys is not None:
        app.router.routes.extend(admin.admin_routes(rt.keys, admin_token,
                                                    audit=rt.monitoring.audit if rt.monitoring else None))

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if rt.feed is not None:
            await asyncio.to_thread(rt.feed.start)
        if rt.monitoring is not None:
            await rt.monitoring.start()
        task = asyncio.create_task(rt.background.run()) if rt.background is not None else None
        rotation_task = asyncio.create_task(_rotation_loop(rt.rotation)) if rt.rotation is not None else None
        keys_task = asyncio.create_task(_root_key_loop(rt.keys)) if rt.keys is not None else None
        try:
            yield
        finally:
            if rotation_task is not None:
                rotation_task.cancel()
            if keys_task is not None:
                keys_task.cancel()
                await asyncio.to_thread(rt.keys.stop)  # type: ignore[union-attr]
            if admin_token:  # here, not after uvicorn.run: uvicorn re-raises SIGTERM once shut down
                admin.withdraw(rt.settings.data_dir, admin_token)
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task  # releases the background lease for the next node
            if rt.monitoring is not None:
                await rt.monitoring.stop()
            if rt.feed is not None:
                await asyncio.to_thread(rt.feed.close)
            rt.store.close()

    app.router.lifespan_context = lifespan
    return app


def app_from_env() -> JsonFirst:
    """Factory for uvicorn workers: settings come from the environment `serve` sets."""
    configure_logging()
    settings = load_settings(os.environ.get("STRONGROOM_DATA_DIR"), os.environ.get("STRONGROOM_DATABASE_URL"))
    return create_app(open_runtime(settings), os.environ.get("STRONGROOM_ADMIN_TOKEN"))


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

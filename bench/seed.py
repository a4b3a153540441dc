"""Seed many secrets fast: drive strongroom's own service layer in-process, no HTTP.

    .venv/bin/python bench/seed.py --data-dir DIR --access-key AKIA... --count 100000

Creating 100,000 secrets through the API takes a long time (every CreateSecret is a
signed request, an authorization, a durable write and an audit record). This module
opens the data directory exactly as `strongroom serve` does (`strongroom.server.open_runtime`),
resolves the administrator that `strongroom init` created from its access key, and calls
the Secrets Manager service object (`SecretsManager.call("CreateSecret", ctx, ...)`) with a
RequestContext for that principal, so every secret is created by the same code, sealed
under the same KMS key and stored in the same rows as through the API.

Two shortcuts make it fast, and neither changes what is stored:

- while seeding, its own SQLite connections run with `PRAGMA synchronous=OFF` (the server,
  started afterwards, opens its own connections with its own settings; a final checkpoint
  makes everything durable before the server starts);
- no audit records or metrics: those belong to the gateway, which is not in the path.

Run it only while no server uses the data directory. Names and values are the same as the
harness's HTTP seeding (`bench/secret-00000` ..., values from random.Random(7)).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import init_work  # noqa: E402


def names_for(count: int) -> list[str]:
    return [f"bench/secret-{i:05d}" for i in range(count)]


def values_for(count: int, size: int) -> list[str]:
    import string
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits
    return ["".join(rng.choices(alphabet, k=size)) for _ in range(count)]


def tags_for(i: int) -> list[dict[str, str]]:
    """Every secret carries a tag; one secret in ten also carries the key the tag-key filter looks for."""
    tags = [{"Key": "bench", "Value": "yes"}]
    if i % 10 == 0:
        tags.append({"Key": "bench-tenth", "Value": str(i)})
    return tags


def seed(data_dir: Path, access_key: str, count: int, value_size: int = 64, *, start: int = 0,
         tags: bool = True, deadline_s: float = 3600.0, progress: bool = True) -> dict[str, Any]:
    """Create secrets start..count-1 in the data directory; returns timings."""
    from sqlalchemy import event

    from strongroom.config import load_settings
    from strongroom.context import RequestContext
    from strongroom.server import open_runtime

    t0 = time.perf_counter()
    settings = load_settings(str(data_dir))
    rt = open_runtime(settings)
    engine = rt.store.engine
    fast = False
    if rt.store.is_sqlite:
        @event.listens_for(engine, "connect")
        def _fast(dbapi_conn: Any, _record: Any) -> None:  # runs after the store's own connect hook
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA synchronous=OFF")
            cur.close()
        engine.dispose()  # reconnect: every pooled connection now runs the hook above
        fast = True
    try:
        cred = rt.gateway.resolver.resolve(access_key)
        identity, session = rt.gateway.policies.get(cred.principal) if rt.gateway.policies else ((), None)
        sm = rt.gateway.services["secretsmanager"]
        names = names_for(count)
        values = values_for(count, value_size)
        opened = time.perf_counter() - t0
        t1 = time.perf_counter()
        last = t1
        done = 0
        for i in range(start, count):
            if time.perf_counter() - t0 > deadline_s:
                raise TimeoutError(f"seeding stopped after {deadline_s:.0f} s at {i} secrets")
            ctx = RequestContext(principal=cred.principal, identity_policies=identity, session_policies=session,
                                 region=settings.region, request_id=str(uuid.uuid4()), user_agent="strongroom-bench/seed")
            req: dict[str, Any] = {"Name": names[i], "SecretString": values[i]}
            if tags:
                req["Tags"] = tags_for(i)
            sm.call("CreateSecret", ctx, req)
            done += 1
            if progress and time.perf_counter() - last > 10:
                last = time.perf_counter()
                rate = done / (last - t1)
                print(f"[seed] {i + 1:,}/{count:,} ({rate:,.0f}/s, ~{(count - i - 1) / rate:,.0f} s left)",
                      file=sys.stderr, flush=True)
        created = time.perf_counter() - t1
        if rt.store.is_sqlite:
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        if rt.feed is not None:
            rt.feed.close()
        rt.store.close()
    return {"created": done, "open_s": opened, "create_s": created,
            "per_second": done / created if created > 0 else 0.0, "synchronous_off": fast,
            "total_s": time.perf_counter() - t0}


def mark_read_today(data_dir: Path) -> dict[str, Any]:
    """Record today as every secret's and version's last access date, as a first read would.

    strongroom records LastAccessedDate (day granularity) on a secret's first read of the day,
    in a durable write transaction. A measurement that should see steady-state reads must
    not pay that write on every first read: with 1,000 secrets the harness reads each one
    once; with 100,000, this sets the same two columns in one transaction through the
    store (strongroom.storage), which is what those first reads would leave behind.
    """
    from sqlalchemy import update

    from strongroom.config import load_settings
    from strongroom.storage import open_store
    from strongroom.storage import tables as t

    t0 = time.perf_counter()
    now = time.time()
    try:
        from strongroom.services.secretsmanager.core import day_of
        day = day_of(now)
    except ImportError:
        day = now - now % 86400.0
    store = open_store(load_settings(str(data_dir)).database_url)
    try:
        # A cached data directory may predate a schema change: migrate it here, so that the
        # server's measured start-up does not include a one-time migration.
        from strongroom.storage.migrate import upgrade
        upgrade(store)
        with store.write() as tx:
            a = tx.conn.execute(update(t.secrets).values(last_accessed_date=day)).rowcount
            b = tx.conn.execute(update(t.secret_versions).values(last_accessed_date=day)).rowcount
    finally:
        store.close()
    return {"secrets": a, "versions": b, "day": day, "seconds": time.perf_counter() - t0}


def prepared(work: Path, count: int, value_size: int, cache: Path | None, deadline_s: float = 3600.0,
             log: Any = print) -> dict[str, Any]:
    """A data directory in work/ holding `count` seeded secrets; from the cache when it has them.

    With a cache directory, the first call seeds into it (slow for 100,000: ~10 to 20 minutes)
    and later calls copy it (seconds). Delete the cache directory to seed afresh. The server
    started on the copy migrates the schema first if it has changed since.
    """
    import shutil

    info: dict[str, Any] = {"count": count, "value_size": value_size}
    src = cache / f"secrets-{count}-v{value_size}" if cache is not None else None
    if src is not None and (src / "seed.json").exists():
        info["from_cache"] = str(src)
        t0 = time.perf_counter()
        shutil.copytree(src / "data", work / "data")
        shutil.copytree(src / "aws", work / "aws")
        info["copy_s"] = time.perf_counter() - t0
        info["seeded"] = json.loads((src / "seed.json").read_text())
    else:
        target = src if src is not None else work
        if src is not None and src.exists():
            shutil.rmtree(src)  # an unfinished seeding
        target.mkdir(parents=True, exist_ok=True)
        _, creds = init_work(target)
        log(f"seeding {count:,} secrets in-process into {target} (no cache yet)")
        info["seeded"] = seed(target / "data", creds["access_key"], count, value_size, deadline_s=deadline_s)
        if src is not None:
            (src / "seed.json").write_text(json.dumps(info["seeded"]))
            shutil.copytree(src / "data", work / "data")
            shutil.copytree(src / "aws", work / "aws")
            info["from_cache"] = None
    env, creds = init_work(work)
    info["mark_read_today"] = mark_read_today(work / "data")
    info["env"], info["credentials"] = env, creds
    return info


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True, type=Path)
    p.add_argument("--access-key", required=True, help="the administrator's access key id (from `strongroom init`)")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--start", type=int, default=0, help="skip the first START names (already seeded)")
    p.add_argument("--value-size", type=int, default=64)
    p.add_argument("--no-tags", action="store_true")
    p.add_argument("--deadline", type=float, default=3600.0, help="give up after this many seconds")
    a = p.parse_args(argv)
    out = seed(a.data_dir, a.access_key, a.count, a.value_size, start=a.start, tags=not a.no_tags,
               deadline_s=a.deadline)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Where a strongroom request spends its time, layer by layer, in one process.

    .venv/bin/python bench/profile_server.py                 # GetSecretValue
    .venv/bin/python bench/profile_server.py --op put        # PutSecretValue

The server is built exactly as `strongroom serve` builds it (strongroom.server.open_runtime
and create_app on a data directory made by `strongroom init`), then measured three ways,
pinned to one core:

  asgi      the Starlette app, inside its lifespan (audit writer running), driven in-process
            by C concurrent tasks on uvloop, as served and with parts of each call's audit work
            switched off (the INSERT, the queue, the whole observer), then by one task:
            everything but uvicorn and sockets;
  pipeline  the steps of http.app's handler called synchronously in one thread
            (SigV4 authentication, JSON decode, model validation, the service
            operation, response encoding): no event loop, no thread hops, no audit;
  cprofile  the pipeline under cProfile: the top functions, per request.

Comparing these with the server CPU per request that bench/getsecretvalue.py measures
over TCP attributes the cost to uvicorn+sockets, Starlette+anyio, and the operation.
Nothing under src/ is modified: this imports the package as the server does (the variants
patch attributes of the running objects for the length of their runs).
"""

from __future__ import annotations

import argparse
import asyncio
import configparser
import cProfile
import io
import json
import os
import pstats
import random
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sigv4sign import Signer, amz_date_now  # noqa: E402

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
HOST = "127.0.0.1:7979"


def signed(signer: Signer, target: str, payload: dict[str, Any]) -> tuple[list[tuple[bytes, bytes]], bytes]:
    body = json.dumps(payload).encode()
    headers = signer.signed_headers(HOST, target, body, amz_date_now())
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    raw += [(b"user-agent", b"strongroom-bench/1"), (b"content-length", str(len(body)).encode())]
    return raw, body


def scope_of(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": "/", "raw_path": b"/", "query_string": b"",
            "root_path": "", "headers": headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 7979)}


async def call_asgi(app: Any, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[int, bytes]:
    sent = False
    status, chunks = 0, []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # nobody listens for a disconnect on this path
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope_of(headers), receive, send)
    return status, b"".join(chunks)


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="strongroom-profile-"))
        env = {**os.environ, "STRONGROOM_DATA_DIR": str(self.work / "data"),
               "AWS_CONFIG_FILE": str(self.work / "aws" / "config"),
               "AWS_SHARED_CREDENTIALS_FILE": str(self.work / "aws" / "credentials")}
        env.pop("STRONGROOM_DATABASE_URL", None)
        done = subprocess.run([sys.executable, "-m", "strongroom.cli.main", "init", "--endpoint-url",
                               f"http://{HOST}"], env=env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            shutil.rmtree(self.work, ignore_errors=True)
            raise SystemExit(f"strongroom init failed:\n{done.stderr[-2000:]}")
        creds = configparser.ConfigParser()
        creds.read(self.work / "aws" / "credentials")
        conf = configparser.ConfigParser()
        conf.read(self.work / "aws" / "config")
        self.signer = Signer(creds["strongroom"]["aws_access_key_id"], creds["strongroom"]["aws_secret_access_key"],
                             conf["profile strongroom"]["region"])

        import logging

        from strongroom.config import load_settings
        from strongroom.server import create_app, open_runtime

        logging.getLogger().setLevel(logging.WARNING)  # as the benchmark runs the server
        self.rt = open_runtime(load_settings(self.work / "data"))
        self.app = create_app(self.rt)
        self.names = [f"bench/secret-{i:05d}" for i in range(args.secrets)]
        self.rng = random.Random(3)

    def close(self) -> None:
        self.rt.store.close()
        shutil.rmtree(self.work, ignore_errors=True)

    def value(self) -> str:
        return "".join(self.rng.choices(string.ascii_letters + string.digits, k=self.args.value_size))

    def request(self, op: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
        name = self.names[self.rng.randrange(len(self.names))]
        if op == "put":
            return signed(self.signer, "secretsmanager.PutSecretValue",
                          {"SecretId": name, "SecretString": self.value(), "ClientRequestToken": str(uuid.uuid4())})
        return signed(self.signer, "secretsmanager.GetSecretValue", {"SecretId": name})

    async def seed(self) -> None:
        for name in self.names:
            st, body = await call_asgi(self.app, *signed(self.signer, "secretsmanager.CreateSecret",
                                                         {"Name": name, "SecretString": self.value()}))
            assert st == 200, body
        for name in self.names:  # prime LastAccessedDate, as the benchmark does
            st, body = await call_asgi(self.app, *signed(self.signer, "secretsmanager.GetSecretValue",
                                                         {"SecretId": name}))
            assert st == 200, body

    async def in_lifespan(self, op: str, seconds: float, conns: int) -> dict[str, Any]:
        """Seed, prime and the ASGI runs, inside the app's lifespan (audit writer, background tasks)."""
        out: dict[str, Any] = {}
        async with self.app.router.lifespan_context(self.app):
            t0 = time.perf_counter()
            await self.seed()
            out["seed_seconds"] = time.perf_counter() - t0
            print(f"seeded and primed {self.args.secrets} secrets in {out['seed_seconds']:.1f} s", file=sys.stderr)
            runs: dict[str, list[dict[str, Any]]] = {}
            for _ in range(self.args.rounds):  # alternate, so load on the machine hits every variant alike
                for name, variant in self.variants().items():
                    with variant():
                        runs.setdefault(name, []).append(await self.asgi(op, seconds, conns))
            for name, got in runs.items():
                out[f"asgi_{conns}{name}"] = median_run(got)
            out["asgi_1"] = await self.asgi(op, seconds, 1)
        return out

    def variants(self) -> dict[str, Any]:
        """The server as built, then with parts of each call's audit work switched off (the
        objects of the running server patched for the run, put back after): what each part costs.

          ""             as served
          _no_commit     records built, queued and chained, the writer's INSERT skipped
          _no_queue      records built, never handed to the writer
          _no_observer   no record, no metrics
        """
        from contextlib import contextmanager, nullcontext

        from strongroom.audit.writer import AuditWriter

        gateway = self.rt.gateway
        observer = getattr(gateway, "observer", None)
        audit = getattr(observer, "audit", None)

        @contextmanager
        def patched(obj: Any, name: str, value: Any) -> Any:
            before = getattr(obj, name)
            setattr(obj, name, value)
            try:
                yield
            finally:
                setattr(obj, name, before)

        def no_commit(writer: AuditWriter, items: list[Any]) -> None:
            for n, item in enumerate(items, 1):
                item.seq = n

        async def no_queue(event: Any) -> bool:
            return True

        out: dict[str, Any] = {"": nullcontext}
        if audit is not None:
            out["_no_commit"] = lambda: patched(AuditWriter, "_commit", no_commit)
            out["_no_queue"] = lambda: patched(audit, "append", no_queue)
        if observer is not None:
            out["_no_observer"] = lambda: patched(gateway, "observer", None)
        return out

    async def asgi(self, op: str, seconds: float, conns: int) -> dict[str, Any]:
        pool = [self.request(op) for _ in range(int(self.args.pool))]
        it = iter(pool)
        deadline = time.perf_counter() + seconds
        done, errors = 0, 0

        async def worker() -> None:
            nonlocal done, errors
            while time.perf_counter() < deadline:
                req = next(it, None) or self.request(op)
                st, _ = await call_asgi(self.app, *req)
                done += 1
                errors += st != 200

        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conns)))
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        return {"requests": done, "errors": errors, "rps": done / wall, "cpu_us_per_request": cpu / done * 1e6}

    def pipeline(self, op: str, n: int, profile: bool | str) -> dict[str, Any]:
        """The steps of strongroom.http.app's handler, synchronously, timed stage by stage."""
        reqs = [self.request(op) for _ in range(n)]
        prof = cProfile.Profile() if profile is True else None
        spy = PySpy(self.args.spy_rate) if profile == "py-spy" else None
        statements: dict[str, int] = {}
        listener = None
        if profile is False:  # count the SQL each request sends (only on the unprofiled pass)
            from sqlalchemy import event

            def listener(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
                key = " ".join(statement.split())
                key = key if len(key) <= 150 else key[:147] + "..."
                statements[key] = statements.get(key, 0) + 1
            event.listen(self.rt.store.engine, "before_cursor_execute", listener)
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        if prof:
            prof.enable()
        stages = self._loop(reqs)
        if prof:
            prof.disable()
        cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
        if listener is not None:
            from sqlalchemy import event

            event.remove(self.rt.store.engine, "before_cursor_execute", listener)
        spied = spy.finish() if spy else None
        out: dict[str, Any] = {"requests": n, "wall_us_per_request": wall / n * 1e6, "cpu_us_per_request": cpu / n * 1e6,
                               "stages_us": {k: v / n * 1e6 for k, v in stages.items()}}
        if statements:
            out["sql_per_request"] = sorted(((k, round(v / n, 2)) for k, v in statements.items()),
                                            key=lambda kv: -kv[1])
        if prof:
            out["cprofile"] = top_functions(prof, n)
        if spied:
            out["py_spy"] = spied
        return out

    def _loop(self, reqs: list[tuple[list[tuple[bytes, bytes]], bytes]]) -> dict[str, float]:
        import orjson

        from strongroom.http import app as http_app
        from strongroom.http.exchange import Exchange
        from strongroom.http.shapes import parse_input, service_model, to_wire

        gateway = self.rt.gateway
        authenticate = getattr(http_app, "_authenticate")
        stages = {"authenticate (SigV4, credentials)": 0.0, "decode + validate (orjson, http.shapes)": 0.0,
                  "service.call": 0.0, "encode (to_wire, orjson)": 0.0}
        keys = list(stages)
        pc = time.thread_time  # CPU time of this thread: other load on the machine does not inflate it
        for headers, body in reqs:
            ex = Exchange.begin(scope_of(headers))
            prefix, _, op_name = (ex.header or {}).get("x-amz-target", "").partition(".")
            service = gateway.services[prefix]
            t0 = pc()
            ctx = authenticate(gateway, ex, ex.wire(body), service)
            t1 = pc()
            params = parse_input(service_model(service.model_name).operation_model(op_name), orjson.loads(body))
            t2 = pc()
            result = service.call(op_name, ctx, params)
            t3 = pc()
            orjson.dumps(to_wire(result))
            t4 = pc()
            stages[keys[0]] += t1 - t0
            stages[keys[1]] += t2 - t1
            stages[keys[2]] += t3 - t2
            stages[keys[3]] += t4 - t3
        return stages


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median CPU per request, with every run's figure alongside."""
    ordered = sorted(runs, key=lambda r: r["cpu_us_per_request"])
    out = dict(ordered[len(ordered) // 2])
    out["rounds_cpu_us_per_request"] = [round(r["cpu_us_per_request"]) for r in runs]
    out["rounds_rps"] = [round(r["rps"]) for r in runs]
    return out


class PySpy:
    """py-spy sampling this very process (one thread runs the pipeline: proportions are exact enough)."""

    def __init__(self, rate: int):
        exe = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
        if exe is None:
            raise SystemExit("needs py-spy: .venv/bin/pip install py-spy (or pass --no-py-spy)")
        self.out = Path(tempfile.mkstemp(prefix="strongroom-spy-", suffix=".txt")[1])
        cpus = os.sched_getaffinity(0)
        others = set(range(os.cpu_count() or 1)) - cpus
        self.proc = subprocess.Popen([exe, "record", "--pid", str(os.getpid()), "--rate", str(rate), "--format", "raw",
                                      "--output", str(self.out), "--duration", "600"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     preexec_fn=(lambda: os.sched_setaffinity(0, others)) if others else None)
        time.sleep(1.5)  # let it attach

    def finish(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        try:
            text = self.out.read_text()
        finally:
            self.out.unlink(missing_ok=True)
        if not text.strip():
            return {"error": err.decode(errors="replace")[-400:]}
        return sampled(text)


CATEGORIES = [  # first match of the leaf frame's file wins
    ("sqlalchemy/engine/default.py:DefaultDialect.do_execute", "sqlite3 (C): executing statements"),
    ("sqlalchemy/engine/default.py:DefaultDialect.do_commit", "sqlite3 (C): commit"),
    ("sqlalchemy/engine/cursor.py:CursorFetchStrategy.fetch", "sqlite3 (C): fetching rows"),
    ("sqlalchemy/sql/", "SQLAlchemy: building/compiling statements, cache keys"),
    ("sqlalchemy/engine/", "SQLAlchemy: connection, execution, results"),
    ("sqlalchemy/pool/", "SQLAlchemy: connection pool"),
    ("sqlalchemy/", "SQLAlchemy: other"),
    ("strongroom/storage/", "strongroom.storage (records, queries)"),
    ("strongroom/auth/", "strongroom.auth (SigV4 parse/verify, credentials)"),
    ("strongroom/crypto/", "strongroom.crypto (AES-GCM, envelope, blob parsing)"),
    ("cryptography/", "cryptography (C)"),
    ("strongroom/services/kms/", "strongroom.services.kms"),
    ("strongroom/services/", "strongroom.services.secretsmanager"),
    ("strongroom/http/", "strongroom.http (shapes, handler)"),
    ("botocore/", "botocore (model)"),
    ("starlette/", "starlette"),
    ("json/", "json"),
    ("hashlib", "hashing"),
    ("hmac", "hashing"),
    ("_strptime", "datetime parsing (strptime)"),
    ("datetime", "datetime"),
    ("uuid", "uuid"),
    ("contextlib", "contextlib"),
    ("threading", "threading/locks"),
    ("", "other"),
]


def sampled(text: str, top: int = 30) -> dict[str, Any]:
    self_c: dict[str, int] = {}
    incl_c: dict[str, int] = {}
    cat_c: dict[str, int] = {}
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [short_frame(f) for f in stack.split(";") if " (" in f]
        # only the pipeline: the loop in this file, not py-spy's attach window or other code
        if not any("profile_server.py:Bench._loop" in f for f in frames):
            continue
        frames = frames[next(i for i, f in enumerate(frames) if "Bench._loop" in f) + 1:]
        n = int(count)
        total += n
        leaf = frames[-1] if frames else "profile_server.py:Bench._loop"
        self_c[leaf] = self_c.get(leaf, 0) + n
        for f in set(frames):
            incl_c[f] = incl_c.get(f, 0) + n
        cat = next(c for prefix, c in CATEGORIES if prefix in leaf)
        cat_c[cat] = cat_c.get(cat, 0) + n
    if not total:
        return {"samples": 0}
    pct = lambda c: [(k, round(100 * v / total, 1)) for k, v in sorted(c.items(), key=lambda kv: -kv[1])]  # noqa: E731
    return {"samples": total, "self": pct(self_c)[:top], "categories": pct(cat_c),
            "inclusive_strongroom": [r for r in pct(incl_c) if r[0].startswith("strongroom/")][:top],
            "inclusive_all": pct(incl_c)[:top * 2]}


def short_frame(frame: str) -> str:
    name, _, where = frame.partition(" (")
    file = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/src/", "lib/python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{file}:{name}"


def top_functions(prof: cProfile.Profile, n: int, top: int = 30) -> dict[str, list[tuple[str, float, float]]]:
    """(function, µs per request, calls per request), by own time and by cumulative time."""
    stats = pstats.Stats(prof, stream=io.StringIO())
    rows = []
    for (file, line, func), (cc, nc, tt, ct, _) in stats.stats.items():  # type: ignore[attr-defined]
        short = file
        for marker in ("site-packages/", "/src/", "lib/python3.11/"):
            if marker in short:
                short = short.split(marker, 1)[1]
                break
        rows.append((f"{short}:{func}", tt / n * 1e6, ct / n * 1e6, nc / n))
    by_self = sorted(rows, key=lambda r: -r[1])[:top]
    ours = sorted((r for r in rows if r[0].startswith("strongroom/")), key=lambda r: -r[2])[:top]
    by_cum = sorted(rows, key=lambda r: -r[2])[:top]
    fmt = lambda rs, i: [(r[0], round(r[i], 1), round(r[3], 2)) for r in rs]  # noqa: E731
    return {"self": fmt(by_self, 1), "cumulative_strongroom": fmt(ours, 2), "cumulative_all": fmt(by_cum, 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--op", choices=["get", "put"], default="get")
    p.add_argument("--secrets", type=int, default=1000)
    p.add_argument("--requests", type=int, default=3000, help="requests through the synchronous pipeline")
    p.add_argument("--seconds", type=float, default=5.0, help="seconds of in-process ASGI load")
    p.add_argument("--connections", type=int, default=16, help="concurrent in-process ASGI requests")
    p.add_argument("--pool", type=int, default=20000, help="pre-signed requests for the ASGI run")
    p.add_argument("--rounds", type=int, default=3,
                   help="ASGI runs of each variant (as served, parts of the audit work off), alternating; "
                        "medians are reported")
    p.add_argument("--value-size", type=int, default=64)
    p.add_argument("--core", type=int, default=0, help="core to pin to (-1: do not pin)")
    p.add_argument("--spy-rate", type=int, default=500, help="py-spy samples per second")
    p.add_argument("--no-py-spy", action="store_true", help="skip the py-spy sampled pipeline")
    args = p.parse_args(argv)
    if args.core >= 0 and args.core in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {args.core})
    try:
        import uvloop
        run = uvloop.run
    except ImportError:
        run = asyncio.run
    b = Bench(args)
    try:
        asgi = run(b.in_lifespan(args.op, args.seconds, args.connections))
        plain = b.pipeline(args.op, args.requests, profile=False)
        spy = None if args.no_py_spy else b.pipeline(args.op, args.requests, profile="py-spy")
        prof = b.pipeline(args.op, args.requests, profile=True)
    finally:
        b.close()
    report = {"op": args.op, "asgi": asgi, "pipeline": plain, "pipeline_py_spy": spy, "pipeline_cprofile": prof,
              "config": vars(args)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{time.strftime('%Y%m%dT%H%M%S')}-profile-inprocess-{args.op}.json"
    out.write_text(json.dumps(report, indent=2))
    c = args.connections
    for key, label in ((f"asgi_{c}", f"{c} concurrent"), ("asgi_1", "1 at a time"),
                       (f"asgi_{c}_no_commit", f"{c} concurrent, audit records queued and chained, INSERT skipped"),
                       (f"asgi_{c}_no_queue", f"{c} concurrent, audit records built, not queued"),
                       (f"asgi_{c}_no_observer", f"{c} concurrent, observer off (no audit record, no metrics)")):
        if key in asgi:
            a = asgi[key]
            rounds = f" (rounds: {a['rounds_cpu_us_per_request']} µs)" if "rounds_cpu_us_per_request" in a else ""
            print(f"in-process ASGI, {label}: {a['rps']:,.0f} req/s, {a['cpu_us_per_request']:,.0f} µs CPU/request "
                  f"(all threads){rounds}, errors {a['errors']}")
    print(f"synchronous pipeline: {plain['cpu_us_per_request']:,.0f} µs CPU/request "
          f"({1e6 / plain['cpu_us_per_request']:,.0f} req/s on one core; wall {plain['wall_us_per_request']:,.0f} µs)")
    for k, v in plain["stages_us"].items():
        print(f"  {v:8.1f} µs  {k}")
    sql = plain.get("sql_per_request", [])
    print(f"\nSQL statements per request: {sum(v for _, v in sql):.2f} (cursor executions; BEGIN/COMMIT excluded)")
    for k, v in sql:
        print(f"  {v:5.2f}  {k}")
    if spy and "py_spy" in spy and spy["py_spy"].get("samples"):
        ps = spy["py_spy"]
        cpu_us = plain["cpu_us_per_request"]
        print(f"\npy-spy over the pipeline ({ps['samples']} samples); shares scaled to {cpu_us:,.0f} µs CPU/request")
        print("  by category of the innermost frame:")
        for k, v in ps["categories"]:
            print(f"  {v:5.1f}%  {v * cpu_us / 100:7.0f} µs  {k}")
        print("  strongroom functions, inclusive:")
        for k, v in ps["inclusive_strongroom"][:25]:
            print(f"  {v:5.1f}%  {v * cpu_us / 100:7.0f} µs  {k}")
        print("  own time (innermost Python frame; C calls count to their caller):")
        for k, v in ps["self"][:20]:
            print(f"  {v:5.1f}%  {v * cpu_us / 100:7.0f} µs  {k}")
    elif spy:
        print(f"py-spy failed: {spy.get('py_spy')}")
    cp = prof["cprofile"]
    print(f"\ncProfile (inflates call-heavy code; {prof['cpu_us_per_request']:,.0f} µs CPU/request under the profiler)")
    print("  top own time, µs/request, calls/request:")
    for f, us, calls in cp["self"][:25]:
        print(f"  {us:8.1f}  {calls:6.2f}  {f}")
    print("  strongroom functions by cumulative time, µs/request, calls/request:")
    for f, us, calls in cp["cumulative_strongroom"][:30]:
        print(f"  {us:8.1f}  {calls:6.2f}  {f}")
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The load generator: a separate process driving one server over raw HTTP/1.1 keep-alive sockets.

Run by the harness, never by hand: it reads one JSON job on stdin and writes progress
lines ("phase NAME") and finally "result {json}" on stdout. asyncio (uvloop when present)
with one Protocol per connection keeps the per-request cost of the generator to a few
microseconds; signatures are computed before the measured window (pool sized from the
warm-up rate), so the measured window is spent writing bytes and reading responses.

`python bench/loadgen.py --trivial-server PORT` serves a fixed response to every request
and is the yardstick for the generator's own ceiling.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import string
import sys
import time
import uuid
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sigv4sign import Signer, amz_date_now, verify_against_botocore  # noqa: E402

try:
    import uvloop
except ImportError:  # pragma: no cover - plain asyncio still works, a little slower
    uvloop = None

MAX_CONSECUTIVE_FAILURES = 50


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class ResponseParser:
    """Incremental HTTP/1.1 response framing: Content-Length or chunked."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> None:
        self.buf += data

    def pop(self) -> tuple[int, bytes, bool] | None:
        """(status, body, close?) of the first complete response, or None."""
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(buf[:end]).lower()
        status = int(head[9:12])
        start = end + 4
        close = b"\r\nconnection: close" in head
        cl = head.find(b"\r\ncontent-length:")
        if cl >= 0:
            eol = head.find(b"\r\n", cl + 2)
            length = int(head[cl + 17: eol if eol >= 0 else len(head)])
            if len(buf) < start + length:
                return None
            body = bytes(buf[start:start + length])
            del buf[:start + length]
            return status, body, close
        if b"\r\ntransfer-encoding: chunked" in head:
            pos, body_parts = start, []
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
                if len(buf) < eol + 2 + size + 2:
                    return None
                if size == 0:
                    trailer_end = buf.find(b"\r\n\r\n", eol)
                    if trailer_end < 0 and bytes(buf[eol:eol + 4]) != b"\r\n\r\n":
                        return None
                    total = eol + 4 if bytes(buf[eol:eol + 4]) == b"\r\n\r\n" else trailer_end + 4
                    del buf[:total]
                    return status, b"".join(body_parts), close
                body_parts.append(bytes(buf[eol + 2:eol + 2 + size]))
                pos = eol + 2 + size + 2
        if status in (204, 304) or 100 <= status < 200:
            del buf[:start]
            return status, b"", close
        return None  # body delimited by close: not supported for keep-alive measurement


class UnparsedResponse(Exception):
    pass


class Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = ResponseParser()
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.transport: asyncio.Transport | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed(data)
        if self.waiter is not None and not self.waiter.done():
            try:
                got = self.parser.pop()
            except ValueError as exc:  # a response we cannot frame: count it, drop the connection
                self.waiter.set_exception(UnparsedResponse(str(exc)))
                if self.transport is not None:
                    self.transport.close()
                return
            if got is not None:
                self.waiter.set_result(got)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))

    async def request(self, raw: bytes) -> tuple[int, bytes, bool]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter


class Job:
    def __init__(self, cfg: dict[str, Any]):
        self.cfg = cfg
        self.host = f"{cfg['host']}:{cfg['port']}"
        cred = cfg["credentials"]
        self.signer = Signer(cred["access_key"], cred["secret_key"], cred["region"])
        self.op = cfg["op"]
        self.target = {"get": "secretsmanager.GetSecretValue", "put": "secretsmanager.PutSecretValue",
                       "trivial": "secretsmanager.GetSecretValue",
                       "list": "secretsmanager.ListSecrets", "list-name": "secretsmanager.ListSecrets",
                       "list-tag": "secretsmanager.ListSecrets"}[self.op]
        # ListSecrets walks pages: each request depends on the previous response (its NextToken),
        # so those requests are signed as they are sent (a few µs each), never pooled.
        self.paged = self.op.startswith("list")
        self.max_results = int(cfg.get("max_results", 100))
        self.tag_key = cfg.get("tag_key", "bench-tenth")
        # A sweep reads every name exactly once, in order, then stops: the "full read pass".
        self.sweep = bool(cfg.get("sweep", False))
        self.names: list[str] = cfg["secrets"]
        self.rng = random.Random(cfg.get("seed", 1))
        self.value_size = int(cfg.get("value_size", 64))
        self.pool: list[bytes] = []
        self.next = 0
        self.signed_in_window = 0
        self.amz_date = amz_date_now()

    def body(self) -> bytes:
        name = self.names[self.rng.randrange(len(self.names))]
        if self.op == "put":
            value = "".join(self.rng.choices(string.ascii_letters + string.digits, k=self.value_size))
            return json.dumps({"SecretId": name, "SecretString": value,
                               "ClientRequestToken": str(uuid.uuid4())}).encode()
        return json.dumps({"SecretId": name}).encode()

    def sign_one(self) -> bytes:
        return self.signer.raw_request(self.host, self.target, self.body(), self.amz_date)

    def list_body(self, token: str | None, walk: dict[str, Any]) -> bytes:
        """One ListSecrets page: unfiltered, a name prefix (about 100 matches) or a tag key."""
        req: dict[str, Any] = {"MaxResults": self.max_results}
        if self.op == "list-name":
            if "prefix" not in walk:
                walk["prefix"] = self.names[self.rng.randrange(len(self.names))][:-2]
            req["Filters"] = [{"Key": "name", "Values": [walk["prefix"]]}]
        elif self.op == "list-tag":
            req["Filters"] = [{"Key": "tag-key", "Values": [self.tag_key]}]
        if token:
            req["NextToken"] = token
        return json.dumps(req).encode()

    def sign_list(self, token: str | None, walk: dict[str, Any]) -> bytes:
        return self.signer.raw_request(self.host, self.target, self.list_body(token, walk), amz_date_now())

    def take_sweep(self) -> bytes | None:
        i = self.next
        if i >= len(self.names):
            return None
        self.next = i + 1
        body = json.dumps({"SecretId": self.names[i]}).encode()
        return self.signer.raw_request(self.host, self.target, body, amz_date_now())

    def fill(self, n: int) -> float:
        """Sign a fresh pool of n distinct requests; returns the seconds it took."""
        t0 = time.perf_counter()
        self.amz_date = amz_date_now()
        self.pool = [self.sign_one() for _ in range(n)]
        self.next = 0
        return time.perf_counter() - t0

    def take(self) -> bytes:
        i = self.next
        self.next = i + 1
        if i < len(self.pool):
            return self.pool[i]
        self.signed_in_window += 1  # pool ran dry: sign on the fly (counted in the result)
        return self.sign_one()


async def run_phase(job: Job, conns: int, seconds: float, record: bool) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    latencies: list[int] = []
    statuses: dict[int, int] = {}
    failures = {"connect": 0, "io": 0, "unparsed": 0}
    samples: list[str] = []
    check_body = job.op == "get"
    bad_bodies = 0
    pages = {"walks_finished": 0, "pages": 0, "items": 0}
    reconnects = 0
    deadline = time.perf_counter() + seconds

    async def connect() -> Conn:
        _, proto = await loop.create_connection(Conn, job.cfg["host"], job.cfg["port"])
        return proto  # type: ignore[return-value]

    async def worker() -> None:
        nonlocal bad_bodies, reconnects
        conn: Conn | None = None
        consecutive = 0
        perf_ns = time.perf_counter_ns
        token: str | None = None
        walk: dict[str, Any] = {}
        while time.perf_counter() < deadline and consecutive < MAX_CONSECUTIVE_FAILURES:
            if conn is None or conn.lost:
                try:
                    conn = await connect()
                    reconnects += 1
                except OSError:
                    failures["connect"] += 1
                    consecutive += 1
                    await asyncio.sleep(0.05)
                    continue
            if job.paged:
                raw = job.sign_list(token, walk)
            elif job.sweep:
                got_raw = job.take_sweep()
                if got_raw is None:
                    break  # every name read once
                raw = got_raw
            else:
                raw = job.take()
            t0 = perf_ns()
            try:
                status, body, close = await conn.request(raw)
            except ConnectionError:
                failures["io"] += 1
                consecutive += 1
                conn = None
                continue
            except UnparsedResponse:
                failures["unparsed"] += 1
                consecutive += 1
                conn = None
                continue
            t1 = perf_ns()
            consecutive = 0
            latencies.append(t1 - t0)
            statuses[status] = statuses.get(status, 0) + 1
            if status != 200:
                if len(samples) < 5:
                    samples.append(f"{status} {body[:300]!r}")
            elif check_body and b'"SecretString"' not in body:
                bad_bodies += 1
            elif job.paged:
                try:
                    page = json.loads(body)
                    items = len(page["SecretList"])
                except (ValueError, KeyError, TypeError):
                    bad_bodies += 1
                    token, walk = None, {}
                else:
                    pages["pages"] += 1
                    pages["items"] += items
                    token = page.get("NextToken")
                    if not token:  # walk done: start another one from the first page
                        pages["walks_finished"] += 1
                        walk = {}
            if close:
                assert conn.transport is not None
                conn.transport.close()
                conn = None
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conns)))
    elapsed = time.perf_counter() - t0
    if record:
        say("phase done")  # the harness stops its server CPU clock here
    cpu = time.process_time() - cpu0
    ok = statuses.get(200, 0)
    out: dict[str, Any] = {
        "elapsed_s": elapsed,
        "requests": len(latencies),
        "ok": ok,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": len(latencies) - ok + failures["io"] + failures["connect"] + failures["unparsed"] + bad_bodies,
        "failures": failures,
        "bad_bodies": bad_bodies,
        "error_samples": samples,
        "throughput_rps": len(latencies) / elapsed if elapsed > 0 else 0.0,
        "ok_throughput_rps": ok / elapsed if elapsed > 0 else 0.0,
        "generator_cpu_s": cpu,
        "generator_cpu_util": cpu / elapsed if elapsed > 0 else 0.0,
        "connections_opened": reconnects,
    }
    if job.paged:
        out["paging"] = {**pages, "items_per_page": pages["items"] / pages["pages"] if pages["pages"] else 0.0}
    if job.sweep:
        out["sweep"] = {"names": len(job.names), "requested": min(job.next, len(job.names)),
                        "complete": job.next >= len(job.names) and ok == len(job.names)}
    if record and latencies:
        latencies.sort()
        n = len(latencies)

        def pct(p: float) -> float:
            return latencies[min(n - 1, int(p / 100 * n))] / 1e6

        out["latency_ms"] = {"p50": pct(50), "p90": pct(90), "p99": pct(99), "p999": pct(99.9),
                             "max": latencies[-1] / 1e6, "mean": sum(latencies) / n / 1e6}
    return out


async def main_job(cfg: dict[str, Any]) -> dict[str, Any]:
    job = Job(cfg)
    verify_against_botocore(job.signer, job.host, job.target, job.body())
    conns, seconds, warmup = int(cfg["connections"]), float(cfg["seconds"]), float(cfg["warmup"])
    if job.paged or job.sweep:
        # Signed as they go: no pool. A sweep's `seconds` is its deadline.
        if warmup > 0 and not job.sweep:
            say("phase warmup")
            warm = await run_phase(job, conns, warmup, record=False)
        else:
            warm = {"elapsed_s": 0.0, "requests": 0, "throughput_rps": 0.0, "errors": 0, "statuses": {}}
        job.next = 0
        say("phase measure")
        res = await run_phase(job, conns, seconds, record=True)
        res.update({"warmup": {k: warm[k] for k in ("elapsed_s", "requests", "throughput_rps", "errors",
                                                    "statuses")},
                    "pool_size": 0, "signed_in_window": res["requests"], "signer_verified_against_botocore": True,
                    "event_loop": "uvloop" if uvloop is not None else "asyncio",
                    "affinity": sorted(os.sched_getaffinity(0))})
        return res
    # Warm-up on a small pool (signing on the fly once it runs dry) to learn the rate.
    job.fill(min(int(cfg.get("warmup_pool", 2000)), int(cfg["max_pool"])))
    say("phase warmup")
    warm = await run_phase(job, conns, warmup, record=False)
    rate = max(warm["throughput_rps"], 1.0)
    pool_n = min(int(rate * seconds * float(cfg.get("pool_factor", 1.5))) + 1000, int(cfg["max_pool"]))
    say("phase sign")
    sign_s = job.fill(pool_n)
    job.signed_in_window = 0
    say("phase measure")
    res = await run_phase(job, conns, seconds, record=True)
    res.update({
        "warmup": {k: warm[k] for k in ("elapsed_s", "requests", "throughput_rps", "errors", "statuses")},
        "pool_size": pool_n,
        "pool_sign_s": sign_s,
        "sign_us_per_request": sign_s / pool_n * 1e6,
        "signed_in_window": job.signed_in_window,
        "signer_verified_against_botocore": True,
        "event_loop": "uvloop" if uvloop is not None else "asyncio",
        "affinity": sorted(os.sched_getaffinity(0)),
    })
    return res


# -- the yardstick --------------------------------------------------------------------------------

class TrivialServer(asyncio.Protocol):
    BODY = json.dumps({"ARN": "arn:aws:secretsmanager:us-east-1:000000000000:secret:bench/x-AbCdEf",
                       "Name": "bench/x", "VersionId": str(uuid.uuid4()), "SecretString": "x" * 64,
                       "VersionStages": ["AWSCURRENT"], "CreatedDate": 1.7e9}).encode()
    RESPONSE = (b"HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\n"
                b"x-amzn-requestid: 00000000-0000-0000-0000-000000000000\r\n"
                b"content-length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buf = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).lower()
            cl = head.find(b"content-length:")
            length = int(head[cl + 15: head.find(b"\r\n", cl) if head.find(b"\r\n", cl) >= 0 else len(head)]) \
                if cl >= 0 else 0
            if len(self.buf) < end + 4 + length:
                return
            del self.buf[:end + 4 + length]
            self.transport.write(self.RESPONSE)  # type: ignore[attr-defined]


async def trivial_server(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(TrivialServer, "127.0.0.1", port, backlog=256)
    say(f"listening {port}")
    async with server:
        await asyncio.sleep(3600)  # bounded: the harness terminates it long before


def run(coro: Any) -> Any:
    if uvloop is not None:
        return uvloop.run(coro)
    return asyncio.run(coro)


def main(argv: list[str]) -> None:
    if len(argv) == 2 and argv[0] == "--trivial-server":
        run(trivial_server(int(argv[1])))
        return
    cfg = json.loads(sys.stdin.read())
    result = run(main_job(cfg))
    say("result " + json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])

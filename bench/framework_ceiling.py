"""How fast can the HTTP stack strongroom runs on answer at all, on one core?

    .venv/bin/python bench/framework_ceiling.py

Serves do-nothing apps with uvicorn exactly as `strongroom serve` runs it (uvloop,
httptools, one worker, access log off), pinned to core 0, and drives them with
bench/loadgen.py (same signed GetSecretValue requests, 16 keep-alive connections) on core 1:

  asgi-raw            a bare ASGI callable: uvicorn + sockets only
  starlette           a Starlette route that reads the body and returns a fixed JSON
  starlette+2-threads the same, with two anyio.to_thread.run_sync hops per request, as
                      strongroom.http.app's handler does (authenticate, then the operation)

The gap between these and strongroom's GetSecretValue is the work strongroom does; the
figures themselves bound what any handler on this stack can reach on this machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BODY = json.dumps({"ARN": "arn:aws:secretsmanager:us-east-1:000000000000:secret:bench/x-AbCdEf",
                   "Name": "bench/x", "VersionId": "8d3a5a49-3f8e-4c53-9a53-5c7f0e1ad9b1", "SecretString": "x" * 64,
                   "VersionStages": ["AWSCURRENT"], "CreatedDate": 1.7e9}).encode()


def app_for(kind: str) -> Any:
    if kind == "asgi-raw":
        async def raw(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return
            more = True
            while more:
                msg = await receive()
                more = msg.get("more_body", False)
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/x-amz-json-1.1"),
                                    (b"content-length", str(len(BODY)).encode())]})
            await send({"type": "http.response.body", "body": BODY})
        return raw

    import anyio.to_thread
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    hops = 2 if kind == "starlette+2-threads" else 0

    def work(body: bytes) -> bytes:
        return body

    async def handle(request: Request) -> Response:
        body = await request.body()
        for _ in range(hops):
            await anyio.to_thread.run_sync(work, body)
        return Response(BODY, media_type="application/x-amz-json-1.1")

    return Starlette(routes=[Route("/", handle, methods=["POST"])])


def serve(kind: str, port: int) -> None:
    import uvicorn

    uvicorn.run(app_for(kind), host="127.0.0.1", port=port, log_config=None, access_log=False,
                log_level="warning", server_header=False)


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "--serve":
        serve(argv[1], int(argv[2]))
        return 0
    args = harness.parse_args(argv, "get", __doc__.splitlines()[0])
    if args.load_cpus:
        os.sched_setaffinity(0, args.load_cpus)
    names = [f"bench/secret-{i:05d}" for i in range(args.secrets)]
    rows = []
    results: dict[str, Any] = {}
    for kind in ("asgi-raw", "starlette", "starlette+2-threads"):
        port = harness.free_port()
        proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, str(port)],
                                preexec_fn=harness.pinner(args.server_cpus))
        try:
            harness.wait_listening(port, proc, kind, "/")
            r = harness.drive(None, port, harness.MOTO_CREDENTIALS, "get", names, args, proc.pid)
        finally:
            harness.stop(proc, kind)
        results[kind] = r
        lat = r["latency_ms"]
        rows.append(f"| {kind} | {r['throughput_rps']:,.0f} | {lat['p50']:.2f} | {lat['p99']:.2f} | "
                    f"{r['errors']} / {r['requests']:,} | {100 * r.get('server_cpu_util', 0):.0f}% | "
                    f"{r.get('server_cpu_us_per_request', 0):,.0f} | {r.get('server_context_switches_per_request', 0):.1f} |")
        harness.log(f"{kind}: {r['throughput_rps']:,.0f} req/s")
    md = "\n".join(["| app on uvicorn | req/s | p50 ms | p99 ms | errors / requests | server CPU | "
                    "server CPU µs/req | ctx switches/req |", "|---|---:|---:|---:|---:|---:|---:|---:|", *rows])
    out = harness.RESULTS / f"{time.strftime('%Y%m%dT%H%M%S')}-framework-ceiling.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": harness.machine(), "versions": harness.versions(), "runs": results,
                               "markdown": md}, indent=2, default=str))
    print(md)
    print(f"\nresults: {Path(out).relative_to(harness.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

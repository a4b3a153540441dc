"""Every target of the performance issue, measured in one run: JSON + markdown in bench/results/.

    .venv/bin/python bench/run_all.py            # the full run (or: make bench)
    .venv/bin/python bench/run_all.py --quick    # a short smoke run (make bench BENCH_ARGS=--quick)
    .venv/bin/python bench/run_all.py --only reads,writes --rounds 5

Phases (--only / --skip pick among them):

reads    GetSecretValue, 1,000 secrets, 16 keep-alive connections, SigV4-signed, strongroom as
         `strongroom serve` runs it (audit, metrics, request log: everything on), moto's server
         and the minimal baseline (bench/baseline_server.py), alternating round by round.
         Targets: >= 25x moto, >= 75% of the baseline, p99 < 10 ms.
scale    100,000 secrets (seeded in-process with bench/seed.py, cached in bench/results/cache/):
         start-up time until /ready answers 200 (< 5 s), one full read pass (every secret once),
         RSS summed over the server's processes, GetSecretValue alternating with the 1,000-secret
         server (within 10%), ListSecrets pages (MaxResults 100), a name filter and a tag-key
         filter (p99 < 50 ms each).
writes   PutSecretValue, 16 concurrent writers, each write a new version, strongroom (durable:
         SQLite WAL, synchronous=FULL) side by side with moto (in memory).
workers  GetSecretValue against `strongroom serve --workers 1` and `--workers 2`, alternating.
         Both are run unpinned (server processes and the load generator share every core), so
         the second worker has a core to run on.

Pinning (--pin, on by default on a machine with exactly 2 CPUs): servers on core 0, the load
generator on core 1. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import seed as seeding  # noqa: E402

PHASES = ("reads", "scale", "writes", "workers")
CACHE = harness.RESULTS / "cache"
BASELINE = harness.BENCH / "baseline_server.py"
log = harness.log


# -- servers ----------------------------------------------------------------------------------

def wait_ready(port: int, proc: subprocess.Popen[Any], name: str, path: str = "/ready",
               timeout: float = 120.0) -> float:
    """Seconds from now until `path` answers 200 (polled every 10 ms); raises on exit or timeout."""
    t0 = time.perf_counter()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except (urllib.error.HTTPError, OSError):
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{name} did not answer 200 on {path} within {timeout:.0f} s")


class StrongroomServer(harness.Strongroom):
    """`strongroom serve` on a prepared data directory (work/data, profile in work/aws)."""

    def __init__(self, name: str, work: Path, env: dict[str, str], credentials: dict[str, str],
                 cpus: set[int] | None, log_level: str, workers: int = 1, start_timeout: float = 120.0):
        self.name = name
        self.work = work
        self.env = env
        self.credentials = credentials
        self.port = harness.free_port()
        self.log_path = work / f"server-{name}.log"
        cmd = [sys.executable, "-m", "strongroom.cli.main", "serve", "--host", "127.0.0.1", "--port",
               str(self.port), "--log-level", log_level]
        if workers != 1:
            cmd += ["--workers", str(workers)]
        self.workers = workers
        with open(self.log_path, "wb") as out:
            t0 = time.perf_counter()
            self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         preexec_fn=harness.pinner(cpus))
            try:
                wait_ready(self.port, self.proc, name, timeout=start_timeout)
            except RuntimeError:
                self.stop()
                raise RuntimeError(f"{name} failed to start:\n{self.log_path.read_text()[-2000:]}") from None
            self.startup_s = time.perf_counter() - t0  # process start until /ready answered 200


class BaselineServer(harness.Target):
    name = "baseline"

    def __init__(self, work: Path, count: int, value_size: int, cpus: set[int] | None):
        self.port = harness.free_port()
        self.credentials = dict(harness.MOTO_CREDENTIALS)
        self.log_path = work / "baseline.log"
        env = {**os.environ, "BASELINE_SECRET_KEY": self.credentials["secret_key"]}
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, str(BASELINE), "--port", str(self.port), "--secrets",
                                          str(count), "--value-size", str(value_size),
                                          "--access-key", self.credentials["access_key"]],
                                         env=env, stdout=out, stderr=subprocess.STDOUT,
                                         preexec_fn=harness.pinner(cpus))
        wait_ready(self.port, self.proc, self.name, "/health")


# -- measuring ----------------------------------------------------------------------------------

class Runner:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.results: dict[str, Any] = {}

    def drive(self, target: harness.Target, op: str, names: list[str], *, seconds: float | None = None,
              warmup: float | None = None, connections: int | None = None, extra: dict[str, Any] | None = None,
              load_cpus: set[int] | None | str = "default") -> dict[str, Any]:
        a = self.args
        ns = argparse.Namespace(connections=connections or a.connections, seconds=a.seconds, warmup=a.warmup,
                                value_size=a.value_size, max_pool=a.max_pool,
                                load_cpus=a.load_cpus if load_cpus == "default" else load_cpus,
                                profile_gil=False, profile_rate=250)
        assert target.proc is not None
        r = harness.drive(target, target.port, target.credentials, op, names, ns, target.proc.pid,
                          seconds=seconds, warmup=warmup, extra=extra)
        lat = r.get("latency_ms", {})
        log(f"  {target.name} {op}: {r['throughput_rps']:,.0f} req/s  p50 {lat.get('p50', float('nan')):.2f} ms  "
            f"p99 {lat.get('p99', float('nan')):.2f} ms  errors {r['errors']}/{r['requests']:,}  "
            f"server CPU {100 * r.get('server_cpu_util', 0):.0f}% "
            f"({r.get('server_cpu_us_per_request', 0):,.0f} µs/req)  "
            f"generator CPU {100 * r['generator_cpu_util']:.0f}%")
        if r["error_samples"]:
            log(f"  first errors: {r['error_samples'][:2]}")
        return r


def med(runs: list[dict[str, Any]], *path: str) -> float:
    return harness.median_of(runs, tuple(path))


def summary_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"throughput_rps": med(runs, "throughput_rps"), "p50_ms": med(runs, "latency_ms", "p50"),
            "p99_ms": med(runs, "latency_ms", "p99"), "p999_ms": med(runs, "latency_ms", "p999"),
            "errors": sum(r["errors"] for r in runs), "requests": sum(r["requests"] for r in runs),
            "server_cpu_util": med(runs, "server_cpu_util"),
            "server_cpu_us_per_request": med(runs, "server_cpu_us_per_request"),
            "generator_cpu_util": med(runs, "generator_cpu_util"),
            "per_round_rps": [round(r["throughput_rps"], 1) for r in runs], "rounds": len(runs)}


def ratio(a: dict[str, Any], b: dict[str, Any]) -> float:
    return a["throughput_rps"] / b["throughput_rps"] if b.get("throughput_rps") else float("nan")


def phase_reads(rn: Runner, work: Path, moto: harness.Moto | None, small: StrongroomServer,
                names: list[str]) -> None:
    a = rn.args
    baseline = BaselineServer(work, a.secrets, a.value_size, a.server_cpus)
    targets: list[harness.Target] = [small] + ([moto] if moto else []) + [baseline]
    runs: dict[str, list[dict[str, Any]]] = {t.name: [] for t in targets}
    try:
        for t in targets[:-1]:  # steady state: every secret read once (the baseline holds a dict)
            log(f"primed {t.name} (one read of every secret) in {harness.prime(t, names):.1f} s")
        for rnd in range(a.rounds):
            log(f"reads, round {rnd + 1}/{a.rounds}: GetSecretValue, {a.connections} connections, "
                f"{a.warmup:g} s warm-up + {a.seconds:g} s per target")
            for t in targets:
                runs[t.name].append(rn.drive(t, "get", names))
        baseline_rss = harness.rss_kib(baseline.proc.pid)  # type: ignore[union-attr]
    finally:
        baseline.stop()
    out: dict[str, Any] = {n: summary_of(rs) for n, rs in runs.items()}
    sr = out[small.name]
    out["ratios"] = {"strongroom_over_baseline": ratio(sr, out["baseline"]),
                     "per_round_over_baseline": [round(x["throughput_rps"] / y["throughput_rps"], 3)
                                                 for x, y in zip(runs[small.name], runs["baseline"])]}
    if moto:
        out["ratios"]["strongroom_over_moto"] = ratio(sr, out["moto"])
        out["ratios"]["per_round_over_moto"] = [round(x["throughput_rps"] / y["throughput_rps"], 3)
                                                for x, y in zip(runs[small.name], runs["moto"])]
    out["rss_kib"] = {small.name: harness.rss_kib(small.proc.pid), "baseline": baseline_rss,  # type: ignore[union-attr]
                      **({"moto": harness.rss_kib(moto.proc.pid)} if moto else {})}  # type: ignore[union-attr]
    rn.results["reads"] = {"summary": out, "runs": runs}


def phase_scale(rn: Runner, work: Path, small: StrongroomServer | None, small_names: list[str]) -> None:
    a = rn.args
    big_work = work / "large"
    big_work.mkdir()
    log(f"scale: preparing {a.large:,} secrets ({'cached in ' + str(CACHE) if not a.no_cache else 'no cache'})")
    info = seeding.prepared(big_work, a.large, a.value_size, None if a.no_cache else CACHE,
                            deadline_s=a.seed_deadline, log=log)
    env, creds = info.pop("env"), info.pop("credentials")
    log(f"scale: data ready ({'copied from cache' if info.get('from_cache') else 'seeded'}); starting the server")
    label = f"strongroom-{a.large // 1000}k" if a.large % 1000 == 0 else f"strongroom-{a.large}"
    big = StrongroomServer(label, big_work, env, creds, a.server_cpus, a.log_level)
    names = seeding.names_for(a.large)
    out: dict[str, Any] = {"data": info, "startup_s": big.startup_s}
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        assert big.proc is not None
        log(f"scale: {big.name} answered /ready in {big.startup_s:.2f} s")
        out["rss_kib_after_start"] = harness.rss_kib(big.proc.pid)
        log(f"scale: full read pass, every secret once ({a.connections} connections, "
            f"at most {a.sweep_deadline:g} s)")
        sweep = rn.drive(big, "get", names, seconds=a.sweep_deadline, warmup=0, extra={"sweep": True})
        out["read_pass"] = {k: sweep.get(k) for k in ("sweep", "elapsed_s", "requests", "errors", "throughput_rps",
                                                      "latency_ms", "server_cpu_us_per_request")}
        out["rss_kib_after_read_pass"] = harness.rss_kib(big.proc.pid)
        log(f"scale: read {sweep['sweep']['requested']:,} of {a.large:,} secrets in {sweep['elapsed_s']:.1f} s "
            f"(complete: {sweep['sweep']['complete']}); RSS {out['rss_kib_after_read_pass'] / 1024:,.0f} MiB")
        pair = [t for t in (small, big) if t is not None]
        for t in pair:
            runs[t.name] = []
        for rnd in range(a.rounds):
            log(f"scale, round {rnd + 1}/{a.rounds}: GetSecretValue, {a.large:,} vs {a.secrets:,} secrets")
            for t in pair:
                runs[t.name].append(rn.drive(t, "get", names if t is big else small_names))
        lists: dict[str, Any] = {}
        for op in ("list", "list-name", "list-tag"):
            log(f"scale: ListSecrets ({op}), {a.list_connections} connection(s), MaxResults 100")
            lists[op] = rn.drive(big, op, names, seconds=a.list_seconds, warmup=a.warmup,
                                 connections=a.list_connections)
            p = lists[op].get("paging", {})
            log(f"  {p.get('pages', 0):,} pages, {p.get('items_per_page', 0):.0f} secrets per page, "
                f"{p.get('walks_finished', 0)} walks finished")
        out["list"] = {op: {**summary_of([r]), "paging": r.get("paging")} for op, r in lists.items()}
        out["rss_kib_end"] = harness.rss_kib(big.proc.pid)
    finally:
        big.stop()
    out["get"] = {n: summary_of(rs) for n, rs in runs.items()}
    if small is not None and runs.get(small.name):
        out["get"]["large_over_small"] = ratio(out["get"][big.name], out["get"][small.name])
        out["get"]["per_round_large_over_small"] = [round(x["throughput_rps"] / y["throughput_rps"], 3)
                                                    for x, y in zip(runs[big.name], runs[small.name])]
    out["large_name"] = big.name
    rn.results["scale"] = {"summary": out, "runs": runs, "list_runs": lists}
    if not a.keep:
        shutil.rmtree(big_work, ignore_errors=True)


def phase_writes(rn: Runner, moto: harness.Moto | None, small: StrongroomServer, names: list[str]) -> None:
    a = rn.args
    targets: list[harness.Target] = [small] + ([moto] if moto else [])
    runs: dict[str, list[dict[str, Any]]] = {t.name: [] for t in targets}
    for rnd in range(a.rounds):
        log(f"writes, round {rnd + 1}/{a.rounds}: PutSecretValue, {a.connections} writers")
        for t in targets:
            runs[t.name].append(rn.drive(t, "put", names))
    out: dict[str, Any] = {n: summary_of(rs) for n, rs in runs.items()}
    if moto:
        out["ratios"] = {"strongroom_over_moto": ratio(out[small.name], out["moto"]),
                         "per_round_over_moto": [round(x["throughput_rps"] / y["throughput_rps"], 3)
                                                 for x, y in zip(runs[small.name], runs["moto"])]}
    rn.results["writes"] = {"summary": out, "runs": runs}


def phase_workers(rn: Runner, work: Path, small_work: Path, names: list[str]) -> None:
    a = rn.args
    servers: list[StrongroomServer] = []
    runs: dict[str, list[dict[str, Any]]] = {}
    out: dict[str, Any] = {"pinned": False}
    try:
        for n in (2, 1):  # the 2-worker server first, while the machine is quieter (see below)
            w = work / f"workers-{n}"
            shutil.copytree(small_work / "data", w / "data")
            shutil.copytree(small_work / "aws", w / "aws")
            env, creds = seeding.init_work(w)
            # uvicorn's supervisor restarts a worker that does not answer its health check within
            # 5 s of being spawned; on a loaded machine start-up can take a while: wait up to 4 minutes.
            s = StrongroomServer(f"workers-{n}", w, env, creds, None, a.log_level, workers=n, start_timeout=240)
            log(f"workers: `serve --workers {n}` ready in {s.startup_s:.2f} s (unpinned)")
            servers.insert(0, s) if n == 1 else servers.append(s)
            runs[s.name] = []
            out[f"startup_s_{n}"] = s.startup_s
            if n == 2:
                log_text = s.log_path.read_text(errors="replace")
                out["worker_restarts_during_startup"] = log_text.count("died")
        for rnd in range(a.rounds):
            log(f"workers, round {rnd + 1}/{a.rounds}: GetSecretValue, 1 vs 2 worker processes, unpinned")
            for s in servers:
                runs[s.name].append(rn.drive(s, "get", names, load_cpus=None))
        for s in servers:
            out[f"rss_kib_{s.name}"] = harness.rss_kib(s.proc.pid)  # type: ignore[union-attr]
            out[f"processes_{s.name}"] = len(harness.process_tree(s.proc.pid))  # type: ignore[union-attr]
    finally:
        for s in servers:
            s.stop()
    for n, rs in runs.items():
        out[n] = summary_of(rs)
    if "workers-1" in out and "workers-2" in out:
        out["two_over_one"] = ratio(out["workers-2"], out["workers-1"])
        out["per_round_two_over_one"] = [round(x["throughput_rps"] / y["throughput_rps"], 3)
                                         for x, y in zip(runs["workers-2"], runs["workers-1"])]
    rn.results["workers"] = {"summary": out, "runs": runs}


# -- the report --------------------------------------------------------------------------------

def verdict(ok: bool | str | None) -> str:
    if isinstance(ok, str):
        return f"**{ok}**"
    return "reported" if ok is None else ("**met**" if ok else "**not met**")


def checks(res: dict[str, Any], large: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def add(target: str, measured: str, ok: bool | str | None, value: float | None = None) -> None:
        rows.append({"target": target, "measured": measured, "met": ok, "value": value})

    for phase in PHASES:
        err = res.get(phase, {}).get("error")
        if err:
            add(f"phase `{phase}`", err.splitlines()[0][:300].replace("|", "/"), "failed")
    reads = res.get("reads", {}).get("summary")
    if reads:
        sr = reads["strongroom"]
        r = reads["ratios"]
        if "strongroom_over_moto" in r:
            add("GetSecretValue throughput >= 25x moto (16 connections)",
                f"{sr['throughput_rps']:,.0f} vs {reads['moto']['throughput_rps']:,.0f} req/s = "
                f"{r['strongroom_over_moto']:.2f}x", r["strongroom_over_moto"] >= 25, r["strongroom_over_moto"])
        add("GetSecretValue throughput >= 75% of the minimal baseline",
            f"{sr['throughput_rps']:,.0f} vs {reads['baseline']['throughput_rps']:,.0f} req/s = "
            f"{100 * r['strongroom_over_baseline']:.1f}%", r["strongroom_over_baseline"] >= 0.75,
            r["strongroom_over_baseline"])
        add("GetSecretValue p99 < 10 ms at that load",
            f"p50 {sr['p50_ms']:.2f} ms, p99 {sr['p99_ms']:.2f} ms", sr["p99_ms"] < 10, sr["p99_ms"])
    scale = res.get("scale", {}).get("summary")
    if scale:
        g = scale.get("get", {})
        if "large_over_small" in g:
            big, small = g[scale["large_name"]], g["strongroom"]
            add(f"GetSecretValue with {large:,} secrets within 10% of 1,000",
                f"{big['throughput_rps']:,.0f} vs {small['throughput_rps']:,.0f} req/s = "
                f"{100 * g['large_over_small']:.1f}%", g["large_over_small"] >= 0.9, g["large_over_small"])
        names = {"list": "ListSecrets pages (MaxResults 100)", "list-name": "ListSecrets, Filters name (prefix)",
                 "list-tag": "ListSecrets, Filters tag-key"}
        for op, s in scale.get("list", {}).items():
            add(f"{names[op]} p99 < 50 ms, {large:,} secrets",
                f"p50 {s['p50_ms']:.2f} ms, p99 {s['p99_ms']:.2f} ms ({s['requests']:,} pages measured, "
                f"{s['errors']} errors)", s["p99_ms"] < 50 and s["errors"] == 0, s["p99_ms"])
        add(f"Start-up until /ready answers 200 < 5 s, {large:,} secrets", f"{scale['startup_s']:.2f} s",
            scale["startup_s"] < 5, scale["startup_s"])
        rp = scale.get("read_pass") or {}
        sw = rp.get("sweep") or {}
        rss = scale.get("rss_kib_after_read_pass")
        if rss:
            add(f"Memory (RSS) with {large:,} secrets after a full read pass",
                f"{rss / 1024:,.0f} MiB (after start {scale['rss_kib_after_start'] / 1024:,.0f} MiB; read pass "
                f"{'complete' if sw.get('complete') else 'INCOMPLETE: ' + format(sw.get('requested', 0), ',') + ' read'}"
                f" in {rp.get('elapsed_s', 0):.0f} s)", None, rss)
    writes = res.get("writes", {}).get("summary")
    if writes:
        sr = writes["strongroom"]
        txt = f"strongroom {sr['throughput_rps']:,.0f} req/s (p50 {sr['p50_ms']:.1f}, p99 {sr['p99_ms']:.1f} ms)"
        if "moto" in writes:
            txt += (f", moto {writes['moto']['throughput_rps']:,.0f} req/s: "
                    f"{writes['ratios']['strongroom_over_moto']:.2f}x")
        add("PutSecretValue, 16 durable writers, side by side with moto", txt, None,
            writes.get("ratios", {}).get("strongroom_over_moto"))
    workers = res.get("workers", {}).get("summary")
    if workers and "two_over_one" in workers:
        add("Reads scale with worker processes (1 vs 2)",
            f"{workers['workers-1']['throughput_rps']:,.0f} vs {workers['workers-2']['throughput_rps']:,.0f} req/s "
            f"= {workers['two_over_one']:.2f}x (unpinned)", None, workers["two_over_one"])
    return rows


def markdown(res: dict[str, Any], meta: dict[str, Any], large: int) -> str:
    lines = [f"Run {meta['started']} · {meta['machine']['nproc']} CPUs ({meta['machine']['cpu_model']}) · "
             f"Python {meta['versions']['python']} · commit {meta['versions'].get('strongroom_commit', '?')}"
             f"{' (src/ modified)' if meta['versions'].get('strongroom_src_modified_since_commit') == 'True' else ''}"
             f" · pinning: {meta['pinning']}", "",
             "| target | measured | verdict |", "|---|---|---|"]
    for c in res["checks"]:
        lines.append(f"| {c['target']} | {c['measured']} | {verdict(c['met'])} |")
    lines += ["", "| phase | server | req/s | p50 ms | p99 ms | errors / requests | server CPU | µs CPU/req |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]

    def row(phase: str, name: str, s: dict[str, Any]) -> None:
        lines.append(f"| {phase} | {name} | {s['throughput_rps']:,.0f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | "
                     f"{s['errors']} / {s['requests']:,} | {100 * s['server_cpu_util']:.0f}% | "
                     f"{s['server_cpu_us_per_request']:,.0f} |")

    for phase, key in (("GetSecretValue, 1,000 secrets", "reads"), ("PutSecretValue", "writes")):
        summ = res.get(key, {}).get("summary", {})
        for name, s in summ.items():
            if isinstance(s, dict) and "throughput_rps" in s:
                row(phase, name, s)
    scale = res.get("scale", {}).get("summary", {})
    for name, s in scale.get("get", {}).items():
        if isinstance(s, dict):
            n = large if name == scale.get("large_name") else meta["config"]["secrets"]
            row(f"GetSecretValue, {n:,} secrets (scale phase)", name, s)
    for op, s in scale.get("list", {}).items():
        row(f"ListSecrets {op}, {large:,} secrets", "strongroom", s)
    w = res.get("workers", {}).get("summary", {})
    for name in ("workers-1", "workers-2"):
        if name in w:
            row("GetSecretValue, unpinned", f"strongroom {name}", w[name])
    if meta.get("generator_ceiling"):
        c = meta["generator_ceiling"]
        lines.append(f"| generator ceiling | trivial server | {c['throughput_rps']:,.0f} | "
                     f"{c['latency_ms']['p50']:.2f} | {c['latency_ms']['p99']:.2f} | "
                     f"{c['errors']} / {c['requests']:,} | {100 * c.get('server_cpu_util', 0):.0f}% | "
                     f"{c.get('server_cpu_us_per_request', 0):,.0f} |")
    return "\n".join(lines)


# -- main ----------------------------------------------------------------------------------------

def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1 round of 5 s (1 s warm-up), read pass at most 60 s, lists 5 s")
    p.add_argument("--only", default=",".join(PHASES), help=f"comma-separated phases: {', '.join(PHASES)}")
    p.add_argument("--skip", default="", help="comma-separated phases to leave out")
    p.add_argument("--targets", default="strongroom,moto",
                   help="moto can be left out (strongroom and the baseline always run)")
    p.add_argument("--rounds", type=int, default=None, help="rounds per comparison (full 3, quick 1)")
    p.add_argument("--seconds", type=float, default=None, help="measured seconds per run (full 10, quick 5)")
    p.add_argument("--warmup", type=float, default=None, help="warm-up seconds per run (full 2, quick 1)")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--list-connections", type=int, default=1,
                   help="connections walking ListSecrets pages (latency of a page, not queueing)")
    p.add_argument("--list-seconds", type=float, default=None, help="seconds per ListSecrets run (full 10, quick 5)")
    p.add_argument("--secrets", type=int, default=1000)
    p.add_argument("--large", type=int, default=None,
                   help="secrets of the scale phase (full 100,000; quick 10,000, so a first quick run seeds fast)")
    p.add_argument("--sweep-deadline", type=float, default=None,
                   help="most seconds for the full read pass of the scale phase (full 900, quick 60)")
    p.add_argument("--seed-deadline", type=float, default=3600.0, help="most seconds to seed the large set")
    p.add_argument("--no-cache", action="store_true", help="seed the large set afresh, without bench/results/cache")
    p.add_argument("--value-size", type=int, default=64)
    p.add_argument("--max-pool", type=int, default=400_000)
    p.add_argument("--calibrate-seconds", type=float, default=None,
                   help="the generator against a trivial server first (full 3, quick 2; 0: skip)")
    pin = p.add_mutually_exclusive_group()
    pin.add_argument("--pin", dest="pin", action="store_true", default=None,
                     help="servers on core 0, load generator on core 1 (default: on with exactly 2 CPUs)")
    pin.add_argument("--no-pin", dest="pin", action="store_false")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="strongroom's log level; info (its default) logs one line per request")
    p.add_argument("--keep", action="store_true", help="keep the temporary data directories and logs")
    p.add_argument("--output", type=Path, default=None, help="JSON results file (a .md is written next to it)")
    a = p.parse_args(argv)
    q = a.quick
    a.rounds = a.rounds or (1 if q else 3)
    a.large = a.large or (10_000 if q else 100_000)
    a.seconds = a.seconds or (5.0 if q else 10.0)
    a.warmup = a.warmup if a.warmup is not None else (1.0 if q else 2.0)
    a.list_seconds = a.list_seconds or (5.0 if q else 10.0)
    a.sweep_deadline = a.sweep_deadline or (60.0 if q else 900.0)
    a.calibrate_seconds = a.calibrate_seconds if a.calibrate_seconds is not None else (2.0 if q else 3.0)
    a.phases = [x for x in (s.strip() for s in a.only.split(",")) if x and x not in a.skip.split(",")]
    if bad := [x for x in a.phases if x not in PHASES]:
        p.error(f"unknown phase(s): {', '.join(bad)}")
    a.targets = [t.strip() for t in a.targets.split(",") if t.strip()]
    cpus = os.sched_getaffinity(0)
    if a.pin is None:
        a.pin = os.cpu_count() == 2 and len(cpus) == 2
    if a.pin and not {harness.SERVER_CORE, harness.LOAD_CORE} <= cpus:
        log("--pin needs cores 0 and 1: not pinning")
        a.pin = False
    a.server_cpus = {harness.SERVER_CORE} if a.pin else None
    a.load_cpus = {harness.LOAD_CORE} if a.pin else None
    return a


def main(argv: list[str]) -> int:
    a = parse(argv)
    if a.load_cpus:
        os.sched_setaffinity(0, a.load_cpus)  # this process mostly waits; keep it off the servers' core
    started = dt.datetime.now(dt.timezone.utc)
    work = Path(tempfile.mkdtemp(prefix="strongroom-bench-all-"))
    meta: dict[str, Any] = {"started": started.isoformat(timespec="seconds"), "machine": harness.machine(),
                            "versions": harness.versions(),
                            "pinning": (f"servers on core {harness.SERVER_CORE}, load generator on core "
                                        f"{harness.LOAD_CORE}") if a.pin else "none",
                            "config": {k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(a).items()
                                       if k != "output"},
                            "fsync_ms": harness.fsync_latency_ms(work)}
    rn = Runner(a)
    names = seeding.names_for(a.secrets)
    moto = small = None
    t_start = time.monotonic()
    try:
        if a.calibrate_seconds > 0:
            log(f"generator ceiling against a trivial server ({a.calibrate_seconds:g} s)")
            ns = argparse.Namespace(connections=a.connections, seconds=a.calibrate_seconds, warmup=1.0,
                                    value_size=a.value_size, max_pool=a.max_pool, load_cpus=a.load_cpus,
                                    server_cpus=a.server_cpus, calibrate_seconds=a.calibrate_seconds,
                                    profile_gil=False, profile_rate=250)
            meta["generator_ceiling"] = c = harness.calibrate(ns, names)
            log(f"generator ceiling: {c['throughput_rps']:,.0f} req/s")
        need_small = any(p in a.phases for p in ("reads", "scale", "writes", "workers"))
        small_work = work / "small"
        if need_small:
            small_work.mkdir()
            info = seeding.prepared(small_work, a.secrets, a.value_size, None if a.no_cache else CACHE, log=log)
            env, creds = info.pop("env"), info.pop("credentials")
            meta["small_data"] = info
            small = StrongroomServer("strongroom", small_work, env, creds, a.server_cpus, a.log_level)
            meta["startup_s_small"] = small.startup_s
            log(f"strongroom ({a.secrets:,} secrets) answered /ready in {small.startup_s:.2f} s")
        if "moto" in a.targets and any(p in a.phases for p in ("reads", "writes")):
            moto = harness.Moto(work, a.server_cpus)
            log(f"seeding {a.secrets:,} secrets into moto through its API")
            meta["moto_seed_s"] = harness.seed(moto, names, a.value_size)
        def guarded(phase: str, fn: Any, *fargs: Any) -> None:
            """A phase that fails is recorded as failed; the others still run and report."""
            try:
                fn(*fargs)
            except Exception as exc:  # noqa: BLE001 - reported in the results, not hidden
                msg = f"{type(exc).__name__}: {exc}"
                log(f"{phase} phase failed: {msg[:1500]}")
                rn.results[phase] = {"error": msg[-3000:]}

        if "reads" in a.phases:
            assert small is not None
            guarded("reads", phase_reads, rn, work, moto, small, names)
        if "scale" in a.phases:
            guarded("scale", phase_scale, rn, work, small, names)
        if "writes" in a.phases:
            assert small is not None
            guarded("writes", phase_writes, rn, moto, small, names)
        if moto is not None:
            moto.stop()
        if small is not None:
            small.stop()
        if "workers" in a.phases:
            guarded("workers", phase_workers, rn, work, small_work, names)
    finally:
        for t in (moto, small):
            if t is not None:
                t.stop()
        if a.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    meta["elapsed_s"] = time.monotonic() - t_start
    meta["machine"]["loadavg_after"] = os.getloadavg()
    meta["machine"]["cpu_pressure_after"] = harness._pressure()
    rn.results["checks"] = checks(rn.results, a.large)
    md = markdown(rn.results, meta, a.large)
    out = a.output or harness.RESULTS / f"{started:%Y%m%dT%H%M%S}-run-all{'-quick' if a.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "results": rn.results, "markdown": md}, indent=2, default=str))
    out.with_suffix(".md").write_text(md + "\n")
    print(md)
    print(f"\nresults: {out}\n         {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""What the benchmark scripts share: start the servers, seed them, drive them, report.

Layout of a run (see docs/benchmarks.md):

- strongroom (`strongroom init` into a fresh data directory, then `strongroom serve`) and
  moto (`python -m moto.server`) listen on free 127.0.0.1 ports, pinned to core 0;
- both are seeded with the same N secrets through boto3;
- bench/loadgen.py runs as its own process pinned to core 1 and drives one target at a
  time with C keep-alive connections, each request SigV4-signed (its own
  amz-sdk-invocation-id, so every signature differs, as with botocore);
- the generator's ceiling is measured against a trivial server on core 0;
- results go to bench/results/<stamp>-<ops>.json and a markdown table to stdout.
"""

from __future__ import annotations

import argparse
import configparser
import datetime as dt
import importlib.metadata
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
LOADGEN = BENCH / "loadgen.py"
SERVER_CORE, LOAD_CORE = 0, 1
CLK_TCK = os.sysconf("SC_CLK_TCK")
MOTO_CREDENTIALS = {"access_key": "AKIAIOSFODNN7EXAMPLE", "secret_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                    "region": "us-east-1"}
OPS = {"get": "GetSecretValue", "put": "PutSecretValue"}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinner(cpus: set[int] | None):  # type: ignore[no-untyped-def]
    if not cpus:
        return None

    def pin() -> None:
        os.sched_setaffinity(0, cpus)
    return pin


def process_tree(pid: int) -> list[int]:
    """A process and every live descendant (uvicorn's worker processes with `--workers N`)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo and len(out) < 4096:  # bounded
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its descendants, all their threads included."""
    user, system = cpu_split(pid)
    return user + system


def cpu_split(pid: int) -> tuple[float, float]:
    """(utime, stime) in seconds of a process and its live descendants, all threads included."""
    user = system = 0.0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11]) / CLK_TCK
        system += int(fields[12]) / CLK_TCK
    return user, system


def rss_kib(pid: int) -> int:
    """Resident set size (VmRSS, KiB) summed over a process and its live descendants."""
    total = 0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
        except (OSError, ValueError, IndexError):
            continue
    return total


def context_switches(pid: int) -> int:
    """Voluntary + involuntary context switches of every live thread of a process and its descendants."""
    total = 0
    for p in process_tree(pid):
        try:
            tasks = list(Path(f"/proc/{p}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                for line in (task / "status").read_text().splitlines():
                    if "ctxt_switches:" in line:
                        total += int(line.split(":")[1])
            except (OSError, ValueError):
                continue
    return total


AUDIT_SERIES = ("strongroom_audit_batch_size_sum", "strongroom_audit_batch_size_count",
                "strongroom_audit_commit_seconds_sum", "strongroom_audit_commit_seconds_count")


def scrape_audit(port: int) -> dict[str, float] | None:
    """The audit writer's batch and commit counters from strongroom's /metrics, if it serves them."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except (OSError, ValueError):
        return None
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in AUDIT_SERIES:
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out if len(out) == len(AUDIT_SERIES) else None


def audit_delta(before: dict[str, float] | None, after: dict[str, float] | None) -> dict[str, float] | None:
    if not before or not after:
        return None
    batches = after["strongroom_audit_batch_size_count"] - before["strongroom_audit_batch_size_count"]
    if batches <= 0:
        return None
    events = after["strongroom_audit_batch_size_sum"] - before["strongroom_audit_batch_size_sum"]
    commit_s = after["strongroom_audit_commit_seconds_sum"] - before["strongroom_audit_commit_seconds_sum"]
    return {"batches": batches, "events": events, "events_per_batch": events / batches,
            "commit_ms_mean": commit_s / batches * 1000}


def stop(proc: subprocess.Popen[Any] | None, name: str) -> None:
    """Terminate one process we started, by its pid; kill it if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        log(f"{name} (pid {proc.pid}) ignored SIGTERM; killing it")
        proc.kill()
        proc.wait(timeout=15)


def wait_listening(port: int, proc: subprocess.Popen[Any], name: str, path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers: good enough
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not answer on port {port} within {timeout:.0f} s")


class Target:
    name: str
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    credentials: dict[str, str] = {}

    def client(self):  # type: ignore[no-untyped-def]
        c = self.credentials
        return boto3.client("secretsmanager", endpoint_url=f"http://127.0.0.1:{self.port}", region_name=c["region"],
                            aws_access_key_id=c["access_key"], aws_secret_access_key=c["secret_key"],
                            config=Config(max_pool_connections=32, retries={"max_attempts": 5, "mode": "standard"}))

    def stop(self) -> None:
        stop(self.proc, self.name)


def server_env(work: Path) -> dict[str, str]:
    """The environment of a strongroom process on `work`'s data directory and AWS profile files."""
    env = {**os.environ,
           "STRONGROOM_DATA_DIR": str(work / "data"),
           "AWS_CONFIG_FILE": str(work / "aws" / "config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(work / "aws" / "credentials")}
    for var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "STRONGROOM_DATABASE_URL"):
        env.pop(var, None)
    return env


def init_work(work: Path, endpoint: str = "http://127.0.0.1:7979") -> tuple[dict[str, str], dict[str, str]]:
    """`strongroom init` into work/data (profile in work/aws); returns (environment, credentials)."""
    env = server_env(work)
    if not (work / "aws" / "credentials").exists():
        done = subprocess.run([sys.executable, "-m", "strongroom.cli.main", "init", "--endpoint-url", endpoint],
                              env=env, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"strongroom init failed:\n{done.stderr[-2000:]}")
    creds = configparser.ConfigParser()
    creds.read(work / "aws" / "credentials")
    conf = configparser.ConfigParser()
    conf.read(work / "aws" / "config")
    return env, {"access_key": creds["strongroom"]["aws_access_key_id"],
                 "secret_key": creds["strongroom"]["aws_secret_access_key"],
                 "region": conf["profile strongroom"]["region"]}


class Strongroom(Target):
    name = "strongroom"

    def __init__(self, work: Path, cpus: set[int] | None, log_level: str, switch_interval: float | None = None):
        self.work = work
        self.port = free_port()
        env, self.credentials = init_work(work, f"http://127.0.0.1:{self.port}")
        cli = [sys.executable, "-m", "strongroom.cli.main"]
        self.log_path = work / "server.log"
        serve = cli
        if switch_interval is not None:  # an experiment: the same server with another GIL switch interval
            serve = [sys.executable, "-c", "import runpy, sys; sys.argv[0] = 'strongroom'; "
                     f"sys.setswitchinterval({switch_interval!r}); "
                     "runpy.run_module('strongroom.cli.main', run_name='__main__', alter_sys=True)"]
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen([*serve, "serve", "--host", "127.0.0.1", "--port", str(self.port),
                                          "--log-level", log_level],
                                         env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=pinner(cpus))
        wait_listening(self.port, self.proc, self.name, "/health")


class Moto(Target):
    name = "moto"

    def __init__(self, work: Path, cpus: set[int] | None):
        self.port = free_port()
        self.credentials = dict(MOTO_CREDENTIALS)
        self.log_path = work / "moto.log"
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                         stdout=out, stderr=subprocess.STDOUT, preexec_fn=pinner(cpus),
                                         env={**os.environ, "MOTO_CALL_RESET_API": "false"})
        wait_listening(self.port, self.proc, self.name, "/moto-api/")


def random_value(rng: random.Random, size: int) -> str:
    return "".join(rng.choices(string.ascii_letters + string.digits, k=size))


def seed(target: Target, names: list[str], value_size: int) -> float:
    t0 = time.perf_counter()
    client = target.client()
    rng = random.Random(7)
    values = [random_value(rng, value_size) for _ in names]

    def create(i: int) -> None:
        client.create_secret(Name=names[i], SecretString=values[i])

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(create, range(len(names))))
    got = client.get_secret_value(SecretId=names[-1])
    assert got["SecretString"] == values[-1], "seeded value did not read back"
    return time.perf_counter() - t0


def prime(target: Target, names: list[str]) -> float:
    """Read every secret once, so the measured window sees steady state.

    strongroom records LastAccessedDate (day granularity) on a secret's first read of
    the day, in a durable write transaction; without this pass the first ~1,000 reads
    of a run would measure that write rather than the read path.
    """
    t0 = time.perf_counter()
    client = target.client()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda n: client.get_secret_value(SecretId=n), names))
    return time.perf_counter() - t0


class Profiler:
    """py-spy attached to the server for the measured window (only with --profile)."""

    def __init__(self, pid: int, seconds: float, out: Path, gil: bool, rate: int):
        exe = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
        if exe is None:
            raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
        self.out = out
        cmd = [exe, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))), "--rate", str(rate),
               "--format", "raw", "--output", str(out), "--nonblocking"]
        if gil:
            cmd.append("--gil")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     preexec_fn=pinner({LOAD_CORE} if len(os.sched_getaffinity(0)) > 1 else None))

    def finish(self) -> dict[str, Any]:
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            stop(self.proc, "py-spy")
            err = b""
        if not self.out.exists():
            return {"error": (err or b"").decode(errors="replace")[-500:]}
        return summarize_profile(self.out)


IDLE_LEAVES = ("threading.py:Condition.wait", "threading.py:Event.wait", "queue.py:Queue.get",
               "selectors.py:", "asyncio/base_events.py:BaseEventLoop._run_once")


def summarize_profile(path: Path, top: int = 25) -> dict[str, Any]:
    """Self and inclusive shares per function from py-spy's collapsed stacks, idle waits left out.

    Stacks rooted in threading's bootstrap are anyio's worker threads (SigV4 verification and
    the service operation); the others are the event loop's thread (uvicorn, Starlette).
    """
    self_c: Counter[str] = Counter()
    incl_c: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_short(f) for f in stack.split(";") if " (" in f]
        if not frames:
            continue
        if any(frames[-1].startswith(i) for i in IDLE_LEAVES):
            idle += n
            continue
        total += n
        threads[_thread_kind(frames)] += n
        self_c[frames[-1]] += n
        for f in set(frames):
            incl_c[f] += n
    if not total:
        return {"samples": 0, "idle_samples": idle}
    return {
        "samples": total,
        "idle_samples_excluded": idle,
        "collapsed_stacks": str(path),
        "threads": [(k, round(100 * v / total, 1)) for k, v in threads.most_common()],
        "self": [(f, round(100 * n / total, 1)) for f, n in self_c.most_common(top)],
        "inclusive": [(f, round(100 * n / total, 1)) for f, n in incl_c.most_common(top * 2)],
    }


def _thread_kind(frames: list[str]) -> str:
    if not frames[0].startswith("threading.py:"):
        return "event loop thread (uvicorn, Starlette, handler)"
    if any(f.startswith("strongroom/audit/writer.py") for f in frames):
        return "audit writer thread"
    if any(f.startswith("strongroom/audit/") for f in frames):
        return "audit forwarder/other audit thread"
    if any(f.startswith("anyio/") for f in frames):
        return "anyio worker threads (SigV4, operation)"
    return "other threads"


def _short(frame: str) -> str:
    """'func (path/to/file.py:12)' -> 'func (file.py)' with a package-relative path."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    file = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "src/", "lib/python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{file}:{name}"


def drive(target: Target | None, port: int, credentials: dict[str, str], op: str, names: list[str], args: Any,
          server_pid: int | None, profile_out: Path | None = None, seconds: float | None = None,
          warmup: float | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One load-generator run against one server; returns the generator's result plus server CPU."""
    cfg = {"host": "127.0.0.1", "port": port, "connections": args.connections, "op": op,
           "seconds": seconds if seconds is not None else args.seconds,
           "warmup": warmup if warmup is not None else args.warmup,
           "secrets": names, "credentials": credentials, "value_size": args.value_size,
           "max_pool": args.max_pool, "seed": random.randrange(1 << 30), **(extra or {})}
    proc = subprocess.Popen([sys.executable, str(LOADGEN)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            preexec_fn=pinner(args.load_cpus), text=True)
    budget = cfg["warmup"] + cfg["seconds"] + 180
    timer = threading.Timer(budget, lambda: stop(proc, "load generator"))
    timer.start()
    result: dict[str, Any] | None = None
    cpu0 = server_cpu = None
    audit0 = audit = None
    switches, sys_share = 0, 0.0
    profiler = None
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(cfg))
        proc.stdin.close()
        for line in proc.stdout:
            if line.startswith("phase measure"):
                if isinstance(target, Strongroom):
                    audit0 = scrape_audit(port)
                if server_pid is not None:
                    cpu0 = (cpu_seconds(server_pid), time.perf_counter())
                    cs0 = context_switches(server_pid)
                    split0 = cpu_split(server_pid)
                if profile_out is not None and server_pid is not None:
                    profiler = Profiler(server_pid, cfg["seconds"], profile_out, args.profile_gil, args.profile_rate)
            elif line.startswith("phase done"):
                if isinstance(target, Strongroom):
                    audit = audit_delta(audit0, scrape_audit(port))
                if cpu0 is not None and server_pid is not None:
                    cpu1 = (cpu_seconds(server_pid), time.perf_counter())
                    server_cpu = (cpu1[0] - cpu0[0]) / (cpu1[1] - cpu0[1])
                    switches = context_switches(server_pid) - cs0
                    split1 = cpu_split(server_pid)
                    sys_share = (split1[1] - split0[1]) / max(1e-9, (split1[0] + split1[1]) - (split0[0] + split0[1]))
            elif line.startswith("result "):
                result = json.loads(line[len("result "):])
        proc.wait(timeout=30)
    finally:
        timer.cancel()
        stop(proc, "load generator")
    if result is None:
        raise RuntimeError(f"load generator failed against {target.name if target else 'trivial server'} "
                           f"(exit {proc.returncode})")
    if server_cpu is not None:
        result["server_cpu_util"] = server_cpu
        if result["throughput_rps"] > 0:
            result["server_cpu_us_per_request"] = server_cpu / result["throughput_rps"] * 1e6
        if result["requests"]:
            result["server_context_switches_per_request"] = switches / result["requests"]
        result["server_kernel_share_of_cpu"] = sys_share
    if audit is not None:
        result["audit_writer"] = audit
    if profiler is not None:
        result["profile"] = profiler.finish()
    return result


def calibrate(args: Any, names: list[str]) -> dict[str, Any]:
    """The generator against a server that answers instantly: its own ceiling."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(LOADGEN), "--trivial-server", str(port)],
                            stdout=subprocess.PIPE, text=True, preexec_fn=pinner(args.server_cpus))
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # "listening PORT"
        return drive(None, port, MOTO_CREDENTIALS, "get", names, args, proc.pid,
                     seconds=args.calibrate_seconds, warmup=1.0)
    finally:
        stop(proc, "trivial server")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("strongroom", "moto", "botocore", "boto3", "starlette", "uvicorn", "uvloop", "httptools",
                 "SQLAlchemy", "cryptography", "Werkzeug", "Flask"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "-"
    try:
        out["strongroom_commit"] = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                                  capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "src"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        out["strongroom_src_modified_since_commit"] = str(bool(dirty))
    except OSError:
        pass
    return out


def machine() -> dict[str, Any]:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"nproc": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "loadavg_before": os.getloadavg(), "cpu_pressure_before": _pressure()}


def fsync_latency_ms(directory: Path, n: int = 100) -> dict[str, float]:
    """write(4 KiB) + fsync latency in the directory the data lives in: the floor of a durable write."""
    fd, name = tempfile.mkstemp(dir=directory)
    lat = []
    try:
        for _ in range(n):
            os.write(fd, b"x" * 4096)
            t0 = time.perf_counter()
            os.fsync(fd)
            lat.append((time.perf_counter() - t0) * 1000)
    finally:
        os.close(fd)
        os.unlink(name)
    lat.sort()
    return {"p50": lat[n // 2], "p90": lat[int(n * 0.9)], "p99": lat[min(n - 1, int(n * 0.99))]}


def _pressure() -> str:
    try:
        return Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return "-"


def median_of(runs: list[dict[str, Any]], path: tuple[str, ...]) -> float:
    vals = []
    for r in runs:
        v: Any = r
        for p in path:
            v = v.get(p) if isinstance(v, dict) else None
        if v is not None:
            vals.append(float(v))
    return statistics.median(vals) if vals else float("nan")


def summarize(runs: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for op, by_target in runs.items():
        out[op] = {}
        for target, rs in by_target.items():
            out[op][target] = {
                "throughput_rps": median_of(rs, ("throughput_rps",)),
                "p50_ms": median_of(rs, ("latency_ms", "p50")),
                "p99_ms": median_of(rs, ("latency_ms", "p99")),
                "errors": sum(r["errors"] for r in rs),
                "requests": sum(r["requests"] for r in rs),
                "server_cpu_util": median_of(rs, ("server_cpu_util",)),
                "server_cpu_us_per_request": median_of(rs, ("server_cpu_us_per_request",)),
                "server_context_switches_per_request": median_of(rs, ("server_context_switches_per_request",)),
                "server_kernel_share_of_cpu": median_of(rs, ("server_kernel_share_of_cpu",)),
                "generator_cpu_util": median_of(rs, ("generator_cpu_util",)),
                "rounds": len(rs),
            }
        if "strongroom" in out[op] and "moto" in out[op] and out[op]["moto"]["throughput_rps"] > 0:
            pairs = zip(by_target["strongroom"], by_target["moto"])
            out[op]["ratio_strongroom_over_moto"] = {
                "throughput": out[op]["strongroom"]["throughput_rps"] / out[op]["moto"]["throughput_rps"],
                "per_round": [round(a["throughput_rps"] / b["throughput_rps"], 3) for a, b in pairs
                              if b["throughput_rps"] > 0]}
    return out


def table(summary: dict[str, Any], ceiling: dict[str, Any] | None) -> str:
    rows = ["| operation | target | req/s | p50 ms | p99 ms | errors / requests | server CPU | server CPU µs/req "
            "| generator CPU |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for op, by_target in summary.items():
        if not isinstance(by_target, dict):
            continue
        for target in ("strongroom", "moto"):
            s = by_target.get(target)
            if s is None:
                continue
            rows.append(f"| {OPS[op]} | {target} | {s['throughput_rps']:,.0f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} "
                        f"| {s['errors']} / {s['requests']:,} | {100 * s['server_cpu_util']:.0f}% "
                        f"| {s['server_cpu_us_per_request']:,.0f} | {100 * s['generator_cpu_util']:.0f}% |")
        ratio = by_target.get("ratio_strongroom_over_moto")
        if ratio:
            rounds = ratio["per_round"]
            spread = f"rounds: {min(rounds):.2f}x to {max(rounds):.2f}x" if len(rounds) > 1 else ""
            rows.append(f"| {OPS[op]} | **strongroom / moto** | **{ratio['throughput']:.2f}x** | {spread} | | | | | |")
    if ceiling:
        rows.append(f"| (generator ceiling) | trivial server | {ceiling['throughput_rps']:,.0f} "
                    f"| {ceiling['latency_ms']['p50']:.2f} | {ceiling['latency_ms']['p99']:.2f} "
                    f"| {ceiling['errors']} / {ceiling['requests']:,} | {100 * ceiling.get('server_cpu_util', 0):.0f}% "
                    f"| {ceiling.get('server_cpu_us_per_request', 0):,.0f} | {100 * ceiling['generator_cpu_util']:.0f}% |")
    return "\n".join(rows)


def parse_args(argv: list[str] | None, default_ops: str, description: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--ops", default=default_ops,
                   help="comma-separated operations to measure: get (GetSecretValue), put (PutSecretValue)")
    p.add_argument("--targets", default="strongroom,moto", help="comma-separated: strongroom, moto")
    p.add_argument("--secrets", type=int, default=1000, help="secrets seeded into each target")
    p.add_argument("--connections", type=int, default=16, help="concurrent keep-alive connections")
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per target and operation")
    p.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds before each measurement")
    p.add_argument("--rounds", type=int, default=1,
                   help="measure each target this many times, alternating; the table shows medians")
    p.add_argument("--value-size", type=int, default=64, help="characters in each secret value")
    p.add_argument("--max-pool", type=int, default=400_000, help="most pre-signed requests held per run")
    p.add_argument("--calibrate-seconds", type=float, default=5.0,
                   help="seconds against a trivial server to measure the generator's ceiling (0: skip)")
    p.add_argument("--no-prime", action="store_true",
                   help="skip the pass that reads every secret once before measuring (strongroom then also "
                        "measures the first-read-of-the-day LastAccessedDate write)")
    p.add_argument("--no-pin", action="store_true", help="do not pin servers to core 0 and the generator to core 1")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="strongroom's log level, as `strongroom serve --log-level` "
                        "(info, its default, logs one line per request)")
    p.add_argument("--switch-interval", type=float, default=None,
                   help="experiment: run strongroom with sys.setswitchinterval(SECONDS) (Python's default: 0.005)")
    p.add_argument("--profile", action="store_true",
                   help="attach py-spy to strongroom during each measured window (slows it; figures are then "
                        "not comparable) and print the top functions")
    p.add_argument("--profile-gil", action="store_true", help="with --profile: only samples holding the GIL")
    p.add_argument("--profile-rate", type=int, default=250, help="with --profile: samples per second")
    p.add_argument("--keep", action="store_true", help="keep the temporary data directory and server logs")
    p.add_argument("--output", type=Path, default=None, help="JSON results file (default: bench/results/...)")
    args = p.parse_args(argv)
    args.ops = [o.strip() for o in args.ops.split(",") if o.strip()]
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if bad := [o for o in args.ops if o not in OPS]:
        p.error(f"unknown operation(s): {', '.join(bad)}")
    if bad := [t for t in args.targets if t not in ("strongroom", "moto")]:
        p.error(f"unknown target(s): {', '.join(bad)}")
    if not 1 <= args.connections <= 1024 or args.secrets < 1 or args.seconds <= 0 or args.rounds < 1:
        p.error("--connections 1..1024, --secrets >= 1, --seconds > 0, --rounds >= 1")
    pin = not args.no_pin and len(os.sched_getaffinity(0)) >= 2 and \
        {SERVER_CORE, LOAD_CORE} <= os.sched_getaffinity(0)
    if not args.no_pin and not pin:
        log("fewer than two usable cores: not pinning")
    args.server_cpus = {SERVER_CORE} if pin else None
    args.load_cpus = {LOAD_CORE} if pin else None
    return args


def main(argv: list[str] | None, default_ops: str, description: str) -> int:
    args = parse_args(argv, default_ops, description)
    if args.load_cpus:
        os.sched_setaffinity(0, args.load_cpus)  # this process idles during measurements; keep it off core 0
    names = [f"bench/secret-{i:05d}" for i in range(args.secrets)]
    work = Path(tempfile.mkdtemp(prefix="strongroom-bench-"))
    started = dt.datetime.now(dt.timezone.utc)
    meta: dict[str, Any] = {"started": started.isoformat(timespec="seconds"), "machine": machine(),
                            "versions": versions(),
                            "pinning": {"servers": sorted(args.server_cpus or []),
                                        "load_generator": sorted(args.load_cpus or [])},
                            "config": {k: v for k, v in vars(args).items()
                                       if k not in ("server_cpus", "load_cpus", "output")},
                            "data_dir_fs": _fs_of(work), "fsync_ms": fsync_latency_ms(work)}
    targets: dict[str, Target] = {}
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {op: {t: [] for t in args.targets} for op in args.ops}
    ceiling = None
    try:
        if args.calibrate_seconds > 0:
            log(f"measuring the load generator's ceiling against a trivial server ({args.calibrate_seconds:g} s)")
            ceiling = calibrate(args, names)
            log(f"generator ceiling: {ceiling['throughput_rps']:,.0f} req/s "
                f"(generator CPU {100 * ceiling['generator_cpu_util']:.0f}%)")
        for t in args.targets:
            log(f"starting {t}")
            targets[t] = Strongroom(work / "strongroom", args.server_cpus, args.log_level,
                                    args.switch_interval) if t == "strongroom" \
                else Moto(work, args.server_cpus)
            if args.server_cpus:
                got = os.sched_getaffinity(targets[t].proc.pid)  # type: ignore[union-attr]
                assert got == args.server_cpus, f"{t} pinned to {got}"
            log(f"seeding {args.secrets} secrets into {t} on port {targets[t].port}")
            s = seed(targets[t], names, args.value_size)
            log(f"seeded {t} in {s:.1f} s")
            meta.setdefault("seed_seconds", {})[t] = s
            if not args.no_prime:
                s = prime(targets[t], names)
                log(f"primed {t} (one read of every secret) in {s:.1f} s")
                meta.setdefault("prime_seconds", {})[t] = s
        for rnd in range(args.rounds):
            for op in args.ops:
                for t in args.targets:
                    tg = targets[t]
                    prof = None
                    if args.profile and t == "strongroom":
                        RESULTS.mkdir(parents=True, exist_ok=True)
                        prof = RESULTS / f"{started:%Y%m%dT%H%M%S}-profile-{op}-r{rnd + 1}.collapsed"
                    log(f"round {rnd + 1}/{args.rounds}: {OPS[op]} against {t} "
                        f"({args.warmup:g} s warm-up + {args.seconds:g} s, {args.connections} connections)")
                    assert tg.proc is not None
                    r = drive(tg, tg.port, tg.credentials, op, names, args, tg.proc.pid, profile_out=prof)
                    runs[op][t].append(r)
                    lat = r.get("latency_ms", {})
                    log(f"  {r['throughput_rps']:,.0f} req/s  p50 {lat.get('p50', float('nan')):.2f} ms  "
                        f"p99 {lat.get('p99', float('nan')):.2f} ms  errors {r['errors']}  "
                        f"server CPU {100 * r.get('server_cpu_util', 0):.0f}% "
                        f"({r.get('server_cpu_us_per_request', 0):,.0f} µs/req, "
                        f"{r.get('server_context_switches_per_request', 0):.1f} ctx switches/req, "
                        f"{100 * r.get('server_kernel_share_of_cpu', 0):.0f}% in kernel)  "
                        f"generator CPU {100 * r['generator_cpu_util']:.0f}%")
                    if "audit_writer" in r:
                        a = r["audit_writer"]
                        log(f"  audit writer: {a['events']:,.0f} events in {a['batches']:,.0f} commits "
                            f"({a['events_per_batch']:.1f} per commit, {a['commit_ms_mean']:.2f} ms per commit)")
                    if r["error_samples"]:
                        log(f"  first errors: {r['error_samples'][:2]}")
                    if "profile" in r:
                        print_profile(r["profile"])
    finally:
        for t in targets.values():
            t.stop()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    meta["machine"]["loadavg_after"] = os.getloadavg()
    meta["machine"]["cpu_pressure_after"] = _pressure()
    summary = summarize(runs)
    md = table(summary, ceiling)
    out = args.output or RESULTS / f"{started:%Y%m%dT%H%M%S}-{'-'.join(args.ops)}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "summary": summary, "generator_ceiling": ceiling, "runs": runs,
                               "markdown": md}, indent=2, default=str))
    print(md)
    print(f"\nresults: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0


def print_profile(p: dict[str, Any]) -> None:
    if "error" in p:
        log(f"  profile failed: {p['error']}")
        return
    log(f"  profile: {p['samples']} busy samples ({p.get('idle_samples_excluded', 0)} idle left out), "
        f"stacks in {p.get('collapsed_stacks')}")
    print("  by thread: " + ", ".join(f"{k} {v}%" for k, v in p.get("threads", [])), file=sys.stderr)
    print("  top self time:", file=sys.stderr)
    for f, pct in p.get("self", [])[:20]:
        print(f"    {pct:5.1f}%  {f}", file=sys.stderr)
    print("  top inclusive time:", file=sys.stderr)
    for f, pct in p.get("inclusive", [])[:40]:
        print(f"    {pct:5.1f}%  {f}", file=sys.stderr)


def _fs_of(path: Path) -> str:
    try:
        out = subprocess.run(["df", "-T", str(path)], capture_output=True, text=True, timeout=10).stdout
        return out.splitlines()[1].split()[1]
    except (OSError, IndexError):
        return "?"

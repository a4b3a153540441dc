"""A throwaway PostgreSQL cluster on 127.0.0.1 for the test session.

initdb into a fresh temporary directory, pg_ctl start on a free port with the
unix socket in that directory too; every strongroom server under test gets a
database of its own (CREATE DATABASE is a file copy of template1: ~0.1 s).
PostgreSQL refuses to run as root, so as root the cluster runs as the
`postgres` system user (or `nobody`) and its directory is handed to that user.
Durability is switched off (fsync, synchronous_commit): tests kill strongroom
nodes, never the database, so nothing they check depends on it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

SUPERUSER = "postgres"


def find_bindir() -> Path | None:
    """The newest /usr/lib/postgresql/*/bin, else the directory of initdb on PATH."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    return None


def _run_as() -> str | None:
    """The account the cluster runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root, and neither a postgres nor a nobody account exists")


@dataclass
class Cluster:
    bindir: Path
    root: Path
    port: int
    user: str | None = field(default_factory=_run_as)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _cmd(self, *args: str) -> list[str]:
        if self.user is None:
            return list(args)
        return ["runuser", "-u", self.user, "--", *args]

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        env = {**os.environ, "LC_ALL": "C"}
        subprocess.run(self._cmd(str(self.bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
                                 "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"),
                       check=True, capture_output=True, env=env, cwd=self.root)
        options = " ".join([
            f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-c unix_socket_directories={self.root}",
            "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
            "-c max_connections=300", "-c shared_buffers=64MB",
        ])
        subprocess.run(self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
                                 "-o", options, "-w", "-t", "60", "start"),
                       check=True, capture_output=True, env=env, cwd=self.root)

    def stop(self) -> None:
        subprocess.run(self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"),
                       capture_output=True, cwd=self.root)
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str, database: str = "postgres") -> list[tuple[object, ...]]:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            cur = conn.execute(sql)  # type: ignore[arg-type]
            return list(cur.fetchall()) if cur.description else []

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        name = "sr_" + uuid.uuid4().hex[:12]
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def database_files(self, url: str) -> list[Path]:
        """The files holding one database (after a checkpoint), and the write-ahead log."""
        name = url.rsplit("/", 1)[1]
        self.execute("CHECKPOINT")
        [(oid,)] = self.execute(f"SELECT oid FROM pg_database WHERE datname = '{name}'")
        files = [p for p in (self.data / "base" / str(oid)).iterdir() if p.is_file()]
        return files + [p for p in (self.data / "pg_wal").iterdir() if p.is_file()]


def start_cluster(bindir: Path, port: int) -> Cluster:
    cluster = Cluster(bindir, Path(tempfile.mkdtemp(prefix="strongroom-pg-")), port)
    try:
        cluster.start()
    except subprocess.CalledProcessError as exc:
        log = (cluster.root / "log").read_text(errors="replace") if (cluster.root / "log").exists() else ""
        cluster.stop()
        raise RuntimeError(f"PostgreSQL did not start: {exc.stderr!r} {log}") from None
    return cluster

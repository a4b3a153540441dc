"""Throwaway MariaDB and Redis servers on 127.0.0.1 for rotation tests (PostgreSQL: tests/postgres.py).

As root, mariadbd runs as the `mysql` account (it refuses root); its directory is handed over.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class MariaDB:
    root: Path
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def socket(self) -> str:
        return str(self.root / "sock")

    def admin(self) -> Any:
        import pymysql

        return pymysql.connect(unix_socket=self.socket, user="root", autocommit=True)

    def execute(self, *statements: str) -> None:
        conn = self.admin()
        try:
            with conn.cursor() as cur:
                for s in statements:
                    cur.execute(s)
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def start_mariadb(mariadbd: str, install_db: str, port: int) -> MariaDB:
    root = Path(tempfile.mkdtemp(prefix="strongroom-maria-"))
    user = None
    if os.geteuid() == 0:
        user = "mysql"
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    args = [f"--datadir={root / 'data'}"] + ([f"--user={user}"] if user else [])
    subprocess.run([install_db, *args, "--auth-root-authentication-method=normal", "--skip-test-db"],
                   check=True, capture_output=True, timeout=120)
    proc = subprocess.Popen(
        [mariadbd, "--no-defaults", *args, f"--port={port}", "--bind-address=127.0.0.1",
         f"--socket={root / 'sock'}", f"--pid-file={root / 'pid'}", "--skip-name-resolve",
         "--innodb-flush-log-at-trx-commit=0", f"--log-error={root / 'err.log'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = MariaDB(root, port, proc)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mariadbd exited: {(root / 'err.log').read_text(errors='replace')[-2000:]}")
        try:
            db.admin().close()
            break
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.2)
    else:
        db.stop()
        raise RuntimeError("mariadbd did not start in 60 s")
    db.execute("DELETE FROM mysql.global_priv WHERE User = ''", "FLUSH PRIVILEGES")  # anonymous users
    return db


@dataclass
class Redis:
    port: int
    proc: subprocess.Popen[bytes]
    root: Path

    def admin(self) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        shutil.rmtree(self.root, ignore_errors=True)


def start_redis(redis_server: str, port: int) -> Redis:
    root = Path(tempfile.mkdtemp(prefix="strongroom-redis-"))
    proc = subprocess.Popen([redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    r = Redis(port, proc, root)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            r.admin().ping()
            return r
        except Exception:  # noqa: BLE001 - not up yet
            if proc.poll() is not None:
                raise RuntimeError("redis-server exited") from None
            time.sleep(0.1)
    r.stop()
    raise RuntimeError("redis-server did not start in 30 s")

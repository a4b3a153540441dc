"""Database engines for the built-in rotators: log in, change passwords, create users.

Drivers are imported when first used, so a deployment needs only those it rotates:
psycopg (PostgreSQL), PyMySQL (MySQL, MariaDB), redis (Redis ACL users).
"""

from __future__ import annotations

import re
from typing import Any

CONNECT_TIMEOUT = 5


class Postgres:
    exclude_characters = ":/@\"'\\"

    def login(self, creds: dict[str, Any]) -> Any:
        import psycopg

        try:
            return psycopg.connect(host=creds["host"], port=int(creds.get("port", 5432)), user=creds["username"],
                                   password=creds["password"], dbname=creds.get("dbname") or "postgres",
                                   connect_timeout=CONNECT_TIMEOUT, autocommit=True)
        except psycopg.OperationalError:
            return None

    def set_own_password(self, conn: Any, creds: dict[str, Any], password: str) -> None:
        from psycopg import sql

        # Literal, not a bind parameter: utility statements such as ALTER ROLE take no parameters.
        conn.execute(sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
            sql.Identifier(creds["username"]), sql.Literal(password)))

    def set_user_password(self, master: Any, template_user: str, creds: dict[str, Any]) -> None:
        from psycopg import sql

        user = sql.Identifier(creds["username"])
        exists = master.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (creds["username"],)).fetchone()
        if not exists:
            master.execute(sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD {}").format(
                user, sql.Literal(creds["password"])))
            # The clone gets what the original has: membership in it, and in every role it is in.
            master.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(template_user), user))
        else:
            master.execute(sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(
                user, sql.Literal(creds["password"])))

    def check(self, conn: Any) -> None:
        conn.execute("SELECT 1").fetchone()

    def close(self, conn: Any) -> None:
        conn.close()


_IDENTIFIED = re.compile(r"\s+IDENTIFIED\s+(BY|VIA|WITH)\s+.*$", re.IGNORECASE)


class MySQL:
    exclude_characters = "/@\"'\\"

    def login(self, creds: dict[str, Any]) -> Any:
        import pymysql

        try:
            return pymysql.connect(host=creds["host"], port=int(creds.get("port", 3306)), user=creds["username"],
                                   password=creds["password"], database=creds.get("dbname") or None,
                                   connect_timeout=CONNECT_TIMEOUT, autocommit=True)
        except pymysql.err.OperationalError:
            return None

    def set_own_password(self, conn: Any, creds: dict[str, Any], password: str) -> None:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            if "mariadb" in str(cur.fetchone()[0]).lower():
                # MariaDB wants the CREATE USER privilege for ALTER USER, even on oneself; not SET PASSWORD.
                cur.execute("SET PASSWORD = PASSWORD(%s)", (password,))
            else:
                cur.execute("ALTER USER CURRENT_USER() IDENTIFIED BY %s", (password,))

    def set_user_password(self, master: Any, template_user: str, creds: dict[str, Any]) -> None:
        user = creds["username"]
        with master.cursor() as cur:
            cur.execute("SELECT host FROM mysql.user WHERE user = %s", (template_user,))
            hosts = [r[0] for r in cur.fetchall()] or ["%"]
            for host in hosts:
                cur.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (user, host, creds["password"]))
                cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", (user, host, creds["password"]))
                # The clone gets the original's privileges: replay its grants for the new name.
                cur.execute("SHOW GRANTS FOR %s@%s", (template_user, host))
                for (grant,) in cur.fetchall():
                    if grant.upper().startswith("GRANT USAGE ON *.*"):
                        continue
                    grant = _IDENTIFIED.sub("", grant)
                    grant = re.sub(r"\sTO\s+[`']?" + re.escape(template_user) + r"[`']?@",
                                   f" TO `{user}`@", grant, count=1)
                    cur.execute(grant)  # no parameters: PyMySQL leaves % alone

    def check(self, conn: Any) -> None:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()

    def close(self, conn: Any) -> None:
        conn.close()


class Redis:
    exclude_characters = ":/@\"'\\ "

    def login(self, creds: dict[str, Any]) -> Any:
        import redis

        conn = redis.Redis(host=creds["host"], port=int(creds.get("port", 6379)), username=creds["username"],
                           password=creds["password"], socket_connect_timeout=CONNECT_TIMEOUT,
                           socket_timeout=CONNECT_TIMEOUT, ssl=bool(creds.get("ssl", False)))
        try:
            conn.ping()
        except (redis.AuthenticationError, redis.ResponseError, redis.ConnectionError):
            conn.close()
            return None
        return conn

    def set_own_password(self, conn: Any, creds: dict[str, Any], password: str) -> None:
        # resetpass drops every old password: the old one stops working at once, as for SQL users.
        conn.execute_command("ACL", "SETUSER", creds["username"], "resetpass", ">" + password)

    def set_user_password(self, master: Any, template_user: str, creds: dict[str, Any]) -> None:
        rules: list[str] = []
        for line in master.execute_command("ACL", "LIST"):
            parts = (line.decode() if isinstance(line, bytes) else line).split()
            if len(parts) > 2 and parts[0] == "user" and parts[1] == template_user:
                # Copy the permissions, not the passwords (#hash and >plain entries).
                rules = [p for p in parts[2:] if not p.startswith(("#", ">", "<", "!")) and p != "nopass"]
        master.execute_command("ACL", "SETUSER", creds["username"], "reset", *rules, "on", "resetpass",
                               ">" + creds["password"])

    def check(self, conn: Any) -> None:
        conn.ping()

    def close(self, conn: Any) -> None:
        conn.close()


ENGINES: dict[str, Any] = {"postgres": Postgres(), "postgresql": Postgres(), "mysql": MySQL(),
                           "mariadb": MySQL(), "redis": Redis()}

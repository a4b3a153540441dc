"""Built-in rotators against real PostgreSQL, MariaDB and Redis servers on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REQUIRE_SERVICES, Server, free_port, need_binary
from tests.databases import MariaDB, Redis, start_mariadb, start_redis
from tests.e2e.rotation_support import rotated, rotation_server, use_profile_of, wait_for
from tests.postgres import Cluster, find_bindir, start_cluster

pytestmark = pytest.mark.services


def _need_module(name: str) -> None:
    try:
        __import__(name)
    except ImportError:
        if REQUIRE_SERVICES:
            pytest.fail(f"needs the {name} module")
        pytest.skip(f"needs the {name} module")


@pytest.fixture(scope="module")
def rserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = rotation_server(tmp_path_factory.mktemp("dbrotation"))
    with use_profile_of(srv):
        yield srv
    srv.stop()


@pytest.fixture(scope="module")
def pg() -> Iterator[Cluster]:
    bindir = find_bindir() or Path(need_binary("initdb")).resolve().parent
    _need_module("psycopg")
    cluster = start_cluster(bindir, free_port())
    # Passwords must matter for rotated users (the superuser strongroom's tests use stays trusted).
    hba = cluster.data / "pg_hba.conf"
    hba.write_text("local all all trust\nhost all postgres 127.0.0.1/32 trust\n"
                   "host all all 127.0.0.1/32 scram-sha-256\n")
    cluster.execute("SELECT pg_reload_conf()")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def maria() -> Iterator[MariaDB]:
    mariadbd = need_binary("mariadbd", "mysqld")
    install = need_binary("mariadb-install-db", "mysql_install_db")
    _need_module("pymysql")
    db = start_mariadb(mariadbd, install, free_port())
    yield db
    db.stop()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[Redis]:
    binary = need_binary("redis-server")
    _need_module("redis")
    r = start_redis(binary, free_port())
    yield r
    r.stop()


# -- logging in, independently of the rotators' own code ------------------------------------------
def pg_login(creds: dict[str, Any]) -> bool:
    import psycopg

    try:
        with psycopg.connect(host=creds["host"], port=creds["port"], user=creds["username"],
                             password=creds["password"], dbname=creds["dbname"], connect_timeout=5) as c:
            c.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


def maria_login(creds: dict[str, Any]) -> bool:
    import pymysql

    try:
        pymysql.connect(host=creds["host"], port=creds["port"], user=creds["username"],
                        password=creds["password"], database=creds["dbname"], connect_timeout=5).close()
        return True
    except pymysql.err.OperationalError:
        return False


def redis_login(creds: dict[str, Any]) -> bool:
    import redis

    try:
        return bool(redis.Redis(host=creds["host"], port=creds["port"], username=creds["username"],
                                password=creds["password"], socket_timeout=5).ping())
    except (redis.AuthenticationError, redis.ResponseError):
        return False


def builtin_arn(server: Server, engine: str, strategy: str) -> str:
    sm = server.client()
    account = server.client("sts").get_caller_identity()["Account"]
    return f"arn:aws:lambda:{sm.meta.region_name}:{account}:function:strongroom-builtin-{engine}-{strategy}"


def current(sm: Any, name: str) -> dict[str, Any]:
    return dict(json.loads(sm.get_secret_value(SecretId=name)["SecretString"]))


def rotate_and_wait(server: Server, sm: Any, name: str) -> None:
    since = time.time()
    sm.rotate_secret(SecretId=name)
    wait_for(rotated(sm, name, since - 0.5), timeout=60, what=f"rotation of {name}", server=server)


def single_user(server: Server, engine: str, creds: dict[str, Any], login: Callable[[dict[str, Any]], bool]) -> None:
    sm = server.client()
    name = f"db/{engine}/{uuid.uuid4().hex[:6]}"
    sm.create_secret(Name=name, SecretString=json.dumps(creds))
    assert login(creds)
    since = time.time()
    sm.rotate_secret(SecretId=name, RotationLambdaARN=builtin_arn(server, engine, "single-user"))
    wait_for(rotated(sm, name, since - 0.5), timeout=60, what="rotation", server=server)
    new = current(sm, name)
    assert new["password"] != creds["password"] and new["username"] == creds["username"]
    assert login(new), "the new password logs in"
    assert not login(creds), "the old password no longer logs in"
    rotate_and_wait(server, sm, name)  # again: rotating from a rotated secret works too
    assert login(current(sm, name)) and not login(new)


def alternating(server: Server, engine: str, creds: dict[str, Any], master: dict[str, Any],
                login: Callable[[dict[str, Any]], bool], rotations: int = 3) -> None:
    sm = server.client()
    tag = uuid.uuid4().hex[:6]
    master_arn = sm.create_secret(Name=f"db/{engine}/master-{tag}", SecretString=json.dumps(master))["ARN"]
    name = f"db/{engine}/app-{tag}"
    sm.create_secret(Name=name, SecretString=json.dumps({**creds, "masterarn": master_arn}))
    sm.rotate_secret(SecretId=name, RotationLambdaARN=builtin_arn(server, engine, "alternating-users"),
                     RotateImmediately=False, RotationRules={"AutomaticallyAfterDays": 30})
    failures: list[str] = []
    logins = [0]
    stop = threading.Event()
    reader = server.client()

    def read_loop() -> None:
        deadline = time.monotonic() + 120  # bounded, whatever happens to the test
        while not stop.is_set() and time.monotonic() < deadline:
            value = current(reader, name)
            if login(value):
                logins[0] += 1
            else:
                failures.append(value["username"])

    thread = threading.Thread(target=read_loop, daemon=True)
    thread.start()
    users = []
    try:
        for _ in range(rotations):
            rotate_and_wait(server, sm, name)
            users.append(current(sm, name)["username"])
    finally:
        stop.set()
        thread.join(timeout=30)
    assert failures == [], f"logins failed for {failures}"
    assert logins[0] > 0
    base = creds["username"]
    assert users == [f"{base}_clone", base, f"{base}_clone"][:rotations]


# -- PostgreSQL ----------------------------------------------------------------------------------------
def _pg_user(pg: Cluster, user: str, password: str, db: str, superuser: bool = False) -> None:
    pg.execute(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'" + (" SUPERUSER" if superuser else " CREATEROLE"))
    if not pg.execute(f"SELECT 1 FROM pg_database WHERE datname = '{db}'"):
        pg.execute(f"CREATE DATABASE {db}")


def test_postgres_single_user(rserver: Server, pg: Cluster) -> None:
    user = f"app_{uuid.uuid4().hex[:6]}"
    _pg_user(pg, user, "start-pw-1", "appdb")
    creds = {"engine": "postgres", "host": "127.0.0.1", "port": pg.port, "username": user,
             "password": "start-pw-1", "dbname": "appdb"}
    single_user(rserver, "postgres", creds, pg_login)


def test_postgres_alternating_users_never_fail_a_login(rserver: Server, pg: Cluster) -> None:
    user, admin = f"alt_{uuid.uuid4().hex[:6]}", f"adm_{uuid.uuid4().hex[:6]}"
    _pg_user(pg, user, "start-pw-2", "appdb")
    _pg_user(pg, admin, "admin-pw", "appdb", superuser=True)
    creds = {"engine": "postgres", "host": "127.0.0.1", "port": pg.port, "username": user,
             "password": "start-pw-2", "dbname": "appdb"}
    alternating(rserver, "postgres", creds, {**creds, "username": admin, "password": "admin-pw"}, pg_login)


# -- MariaDB ---------------------------------------------------------------------------------------------
def test_mariadb_single_user(rserver: Server, maria: MariaDB) -> None:
    user = f"app_{uuid.uuid4().hex[:6]}"
    maria.execute("CREATE DATABASE IF NOT EXISTS appdb", f"CREATE USER '{user}'@'%' IDENTIFIED BY 'start-pw-1'",
                  f"GRANT ALL ON appdb.* TO '{user}'@'%'")
    creds = {"engine": "mysql", "host": "127.0.0.1", "port": maria.port, "username": user,
             "password": "start-pw-1", "dbname": "appdb"}
    single_user(rserver, "mysql", creds, maria_login)


def test_mariadb_alternating_users_never_fail_a_login(rserver: Server, maria: MariaDB) -> None:
    user, admin = f"alt_{uuid.uuid4().hex[:6]}", f"adm_{uuid.uuid4().hex[:6]}"
    maria.execute("CREATE DATABASE IF NOT EXISTS appdb", f"CREATE USER '{user}'@'%' IDENTIFIED BY 'start-pw-2'",
                  f"GRANT ALL ON appdb.* TO '{user}'@'%'",
                  f"CREATE USER '{admin}'@'%' IDENTIFIED BY 'admin-pw'",
                  f"GRANT ALL ON *.* TO '{admin}'@'%' WITH GRANT OPTION")
    creds = {"engine": "mariadb", "host": "127.0.0.1", "port": maria.port, "username": user,
             "password": "start-pw-2", "dbname": "appdb"}
    alternating(rserver, "mariadb", creds, {**creds, "username": admin, "password": "admin-pw"}, maria_login)


# -- Redis -------------------------------------------------------------------------------------------------
def test_redis_single_user(rserver: Server, redis_server: Redis) -> None:
    user = f"app_{uuid.uuid4().hex[:6]}"
    redis_server.admin().execute_command("ACL", "SETUSER", user, "on", ">start-pw-1", "~*", "&*", "+@all")
    creds = {"engine": "redis", "host": "127.0.0.1", "port": redis_server.port, "username": user,
             "password": "start-pw-1"}
    single_user(rserver, "redis", creds, redis_login)


def test_redis_alternating_users_never_fail_a_login(rserver: Server, redis_server: Redis) -> None:
    user, admin = f"alt_{uuid.uuid4().hex[:6]}", f"adm_{uuid.uuid4().hex[:6]}"
    r = redis_server.admin()
    r.execute_command("ACL", "SETUSER", user, "on", ">start-pw-2", "~app:*", "+get", "+set", "+ping")
    r.execute_command("ACL", "SETUSER", admin, "on", ">admin-pw", "~*", "&*", "+@all")
    creds = {"engine": "redis", "host": "127.0.0.1", "port": redis_server.port, "username": user,
             "password": "start-pw-2"}
    alternating(rserver, "redis", creds, {**creds, "username": admin, "password": "admin-pw"}, redis_login)


# -- a rotation function written for AWS Lambda, run unchanged --------------------------------------------
FUNCTIONS = Path(__file__).with_name("functions")


def test_aws_template_contract_function_rotates_postgres(rserver: Server, pg: Cluster) -> None:
    """AWS's single-user PostgreSQL template's contract, with pg8000 installed from its requirements.txt."""
    from botocore.config import Config
    from botocore.exceptions import ClientError

    from tests.e2e.rotation_support import allow_secrets_manager, execution_role, zipped

    source = FUNCTIONS / "postgres_single_user"
    code = zipped({f.name: f.read_text() for f in source.iterdir() if f.is_file()})
    assert b"pg8000" in (source / "requirements.txt").read_bytes()
    lam = rserver.client("lambda", config=Config(read_timeout=600, retries={"max_attempts": 0}))
    name = f"pg-template-{uuid.uuid4().hex[:6]}"
    try:
        fn = lam.create_function(FunctionName=name, Runtime="python3.12", Role=execution_role(rserver),
                                 Handler="lambda_function.lambda_handler", Code={"ZipFile": code}, Timeout=60)
    except ClientError as err:
        message = f"pg8000 (the function's requirements.txt) could not be installed: {err}"
        if REQUIRE_SERVICES or "requirements.txt" not in str(err):
            pytest.fail(message)
        pytest.skip(message)
    allow_secrets_manager(rserver, name)
    user = f"tpl_{uuid.uuid4().hex[:6]}"
    _pg_user(pg, user, "start-pw-3", "appdb")
    creds = {"engine": "postgres", "host": "127.0.0.1", "port": pg.port, "username": user,
             "password": "start-pw-3", "dbname": "appdb"}
    sm = rserver.client()
    secret = f"db/template/{uuid.uuid4().hex[:6]}"
    sm.create_secret(Name=secret, SecretString=json.dumps(creds))
    since = time.time()
    sm.rotate_secret(SecretId=secret, RotationLambdaARN=fn["FunctionArn"],
                     RotationRules={"AutomaticallyAfterDays": 30})
    wait_for(rotated(sm, secret, since - 0.5), timeout=120, what="the template's rotation", server=rserver)
    new = current(sm, secret)
    assert new["password"] != creds["password"] and new["username"] == user
    assert not set('/@"\'\\') & set(new["password"]), "the template's ExcludeCharacters were honoured"
    assert pg_login(new), "the new password logs in"
    assert not pg_login(creds), "the old password no longer logs in"
    previous = json.loads(sm.get_secret_value(SecretId=secret, VersionStage="AWSPREVIOUS")["SecretString"])
    assert previous["password"] == "start-pw-3"

"""Rotation through Python functions registered with the Lambda-compatible API."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Server, serving, strongroom
from tests.e2e.rotation_support import (
    allow_secrets_manager,
    create_rotator,
    execution_role,
    rotated,
    rotation_server,
    use_profile_of,
    wait_for,
    zipped,
)


@pytest.fixture(scope="module")
def rserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serving(rotation_server(tmp_path_factory.mktemp("rotation")))


@pytest.fixture(scope="module")
def role(rserver: Server) -> str:
    return execution_role(rserver)


def test_lambda_api_create_get_list_update_delete(rserver: Server, role: str) -> None:
    lam = rserver.client("lambda")
    name = f"fn-{uuid.uuid4().hex[:8]}"
    arn = create_rotator(rserver, name, role, {"APP_A": "1"})
    assert arn.endswith(f":function:{name}") and arn.startswith("arn:aws:lambda:")
    got = lam.get_function(FunctionName=name)["Configuration"]
    assert got["Handler"] == "lambda_function.lambda_handler" and got["Environment"]["Variables"] == {"APP_A": "1"}
    assert name in [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    lam.update_function_configuration(FunctionName=name, Timeout=30, Environment={"Variables": {"APP_B": "2"}})
    assert lam.get_function(FunctionName=name)["Configuration"]["Timeout"] == 30
    lam.update_function_code(FunctionName=name, ZipFile=zipped({"lambda_function.py":
                                                                "def lambda_handler(e, c):\n    return e\n"}))
    out = lam.invoke(FunctionName=name, Payload=json.dumps({"x": 1}).encode())
    assert json.loads(out["Payload"].read()) == {"x": 1} and "FunctionError" not in out
    stmt = lam.add_permission(FunctionName=name, StatementId="sm", Action="lambda:InvokeFunction",
                              Principal="secretsmanager.amazonaws.com")
    assert json.loads(stmt["Statement"])["Sid"] == "sm"
    with pytest.raises(ClientError) as exc:
        create_rotator(rserver, name, role)
    assert exc.value.response["Error"]["Code"] == "ResourceConflictException"
    lam.delete_function(FunctionName=name)
    with pytest.raises(ClientError) as exc:
        lam.get_function(FunctionName=name)
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_invoke_reports_handler_errors_and_timeouts(rserver: Server, role: str) -> None:
    lam = rserver.client("lambda")
    name = f"fn-{uuid.uuid4().hex[:8]}"
    code = "import time\ndef lambda_handler(e, c):\n    if e.get('sleep'):\n        time.sleep(10)\n" \
           "    raise KeyError('nope')\n"
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=role, Handler="lambda_function.lambda_handler",
                        Code={"ZipFile": zipped({"lambda_function.py": code})}, Timeout=1)
    out = lam.invoke(FunctionName=name, Payload=b"{}")
    assert out["FunctionError"] == "Unhandled"
    assert json.loads(out["Payload"].read())["errorType"] == "KeyError"
    out = lam.invoke(FunctionName=name, Payload=b'{"sleep": true}')
    assert "timed out" in json.loads(out["Payload"].read())["errorMessage"]


def test_python_function_rotates_a_secret(rserver: Server, role: str) -> None:
    sm = rserver.client()
    arn = create_rotator(rserver, f"fn-{uuid.uuid4().hex[:8]}", role)
    name = f"rot/{uuid.uuid4().hex[:8]}"
    sm.create_secret(Name=name, SecretString="initial")
    sm.rotate_secret(SecretId=name, RotationLambdaARN=arn, RotationRules={"AutomaticallyAfterDays": 30})
    wait_for(rotated(sm, name), what="rotation")
    value = sm.get_secret_value(SecretId=name)
    assert value["SecretString"].startswith("rotated-")
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == "initial"
    described = sm.describe_secret(SecretId=name)
    assert described["NextRotationDate"] > described["LastRotatedDate"]
    rows = json.loads(strongroom("rotation", "status", "--json", env=rserver.env).stdout)
    assert [r["Status"] for r in rows if r["Name"] == name] == ["succeeded"]


@pytest.mark.parametrize("step", ["createSecret", "setSecret", "testSecret", "finishSecret"])
def test_failing_step_leaves_awscurrent_working(rserver: Server, role: str, step: str) -> None:
    sm = rserver.client()
    arn = create_rotator(rserver, f"fn-{uuid.uuid4().hex[:8]}", role, {"FAIL_STEP": step})
    name = f"rot/{uuid.uuid4().hex[:8]}"
    sm.create_secret(Name=name, SecretString="keep-me")
    sm.rotate_secret(SecretId=name, RotationLambdaARN=arn)

    def failed_twice() -> bool:
        out = strongroom("rotation", "status", "--json", env=rserver.env).stdout
        rows = [r for r in json.loads(out) if r["Name"] == name]
        return bool(rows) and rows[0]["Attempts"] >= 2 and f"failing on purpose at {step}" in rows[0]["LastError"]

    wait_for(failed_twice, what="two failed attempts")
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "keep-me"
    assert "LastRotatedDate" not in sm.describe_secret(SecretId=name)
    with pytest.raises(ClientError) as exc:  # the failed rotation is still pending, retried later
        sm.rotate_secret(SecretId=name, RotationLambdaARN=arn)
    assert exc.value.response["Error"]["Code"] == "InvalidRequestException"


def test_server_killed_mid_rotation_finishes_after_restart(tmp_path: Path) -> None:
    srv = rotation_server(tmp_path)
    with use_profile_of(srv):
        _kill_and_restart(srv, tmp_path)


def _kill_and_restart(srv: Server, tmp_path: Path) -> None:
    from tests.conftest import start_server
    from tests.e2e.rotation_support import FAST_ROTATION

    try:
        sm = srv.client()
        marker = tmp_path / "paused"
        arn = create_rotator(srv, "pausing", execution_role(srv),
                             {"PAUSE_MARKER": str(marker), "PAUSE_SECONDS": "4"})
        sm.create_secret(Name="killed", SecretString="before")
        sm.rotate_secret(SecretId="killed", RotationLambdaARN=arn)
        wait_for(marker.exists, what="the function to reach setSecret")
        srv.proc.kill()  # SIGKILL mid-step: nothing gets to clean up
        srv.proc.wait()
        srv = start_server(tmp_path, init=False, extra_env=FAST_ROTATION)
        sm = srv.client()
        wait_for(rotated(sm, "killed"), what="the rotation to resume and finish")
        assert sm.get_secret_value(SecretId="killed")["SecretString"].startswith("rotated-")
        versions = sm.list_secret_version_ids(SecretId="killed", IncludeDeprecated=True)["Versions"]
        assert len(versions) == 2  # one rotation, not two
    finally:
        srv.stop()


def test_aws_cli_uploads_a_function_that_rotates(rserver: Server, role: str, tmp_path: Path) -> None:
    aws = Path(sys.executable).with_name("aws")
    if not aws.exists():
        pytest.skip("needs the aws CLI in the virtualenv")
    from tests.e2e.rotation_support import ROTATOR

    (tmp_path / "fn.zip").write_bytes(zipped({"lambda_function.py": ROTATOR}))
    name = f"cli-{uuid.uuid4().hex[:8]}"
    proc = subprocess.run([str(aws), "--profile", "strongroom", "--endpoint-url", rserver.url, "lambda",
                           "create-function", "--function-name", name, "--runtime", "python3.11",
                           "--role", role, "--handler", "lambda_function.lambda_handler",
                           "--zip-file", f"fileb://{tmp_path / 'fn.zip'}", "--timeout", "60"],
                          env=rserver.env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    arn = json.loads(proc.stdout)["FunctionArn"]
    proc = subprocess.run([str(aws), "--profile", "strongroom", "--endpoint-url", rserver.url, "lambda",
                           "add-permission", "--function-name", name, "--statement-id", "SecretsManagerAccess",
                           "--action", "lambda:InvokeFunction", "--principal", "secretsmanager.amazonaws.com"],
                          env=rserver.env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    sm = rserver.client()
    secret = f"rot/{uuid.uuid4().hex[:8]}"
    sm.create_secret(Name=secret, SecretString="v1")
    since = time.time()
    sm.rotate_secret(SecretId=secret, RotationLambdaARN=arn)
    wait_for(rotated(sm, secret, since - 1), what="rotation")
    assert sm.get_secret_value(SecretId=secret)["SecretString"].startswith("rotated-")


def test_webhook_function_receives_signed_events_and_rotates(rserver: Server, role: str) -> None:
    import hashlib
    import hmac
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    sm = rserver.client()
    seen: list[str] = []
    bad: list[str] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            mac = hmac.new(b"hook-key", self.headers["X-Strongroom-Timestamp"].encode() + b"." + body,
                           hashlib.sha256).hexdigest()
            if self.headers.get("X-Strongroom-Signature") != "sha256=" + mac:
                bad.append(self.headers.get("X-Strongroom-Signature", ""))
                self.send_response(401)
                self.end_headers()
                return
            event = json.loads(body)
            seen.append(event["Step"])
            arn, token = event["SecretId"], event["ClientRequestToken"]
            if event["Step"] == "createSecret":
                sm.put_secret_value(SecretId=arn, ClientRequestToken=token, SecretString="from-webhook",
                                    VersionStages=["AWSPENDING"])
            elif event["Step"] == "finishSecret":
                stages = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
                cur = next(v for v, s in stages.items() if "AWSCURRENT" in s)
                if cur != token:
                    sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token,
                                                   RemoveFromVersionId=cur)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        name = f"hook-{uuid.uuid4().hex[:6]}"
        created = strongroom("functions", "create", name, "--role", role, "--webhook-url",
                             f"http://127.0.0.1:{httpd.server_port}/rotate", "--webhook-secret", "hook-key",
                             "--allow-secrets-manager", "--endpoint-url", rserver.url, env=rserver.env)
        arn = created.stdout.strip()
        assert name in strongroom("functions", "list", "--endpoint-url", rserver.url, env=rserver.env).stdout
        secret = f"rot/{uuid.uuid4().hex[:8]}"
        sm.create_secret(Name=secret, SecretString="v1")
        sm.rotate_secret(SecretId=secret, RotationLambdaARN=arn)
        wait_for(rotated(sm, secret), what="webhook rotation", server=rserver)
        assert seen == ["createSecret", "setSecret", "testSecret", "finishSecret"] and bad == []
        assert sm.get_secret_value(SecretId=secret)["SecretString"] == "from-webhook"
        strongroom("functions", "delete", name, "--endpoint-url", rserver.url, env=rserver.env)
    finally:
        httpd.shutdown()


def test_functions_cli_invokes_python_code(rserver: Server, role: str, tmp_path: Path) -> None:
    src = tmp_path / "lambda_function.py"
    src.write_text("import os\ndef lambda_handler(e, c):\n"
                   "    return {'got': e, 'region': os.environ['AWS_REGION'], 'key': os.environ['AWS_ACCESS_KEY_ID'][:4]}\n")
    name = f"cli-{uuid.uuid4().hex[:6]}"
    strongroom("functions", "create", name, "--source", str(src), "--role", role, "--endpoint-url", rserver.url,
               env=rserver.env)
    out = strongroom("functions", "invoke", name, "--payload", '{"a": 1}', "--endpoint-url", rserver.url,
                     env=rserver.env)
    result = json.loads(out.stdout)
    assert result["got"] == {"a": 1} and result["key"] == "ASIA"  # the execution role's session credentials


def test_rotation_on_the_postgresql_backend(postgres, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import Backend, start_server
    from tests.e2e.rotation_support import FAST_ROTATION

    srv = start_server(tmp_path, backend=Backend("postgresql", postgres), extra_env=FAST_ROTATION)
    try:
        with use_profile_of(srv):
            sm = srv.client()
            arn = create_rotator(srv, "pg-backed", execution_role(srv))
            sm.create_secret(Name="on-pg", SecretString="v1")
            sm.rotate_secret(SecretId="on-pg", RotationLambdaARN=arn)
            wait_for(rotated(sm, "on-pg"), what="rotation", server=srv)
            assert sm.get_secret_value(SecretId="on-pg")["SecretString"].startswith("rotated-")
    finally:
        srv.stop()


PERMISSION_MESSAGE = ("Secrets Manager cannot invoke the specified Lambda function. Ensure that the function "
                      "policy grants access to the principal secretsmanager.amazonaws.com.")


def _status(server: Server, name: str) -> dict | None:  # type: ignore[type-arg]
    rows = [r for r in json.loads(strongroom("rotation", "status", "--json", env=server.env).stdout)
            if r["Name"] == name]
    return rows[0] if rows else None


def test_rotation_needs_the_functions_permission(rserver: Server, role: str) -> None:
    sm, lam = rserver.client(), rserver.client("lambda")
    fname = f"fn-{uuid.uuid4().hex[:8]}"
    arn = create_rotator(rserver, fname, role, allow=False)
    name = f"rot/{uuid.uuid4().hex[:8]}"
    secret_arn = sm.create_secret(Name=name, SecretString="keep-me")["ARN"]
    # A permission for Secrets Manager, but narrowed to another secret, grants nothing here.
    allow_secrets_manager(rserver, fname, SourceArn=secret_arn + "-other")
    with pytest.raises(ClientError) as refused:  # as on AWS, RotateSecret itself refuses
        sm.rotate_secret(SecretId=name, RotationLambdaARN=arn)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert refused.value.response["Error"]["Message"] == PERMISSION_MESSAGE
    assert _status(rserver, name) is None  # nothing for the engine to attempt
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "keep-me"
    with pytest.raises(ClientError) as exc:  # the function never ran: no value was created
        sm.get_secret_value(SecretId=name, VersionStage="AWSPENDING")
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert "LastRotatedDate" not in sm.describe_secret(SecretId=name)

    # GetPolicy / RemovePermission, then the permission for this very secret: the rotation goes through.
    policy = json.loads(lam.get_policy(FunctionName=fname)["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["SecretsManagerAccess"]
    lam.remove_permission(FunctionName=fname, StatementId="SecretsManagerAccess")
    with pytest.raises(ClientError) as exc:
        lam.get_policy(FunctionName=fname)
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        lam.remove_permission(FunctionName=fname, StatementId="SecretsManagerAccess")
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"
    allow_secrets_manager(rserver, fname, SourceArn=secret_arn, SourceAccount=secret_arn.split(":")[4])
    sm.rotate_secret(SecretId=name, RotationLambdaARN=arn)
    wait_for(rotated(sm, name), what="the permitted rotation", server=rserver)
    assert sm.get_secret_value(SecretId=name)["SecretString"].startswith("rotated-")


VENV_PROBE = '''
import importlib.metadata, os, sys
import boto3, jmespath

def lambda_handler(event, context):
    marker = os.path.join(sys.prefix, "probe-marker")
    existed = os.path.exists(marker)
    open(marker, "a").close()
    try:
        import sqlalchemy  # the server's, which a function must not see
        leaked = True
    except ImportError:
        leaked = False
    return {"prefix": sys.prefix, "base": sys.base_prefix, "jmespath": jmespath.__version__,
            "jmespath_meta": importlib.metadata.version("jmespath"), "boto3": boto3.__version__,
            "leaked": leaked, "marker_existed": existed, "version": VERSION}
'''


def test_requirements_go_into_a_virtualenv_that_sees_boto3_after_them(rserver: Server, role: str) -> None:
    import boto3 as server_boto3
    import jmespath as server_jmespath

    lam = rserver.client("lambda")
    name = f"venv-{uuid.uuid4().hex[:6]}"
    pinned = "1.0.0" if server_jmespath.__version__ != "1.0.0" else "0.10.0"
    files = {"requirements.txt": f"jmespath=={pinned}\n", "lambda_function.py": "VERSION = 1\n" + VENV_PROBE}
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="lambda_function.lambda_handler",
                        Code={"ZipFile": zipped(files)}, Timeout=30)
    first = json.loads(lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read())
    assert first["prefix"] != first["base"] and first["prefix"] != sys.prefix  # its own virtualenv
    assert first["jmespath"] == first["jmespath_meta"] == pinned  # its pin wins over the server's
    assert first["boto3"] == server_boto3.__version__  # boto3 without packaging it
    assert first["leaked"] is False and first["marker_existed"] is False

    # New code, same requirements: the same virtualenv, not a reinstall.
    files["lambda_function.py"] = "VERSION = 2\n" + VENV_PROBE
    lam.update_function_code(FunctionName=name, ZipFile=zipped(files))
    second = json.loads(lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read())
    assert second["version"] == 2 and second["prefix"] == first["prefix"] and second["marker_existed"] is True

    # Other requirements: another virtualenv.
    files["requirements.txt"] = ""
    lam.update_function_code(FunctionName=name, ZipFile=zipped(files))
    third = json.loads(lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read())
    assert third["prefix"] != first["prefix"] and third["jmespath"] == server_jmespath.__version__


def test_unsatisfiable_requirements_are_refused_at_upload(rserver: Server, role: str) -> None:
    lam = rserver.client("lambda")
    files = {"lambda_function.py": "def lambda_handler(e, c):\n    return 1\n",
             "requirements.txt": "strongroom-no-such-package-0d9f==1.0\n"}
    with pytest.raises(ClientError) as exc:
        lam.create_function(FunctionName=f"bad-{uuid.uuid4().hex[:6]}", Runtime="python3.12", Role=role,
                            Handler="lambda_function.lambda_handler", Code={"ZipFile": zipped(files)})
    assert exc.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert "requirements.txt" in exc.value.response["Error"]["Message"]


def test_the_execution_role_must_exist_and_trust_lambda(rserver: Server, role: str) -> None:
    lam, iam = rserver.client("lambda"), rserver.client("iam")
    account = role.split(":")[4]
    not_for_lambda = iam.create_role(RoleName=f"people-{uuid.uuid4().hex[:6]}", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"AWS": f"arn:aws:iam::{account}:root"}}]}))["Role"]["Arn"]
    code = {"ZipFile": zipped({"lambda_function.py": "def lambda_handler(e, c):\n    return 1\n"})}
    name = f"roled-{uuid.uuid4().hex[:6]}"
    other_account = "000000000000" if account != "000000000000" else "111111111111"
    for bad in (f"arn:aws:iam::{account}:role/no-such-role-{uuid.uuid4().hex[:6]}", not_for_lambda,
                role.replace(account, other_account)):
        with pytest.raises(ClientError) as exc:
            lam.create_function(FunctionName=name, Runtime="python3.12", Role=bad,
                                Handler="lambda_function.lambda_handler", Code=code)
        err = exc.value.response["Error"]
        assert (err["Code"], err["Message"]) == ("InvalidParameterValueException",
                                                 "The role defined for the function cannot be assumed by Lambda."), bad
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="lambda_function.lambda_handler",
                        Code=code)
    with pytest.raises(ClientError) as exc:
        lam.update_function_configuration(FunctionName=name, Role=not_for_lambda)
    assert exc.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert lam.get_function_configuration(FunctionName=name)["Role"] == role  # nothing changed
    lam.delete_function(FunctionName=name)


# -- one rotation at a time across server processes ------------------------------------------------------
STEP_LOGGER = '''
import json, os, time
import boto3

def lambda_handler(event, context):
    started = time.time()
    time.sleep(float(os.environ.get("STEP_SECONDS", "0.5")))  # long enough for another node to collide
    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    sm = boto3.client("secretsmanager", endpoint_url=os.environ["SECRETS_MANAGER_ENDPOINT"])
    stages = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    if step == "createSecret":
        try:
            sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
        except sm.exceptions.ResourceNotFoundException:
            sm.put_secret_value(SecretId=arn, ClientRequestToken=token, SecretString="rotated-" + token,
                                VersionStages=["AWSPENDING"])
    elif step == "finishSecret" and "AWSCURRENT" not in stages[token]:
        current = next(v for v, s in stages.items() if "AWSCURRENT" in s)
        sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token,
                                       RemoveFromVersionId=current)
    with open(os.environ["STEP_LOG"], "a") as f:  # one short line: appends do not interleave
        f.write(json.dumps({"secret": arn, "step": step, "node": os.getppid(), "start": started,
                            "end": time.time()}) + "\\n")
'''


def test_one_rotation_per_secret_across_server_processes(postgres, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from tests.conftest import start_server
    from tests.e2e.rotation_support import FAST_ROTATION

    url = postgres.create_database()
    # One rotation at a time per process: six secrets cannot all land on one node.
    env = {**FAST_ROTATION, "STRONGROOM_ROTATION_CONCURRENCY": "1"}
    nodes = [start_server(tmp_path / "node0", database_url=url, extra_env=env)]
    try:
        for i in (1, 2):  # same database, root key and configuration: three processes sharing the work
            home = tmp_path / f"node{i}"
            (home / "data").mkdir(parents=True)
            for item in nodes[0].data_dir.iterdir():
                if item.is_file() and not item.name.startswith(("strongroom.db", "admin.json")):
                    shutil.copy2(item, home / "data" / item.name)
            nodes.append(start_server(home, init=False, database_url=url, extra_env=env))
        with use_profile_of(nodes[0]):
            sm = nodes[0].client()
            lam = nodes[0].client("lambda")
            log = tmp_path / "steps.jsonl"
            name = "step-logger"
            lam.create_function(FunctionName=name, Runtime="python3.12", Role=execution_role(nodes[0]),
                                Handler="lambda_function.lambda_handler", Timeout=30,
                                Code={"ZipFile": zipped({"lambda_function.py": STEP_LOGGER})},
                                Environment={"Variables": {"STEP_LOG": str(log)}})
            allow_secrets_manager(nodes[0], name)
            arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
            secrets = [sm.create_secret(Name=f"multi/{i}", SecretString="v0")["ARN"] for i in range(6)]
            for secret in secrets:
                sm.rotate_secret(SecretId=secret, RotationLambdaARN=arn)
            for secret in secrets:
                wait_for(rotated(sm, secret), what=f"rotation of {secret}", server=nodes[0])
        lines = [json.loads(line) for line in log.read_text().splitlines()]
        for secret in secrets:
            runs = sorted((r for r in lines if r["secret"] == secret), key=lambda r: r["start"])
            assert [r["step"] for r in runs] == ["createSecret", "setSecret", "testSecret", "finishSecret"], runs
            for before, after in zip(runs, runs[1:]):
                assert before["end"] <= after["start"], f"steps of {secret} overlapped: {before} {after}"
        assert len({r["node"] for r in lines}) >= 2, "the work was shared between processes"
    finally:
        for node in nodes:
            node.stop()


# -- visibility: audit events, metrics, status and the rotation_failed alert ---------------------------
def test_steps_are_audited_outcomes_are_metrics_and_failures_alert(tmp_path: Path) -> None:
    from tests.conftest import start_server
    from tests.e2e.audit_support import Receiver, metric, scrape
    from tests.e2e.rotation_support import FAST_ROTATION

    hook = Receiver()
    strongroom("init", env={**rserver_env(tmp_path)})
    config = tmp_path / "data" / "config.toml"
    config.write_text(config.read_text() + f"""
[alerts]
retry_base_seconds = 0.2
poll_seconds = 0.1

[[alerts.webhooks]]
url = "{hook.url}"
events = ["rotation_failed"]
secret = "rotation-hook-key"
""")
    srv = start_server(tmp_path, init=False, extra_env=FAST_ROTATION)
    try:
        with use_profile_of(srv):
            sm = srv.client()
            role = execution_role(srv)
            good = create_rotator(srv, "good", role)
            bad = create_rotator(srv, "bad", role, {"FAIL_STEP": "setSecret"})
            before = scrape(srv)
            ok_arn = sm.create_secret(Name="seen/ok", SecretString="v1")["ARN"]
            sm.rotate_secret(SecretId="seen/ok", RotationLambdaARN=good)
            wait_for(rotated(sm, "seen/ok"), what="rotation", server=srv)
            bad_arn = sm.create_secret(Name="seen/bad", SecretString="keep")["ARN"]
            sm.rotate_secret(SecretId="seen/bad", RotationLambdaARN=bad)
            row = wait_for(lambda: (_status(srv, "seen/bad") or {}).get("LastError") and _status(srv, "seen/bad"),
                           what="a recorded failure")
            assert row["Status"] == "pending" and row["Step"] == "setSecret"
            assert "failing on purpose at setSecret" in row["LastError"]
            # The table form of `strongroom rotation status` shows the reason too.
            table = strongroom("rotation", "status", env={**srv.env, "COLUMNS": "400"}).stdout
            assert "seen/bad" in table and "failing on purpose at setSecret" in table

            def events(secret_arn: str) -> list[dict]:  # type: ignore[type-arg]
                rows = srv.sql("SELECT record FROM audit_events WHERE event_source = 'secretsmanager.amazonaws.com' "
                               "AND record LIKE :p ORDER BY seq", p=f'%AwsServiceEvent%{secret_arn}%')
                return [json.loads(str(r[0])) for r in rows]

            ok_events = wait_for(lambda: [e for e in events(ok_arn) if e["eventName"] == "RotationSucceeded"]
                                 and events(ok_arn), what="the audit events of the rotation")
            steps = [e["serviceEventDetails"]["step"] for e in ok_events if e["eventName"] == "RotationStep"]
            assert steps == ["createSecret", "setSecret", "testSecret", "finishSecret"]
            names = [e["eventName"] for e in ok_events]
            assert names[0] == "RotationStarted" and names[-1] == "RotationSucceeded"
            assert all(e["eventSource"] == "secretsmanager.amazonaws.com" for e in ok_events)
            bad_events = wait_for(lambda: [e for e in events(bad_arn) if e["eventName"] == "RotationFailed"],
                                  what="a RotationFailed event")
            assert bad_events[0]["serviceEventDetails"]["step"] == "setSecret"
            assert "failing on purpose" in bad_events[0]["serviceEventDetails"]["reason"]

            def alert() -> dict | None:  # type: ignore[type-arg]
                for _headers, body in hook.received:
                    found = json.loads(body)
                    if found["resource"] == bad_arn:
                        return found  # type: ignore[no-any-return]
                return None

            got = wait_for(alert, what="the rotation_failed alert")
            assert got["type"] == "rotation_failed" and got["detail"]["step"] == "setSecret"
            assert not any(json.loads(b)["resource"] == ok_arn for _, b in hook.received)

            after = scrape(srv)

            def delta(name: str, **labels: str) -> float:
                return metric(after, name, **labels) - metric(before, name, **labels)

            assert delta("strongroom_rotations_total", result="succeeded") == 1
            assert delta("strongroom_rotations_total", result="failed") >= 1
            assert delta("strongroom_rotation_steps_total", step="setSecret", result="failed") >= 1
            assert delta("strongroom_rotation_steps_total", step="finishSecret", result="succeeded") == 1
            assert delta("strongroom_rotation_duration_seconds_count") == 1
            # Never a value in the trail: neither the old nor the rotated one.
            trail = " ".join(str(r[0]) for r in srv.sql("SELECT record FROM audit_events"))
            assert sm.get_secret_value(SecretId="seen/ok")["SecretString"] not in trail
    finally:
        srv.stop()
        hook.close()


def rserver_env(tmp: Path) -> dict[str, str]:
    import os

    env = {**os.environ, "STRONGROOM_DATA_DIR": str(tmp / "data"), "AWS_CONFIG_FILE": str(tmp / "aws" / "config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "aws" / "credentials")}
    for var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "STRONGROOM_DATABASE_URL"):
        env.pop(var, None)
    return env


def test_scheduled_rotation_killed_mid_step_runs_once_in_its_window(tmp_path: Path) -> None:
    from tests.conftest import start_server
    from tests.e2e.rotation_support import FAST_ROTATION

    srv = rotation_server(tmp_path)
    try:
        with use_profile_of(srv):
            sm = srv.client()
            marker = tmp_path / "paused"
            arn = create_rotator(srv, "pausing", execution_role(srv),
                                 {"PAUSE_MARKER": str(marker), "PAUSE_SECONDS": "4"})
            sm.create_secret(Name="windowed", SecretString="before")
            sm.rotate_secret(SecretId="windowed", RotationLambdaARN=arn, RotateImmediately=False,
                             RotationRules={"ScheduleExpression": "rate(4 hours)"})
            assert not marker.exists()
            # The window opens now (a test cannot wait hours): the scheduler starts the rotation.
            srv.sql("UPDATE secrets SET next_rotation_date = :t WHERE name = 'windowed'", t=time.time() - 1)
            wait_for(marker.exists, what="the scheduled rotation to reach setSecret")
            srv.proc.kill()  # mid-step, nothing cleans up
            srv.proc.wait()
            for _ in range(2):  # restarted twice: after the kill, and once more after it finished
                srv = start_server(tmp_path, init=False, extra_env=FAST_ROTATION)
                sm = srv.client()
                wait_for(rotated(sm, "windowed"), what="the rotation to finish", server=srv)
                passes = time.monotonic() + 3  # ten scheduler passes of this process
                while time.monotonic() < passes:
                    versions = sm.list_secret_version_ids(SecretId="windowed", IncludeDeprecated=True)["Versions"]
                    assert len(versions) == 2, "one rotation in the window, not two"
                    time.sleep(0.3)
                described = sm.describe_secret(SecretId="windowed")
                assert described["NextRotationDate"].timestamp() > time.time()
                assert sm.get_secret_value(SecretId="windowed")["SecretString"].startswith("rotated-")
                srv.stop()
    finally:
        srv.stop()

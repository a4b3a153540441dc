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
    arn = create_rotator(rserver, name, role, {"A": "1"})
    assert arn.endswith(f":function:{name}") and arn.startswith("arn:aws:lambda:")
    got = lam.get_function(FunctionName=name)["Configuration"]
    assert got["Handler"] == "lambda_function.lambda_handler" and got["Environment"]["Variables"] == {"A": "1"}
    assert name in [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    lam.update_function_configuration(FunctionName=name, Timeout=30, Environment={"Variables": {"B": "2"}})
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
                             "--endpoint-url", rserver.url, env=rserver.env)
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

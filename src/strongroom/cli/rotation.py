"""`strongroom rotation status` and `strongroom functions create/list/delete/invoke`."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from strongroom.cli.options import initialized_store, location
from strongroom.config import load_settings
from strongroom.storage import rotation_store
from strongroom.storage import tables as t

out = Console(soft_wrap=True)


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else "-"


@click.group()
def rotation() -> None:
    """Secret rotation: what is rotating, what failed and why."""


@rotation.command()
@location
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def status(data_dir: str | None, database_url: str | None, as_json: bool) -> None:
    """Every secret's latest rotation: token, next step, attempts, last error, next retry."""
    settings = load_settings(data_dir, database_url)
    store = initialized_store(settings)
    try:
        with store.read() as tx:
            names = {r.id: (r.name, r.arn) for r in tx.conn.execute(select(t.secrets.c.id, t.secrets.c.name,
                                                                             t.secrets.c.arn))}
            states = rotation_store.all_states(tx.conn)
    finally:
        store.close()
    rows: list[dict[str, Any]] = []
    for s in sorted(states, key=lambda s: s.updated_date, reverse=True):
        name, arn = names.get(s.secret_id, ("(deleted)", ""))
        rows.append({"Name": name, "ARN": arn, "Token": s.token, "Status": s.status,
                     "Step": s.step, "Attempts": s.attempts, "LastError": s.last_error or "",
                     "NextAttempt": _when(s.next_attempt) if s.status == "pending" else "",
                     "Started": _when(s.started_date), "Updated": _when(s.updated_date)})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table("secret", "status", "step", "attempts", "next attempt", "last error")
    for r in rows:
        table.add_row(r["Name"], r["Status"], r["Step"], str(r["Attempts"]), r["NextAttempt"], r["LastError"])
    out.print(table)


def _client(profile: str | None, endpoint_url: str | None) -> Any:
    import boto3

    return boto3.Session(profile_name=profile).client("lambda", endpoint_url=endpoint_url)


_profile = click.option("--profile", default="strongroom", show_default=True, help="AWS profile to sign with.")
_endpoint = click.option("--endpoint-url", default=None, help="Server URL (default: the profile's endpoint).")


@click.group()
def functions() -> None:
    """Rotation functions (the same API as `aws lambda`)."""


@functions.command("create")
@click.argument("name")
@click.option("--zip", "zip_path", type=click.Path(exists=True, dir_okay=False), help="The code (zip).")
@click.option("--source", type=click.Path(exists=True, dir_okay=False),
              help="A single lambda_function.py, zipped for you.")
@click.option("--role", required=True, help="Execution role ARN (its credentials are given to the function).")
@click.option("--handler", default="lambda_function.lambda_handler", show_default=True)
@click.option("--timeout", default=30, show_default=True, type=int)
@click.option("--memory", default=256, show_default=True, type=int)
@click.option("--env", "env", multiple=True, help="KEY=VALUE environment variable (repeatable).")
@click.option("--webhook-url", help="POST events to this URL instead of running code.")
@click.option("--webhook-secret", help="HMAC-SHA256 key for the X-Strongroom-Signature header.")
@click.option("--allow-secrets-manager", is_flag=True,
              help="Let Secrets Manager invoke it for rotation (AddPermission for secretsmanager.amazonaws.com).")
@_profile
@_endpoint
def create(name: str, zip_path: str | None, source: str | None, role: str, handler: str, timeout: int, memory: int,
           env: tuple[str, ...], webhook_url: str | None, webhook_secret: str | None, allow_secrets_manager: bool,
           profile: str, endpoint_url: str | None) -> None:
    """Register a function (Python handler or webhook)."""
    import io
    import zipfile

    variables = dict(e.split("=", 1) for e in env)
    if webhook_url:
        variables["STRONGROOM_WEBHOOK_URL"] = webhook_url
    if webhook_secret:
        variables["STRONGROOM_WEBHOOK_SECRET"] = webhook_secret
    if zip_path:
        code = Path(zip_path).read_bytes()
    else:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("lambda_function.py", Path(source).read_text() if source else
                        "def lambda_handler(event, context):\n    raise RuntimeError('webhook only')\n")
        code = buf.getvalue()
    client = _client(profile, endpoint_url)
    fn = client.create_function(
        FunctionName=name, Runtime="python3.11", Role=role, Handler=handler, Code={"ZipFile": code},
        Timeout=timeout, MemorySize=memory, Environment={"Variables": variables})
    if allow_secrets_manager:
        # What the AWS console does for a rotation function: without it RotateSecret is refused.
        client.add_permission(FunctionName=name, StatementId="SecretsManagerAccess", Action="lambda:InvokeFunction",
                              Principal="secretsmanager.amazonaws.com")
    click.echo(fn["FunctionArn"])


@functions.command("list")
@_profile
@_endpoint
def list_(profile: str, endpoint_url: str | None) -> None:
    """List functions."""
    for fn in _client(profile, endpoint_url).list_functions()["Functions"]:
        click.echo(f"{fn['FunctionName']}\t{fn['FunctionArn']}\t{fn['Handler']}")


@functions.command("delete")
@click.argument("name")
@_profile
@_endpoint
def delete(name: str, profile: str, endpoint_url: str | None) -> None:
    """Delete a function."""
    _client(profile, endpoint_url).delete_function(FunctionName=name)


@functions.command("invoke")
@click.argument("name")
@click.option("--payload", default="{}", show_default=True, help="The event (JSON).")
@_profile
@_endpoint
def invoke(name: str, payload: str, profile: str, endpoint_url: str | None) -> None:
    """Invoke a function and print what it returned (exit 1 when it failed)."""
    result = _client(profile, endpoint_url).invoke(FunctionName=name, Payload=payload.encode())
    click.echo(result["Payload"].read().decode())
    if result.get("FunctionError"):
        sys.exit(1)

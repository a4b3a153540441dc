"""`strongroom audit`: read, verify and export the audit trail (reads the database directly)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from strongroom.audit.settings import audit_settings
from strongroom.audit.signing import SigningKeyError, load_private, load_public, public_pem
from strongroom.audit.verify import verify as verify_trail
from strongroom.cli.options import initialized_store, location
from strongroom.cli.output import console, fail, out
from strongroom.config import Settings, load_settings
from strongroom.storage import Store
from strongroom.storage import audit_store as q

_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@contextlib.contextmanager
def open_trail(data_dir: str | None, database_url: str | None) -> Iterator[tuple[Settings, Store]]:
    settings = load_settings(data_dir, database_url)
    store = initialized_store(settings)
    try:
        yield settings, store
    finally:
        store.close()


def parse_time(text: str | None) -> float | None:
    """ISO 8601 (2024-05-01, 2024-05-01T12:00:00Z) or an age before now (15m, 2h, 7d)."""
    if text is None:
        return None
    found = _RELATIVE.fullmatch(text.strip())
    if found:
        return dt.datetime.now(dt.timezone.utc).timestamp() - float(found.group(1)) * _UNITS[found.group(2)]
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is neither ISO 8601 nor an age such as 15m, 2h or 7d") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)).timestamp()


def _row_cells(row: Any) -> list[str]:
    record = json.loads(row.record)
    when = dt.datetime.fromtimestamp(row.event_time, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    resources = ", ".join(r["ARN"].rsplit(":", 1)[-1] for r in record.get("resources") or ()) or (
        (record.get("requestParameters") or {}).get("secretId", "") if isinstance(record.get("requestParameters"),
                                                                              dict) else "")
    # The ARN's resource part (user/admin, assumed-role/app/session) says who; the account is the caller's.
    who = row.principal_arn.split(":", 5)[-1] if row.principal_arn else f"(unidentified {row.access_key_id or ''})"
    return [when, row.event_source.split(".")[0], row.event_name, who, str(resources), row.error_code or "",
            record.get("sourceIPAddress", "")]


@click.group(invoke_without_command=True)
@location
@click.option("--start", help="Events at or after: ISO 8601, or an age such as 2h or 7d.")
@click.option("--end", help="Events at or before: ISO 8601, or an age.")
@click.option("--event-name", help="Only this operation (GetSecretValue, AssumeRole...).")
@click.option("--principal", help="Only calls by this principal ARN or user/session name.")
@click.option("--secret", help="Only calls on this secret (name or ARN).")
@click.option("--error-code", help="Only calls that failed with this code ('any' for every failure).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="One CloudTrail record per line (for machines).")
@click.pass_context
def audit(ctx: click.Context, data_dir: str | None, database_url: str | None, start: str | None, end: str | None,
          event_name: str | None, principal: str | None, secret: str | None, error_code: str | None, limit: int,
          as_json: bool) -> None:
    """The audit trail, newest first: who called what, when, and what came of it.

    Subcommands: `verify` checks the trail for tampering; `public-key` exports the key that
    verifies its digests.
    """
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"data_dir": data_dir, "database_url": database_url}
        return
    f = q.EventFilter(start=parse_time(start), end=parse_time(end), event_name=event_name, principal=principal,
                      resource=secret, error_code="*" if error_code in ("any", "*") else error_code)
    with open_trail(data_dir, database_url) as (_, store):
        with store.read() as tx:
            rows = q.find_events(tx.conn, f, limit=limit)
    if as_json:
        for row in rows:
            click.echo(row.record)
        return
    table = Table(title=f"{len(rows)} event{'s' if len(rows) != 1 else ''}", title_justify="left")
    for header in ("time (UTC)", "service", "event", "principal", "resource", "error", "source IP"):
        table.add_column(header, overflow="fold", no_wrap=header == "time (UTC)")
    for row in rows:
        table.add_row(*_row_cells(row))
    out.print(table)


def _sub_location(ctx: click.Context, data_dir: str | None, database_url: str | None) -> tuple[str | None, str | None]:
    parent = ctx.obj or {}
    return data_dir or parent.get("data_dir"), database_url or parent.get("database_url")


@audit.command()
@location
@click.option("--public-key", "public_key", type=click.Path(exists=True, dir_okay=False),
              help="PEM public key (from `strongroom audit public-key`); default: the server's signing key file.")
@click.pass_context
def verify(ctx: click.Context, data_dir: str | None, database_url: str | None, public_key: str | None) -> None:
    """Check the hash chain and the signed digests; exit 1 and say where if anything was changed."""
    data_dir, database_url = _sub_location(ctx, data_dir, database_url)
    with open_trail(data_dir, database_url) as (settings, store):
        path = Path(public_key) if public_key else audit_settings(settings.audit, settings.data_dir).signing_key_path
        try:
            key = load_public(path)
        except (OSError, SigningKeyError) as exc:
            fail(f"cannot load the public key from {path}: {exc}", 2)
        report = verify_trail(store, key)
    for problem in report.problems:
        click.echo(f"TAMPERED {problem}")
    summary = (f"{report.events} events (seq 1..{report.last_seq}), {report.digests} digests; "
               f"signed through seq {report.last_signed_seq}")
    if report.unsigned:
        summary += f"; {report.unsigned} newer events are chained but not yet signed"
    if report.ok:
        click.echo(f"OK: {summary}")
        return
    click.echo(f"FAILED: {len(report.problems)} problem{'s' if len(report.problems) != 1 else ''}; {summary}")
    sys.exit(1)


@audit.command("public-key")
@location
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
@click.pass_context
def public_key_cmd(ctx: click.Context, data_dir: str | None, database_url: str | None, output: str | None) -> None:
    """Print the PEM public key that verifies the audit digests (give it to auditors)."""
    data_dir, database_url = _sub_location(ctx, data_dir, database_url)
    settings = load_settings(data_dir, database_url)
    path = audit_settings(settings.audit, settings.data_dir).signing_key_path
    try:
        pem = public_pem(load_private(path).public_key())
    except SigningKeyError as exc:
        fail(str(exc), 2)
    if output:
        Path(output).write_bytes(pem)
        console.print(f"public key written to {output}")
    else:
        click.echo(pem.decode(), nl=False)

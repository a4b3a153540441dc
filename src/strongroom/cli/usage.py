"""`strongroom usage`: which secrets are used, by whom, and what AWS would charge for it."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import click
from rich.table import Table

from strongroom.audit.catalog import secret_name
from strongroom.cli.audit import open_trail
from strongroom.cli.options import location
from strongroom.cli.output import out
from strongroom.storage import audit_store as q
from strongroom.storage.stats import secret_uses

SECRET_MONTH = 0.40  # USD per secret per month (AWS Secrets Manager list price)
PER_10K_CALLS = 0.05  # USD per 10,000 API calls
SOURCE = "secretsmanager.amazonaws.com"


def _day(ts: float | None) -> str | None:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d") if ts else None


def report(data_dir: str | None, database_url: str | None, days: int) -> dict[str, Any]:
    now = time.time()
    since = now - days * 86400
    with open_trail(data_dir, database_url) as (_, store):
        with store.read() as tx:
            secrets = secret_uses(tx.conn)
            by_resource = q.calls_by(tx.conn, "resource_names", since, SOURCE)
            by_principal = q.calls_by(tx.conn, "principal_arn", since)
    per_secret: dict[str, int] = {}
    for names, n in by_resource:
        for arn in {part for part in (names or "").split("|") if secret_name(part)}:
            per_secret[arn] = per_secret.get(arn, 0) + n
    api_calls = sum(n for _, n in by_resource)
    rows = []
    for s in secrets:
        if s.deleted:
            status = "scheduled for deletion"
        elif s.last_accessed_date is None:
            status = "never read"
        elif s.last_accessed_date < since:
            status = f"not read in {days} days"
        else:
            status = "in use"
        rows.append({"Name": s.name, "ARN": s.arn, "AccountId": s.account_id, "Region": s.region,
                     "LastAccessedDate": _day(s.last_accessed_date), "Calls": per_secret.get(s.arn, 0),
                     "Status": status})
    active = sum(1 for s in secrets if not s.deleted)  # AWS does not bill secrets pending deletion
    monthly_calls = api_calls * 30 / days
    cost = {"ActiveSecrets": active, "SecretsPerMonthUSD": round(active * SECRET_MONTH, 2),
            "ApiCalls": api_calls, "ApiCallsUSD": round(api_calls / 10_000 * PER_10K_CALLS, 4),
            "ProjectedApiCallsPerMonth": round(monthly_calls),
            "ProjectedMonthlyUSD": round(active * SECRET_MONTH + monthly_calls / 10_000 * PER_10K_CALLS, 2)}
    return {"Days": days, "Secrets": rows,
            "Principals": [{"Principal": p or "(unidentified)", "Calls": n} for p, n in by_principal],
            "AwsEquivalentCost": cost}


@click.command()
@location
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 3650),
              help="The window for calls and for 'not recently read'.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def usage(data_dir: str | None, database_url: str | None, days: int, as_json: bool) -> None:
    """Unused secrets, calls per secret and per principal, and the AWS-equivalent cost."""
    data = report(data_dir, database_url, days)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    secrets = Table("secret", "last read", f"calls ({days} d)", "status", title="Secrets", title_justify="left")
    for s in data["Secrets"]:
        style = "yellow" if s["Status"] not in ("in use", "scheduled for deletion") else None
        secrets.add_row(s["Name"], s["LastAccessedDate"] or "never", str(s["Calls"]), s["Status"], style=style)
    out.print(secrets)
    principals = Table("principal", f"calls ({days} d)", title="Callers", title_justify="left")
    for p in data["Principals"]:
        principals.add_row(p["Principal"], str(p["Calls"]))
    out.print(principals)
    c = data["AwsEquivalentCost"]
    out.print(f"AWS-equivalent cost: {c['ActiveSecrets']} secrets × ${SECRET_MONTH:.2f} = "
              f"${c['SecretsPerMonthUSD']:.2f}/month; {c['ApiCalls']} Secrets Manager calls in {days} days "
              f"(${c['ApiCallsUSD']:.4f}); projected ${c['ProjectedMonthlyUSD']:.2f}/month")

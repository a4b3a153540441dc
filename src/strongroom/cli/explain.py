"""`strongroom iam explain`: the decision for one request and the statements that made it."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import click

from strongroom.auth import policy
from strongroom.auth.credentials import assumed_role_arn, user_principal
from strongroom.cli.options import initialized_store, location
from strongroom.context import Principal, RequestContext
from strongroom.services.iam.principals import load_policies, to_engine
from strongroom.services.secretsmanager.access import condition_context
from strongroom.storage import Store, iam_store

_USER = re.compile(r"^arn:aws:iam::(\d{12}):user(/.*/|/)([^/]+)$")
_ROLE = re.compile(r"^arn:aws:iam::(\d{12}):role(?:/.*)?/([^/]+)$")
_SESSION = re.compile(r"^arn:aws:sts::(\d{12}):assumed-role/([^/]+)/(.+)$")


def principal_from_arn(store: Store, arn: str) -> Principal:
    """A Principal for a user, role or role-session ARN, as the server builds it from IAM (ids and
    tags); a principal IAM does not know is named by its ARN alone, with a warning."""
    if m := _USER.match(arn):
        with store.read() as tx:
            user = tx.get_user(m[1], m[3])
        if user is not None:
            return user_principal(user)
        click.echo(f"warning: no such user in IAM: {arn} (its tags and id are unknown)", err=True)
        return Principal(account_id=m[1], arn=arn, principal_id="", access_key_id="", type="IAMUser", name=m[3])
    for pattern in (_ROLE, _SESSION):
        if m := pattern.match(arn):
            account, role_name = m[1], m[2]
            session = m[3] if pattern is _SESSION else "explain"
            with store.read() as tx:
                role = iam_store.get_role(tx.conn, account, role_name)
            if role is None:
                click.echo(f"warning: no such role in IAM: {role_name} (its tags and id are unknown)", err=True)
            return Principal(account_id=account, arn=assumed_role_arn(account, role_name, session),
                             principal_id=f"{role.role_id}:{session}" if role else "", access_key_id="",
                             type="AssumedRole", name=session,
                             tags={t["Key"]: t["Value"] for t in role.tags} if role else {},
                             role_name=role_name, session_name=session,
                             role_arn=role.arn if role else f"arn:aws:iam::{account}:role/{role_name}")
    raise click.BadParameter(f"not a user, role or assumed-role ARN: {arn}", param_hint="--principal")


def _context_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def explain_request(store: Store, principal_arn: str, action: str, resource: str,
                    extra: dict[str, Any], region: str) -> tuple[policy.Request, policy.EvaluationResult]:
    principal = principal_from_arn(store, principal_arn)
    identity, session = load_policies(store, principal)
    ctx = RequestContext(principal=principal, region=region, request_id=str(uuid.uuid4()))
    secret = None
    resource_policy = None
    if resource.startswith("arn:aws:secretsmanager:"):
        with store.read() as tx:
            secret = tx.secret_by_arn(resource) or tx.secret_by_partial_arn(resource)
        if secret is not None and secret.resource_policy:
            resource_policy = json.loads(secret.resource_policy)
    context = condition_context(ctx, {}, secret, resource) if secret is not None else policy.global_condition_keys(ctx)
    context.update(extra)
    request = policy.Request(principal_arn=principal.arn, principal_account=principal.account_id,
                             action=action, resource=resource, context=context)
    owner = secret.account_id if secret is not None else None
    result = policy.evaluate(request, to_engine(identity), resource_policy, owner)
    if result.allowed and session is not None:
        narrowed = policy.evaluate(request, to_engine(session), None, owner)
        if not narrowed.allowed:
            result = narrowed
    return request, result


@click.command("explain")
@location
@click.option("--principal", "principal_arn", required=True, help="User, role or assumed-role ARN.")
@click.option("--action", required=True, help="For example secretsmanager:GetSecretValue.")
@click.option("--resource", required=True, help="Resource ARN (a secret's full or partial ARN, or *).")
@click.option("--context", "pairs", multiple=True, metavar="KEY=VALUE",
              help="Condition key for the request, e.g. aws:SourceIp=10.0.0.1 (JSON values allowed).")
@click.option("--region", default="us-east-1", show_default=True)
@click.option("--verbose", "-v", is_flag=True, help="Also list every statement that was considered.")
def explain(data_dir: str | None, database_url: str | None, principal_arn: str, action: str, resource: str,
            pairs: tuple[str, ...], region: str, verbose: bool) -> None:
    """Explain whether PRINCIPAL may perform ACTION on RESOURCE, and which statements decided.

    Uses the stored identity policies of the user or role and, for a secret, its resource
    policy and tags — the same evaluation the server runs. Exits 0 when allowed, 1 when denied.
    """
    from strongroom.config import load_settings

    extra: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--context")
        extra[key] = _context_value(value)
    store = initialized_store(load_settings(data_dir, database_url))
    try:
        request, result = explain_request(store, principal_arn, action, resource, extra, region)
    finally:
        store.close()
    click.echo(policy.explain(result, verbose=verbose))
    if not result.allowed:
        click.echo(policy.access_denied_message(request, result))
    raise SystemExit(0 if result.allowed else 1)

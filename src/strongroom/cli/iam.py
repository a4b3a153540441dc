"""`strongroom iam ...`: users, access keys, roles and policies for people at a terminal.

Commands open the data directory directly (like `init`) and run the same IAM operations
the API serves, as the account's root: whoever can read the data directory and root key
already holds every secret. A running server sees changes within its credential cache
lifetime (5 seconds). The same operations are available remotely with the admin profile:
`aws --profile strongroom iam create-user --user-name alice`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from strongroom.cli import awsprofile
from strongroom.cli.options import initialized_store, location
from strongroom.cli.output import console, fail, out
from strongroom.config import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_REGION, load_settings
from strongroom.auth.authorize import ROOT_POLICIES
from strongroom.cli.apply import apply
from strongroom.cli.explain import explain
from strongroom.context import Principal, RequestContext
from strongroom.crypto.rootkey import RootKey, RootKeyError
from strongroom.errors import AwsError
from strongroom.http.shapes import parse_input, service_model
from strongroom.server import load_root_key
from strongroom.services.iam import IAM, Deps
from strongroom.storage import Store
from strongroom.storage.migrate import EMPTY, NEWER, schema_state


def common(f: Callable[..., Any]) -> Callable[..., Any]:
    """--data-dir, --database, --account and --json, shared by every command."""
    f = click.option("--json", "as_json", is_flag=True, help="Print the AWS-shaped response as JSON.")(f)
    f = click.option("--account", help="Account id (default: the first account, made by `strongroom init`).")(f)
    return location(f)


class RootRunner:
    """Runs IAM operations as an account's root, with the API's validation, on an open store.

    These calls bypass the API, so the runner records each one that changes something (or
    tries to) in the audit trail itself, as CloudTrail would record the root's call: a
    record of the same shape as the API's, userIdentity type Root, userAgent
    strongroom-cli, appended to the shared chain (strongroom/audit/local.py). With the
    trail unwritable and fail_mode closed, a change is refused before it acts."""

    def __init__(self, store: Store, root: RootKey, trail: Any = None):
        from strongroom.audit.local import LocalTrail

        self.iam = IAM(Deps(store=store, root=root))
        self.trail: LocalTrail = trail if trail is not None else _cli_trail(store)

    def __call__(self, account: str, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        from strongroom.audit import catalog
        from strongroom.audit.local import local_event, root_principal
        from strongroom.audit.writer import AuditUnavailable

        principal = Principal(account_id=account, arn=f"arn:aws:iam::{account}:root", principal_id=account,
                              access_key_id="", type="Root", is_admin=True)
        ctx = RequestContext(principal=principal, region=DEFAULT_REGION, request_id=str(uuid.uuid4()),
                             identity_policies=ROOT_POLICIES)
        params = parse_input(service_model("iam").operation_model(operation), request, anchored=True)
        if not catalog.changes_state(operation):  # reads (apply's diffing) are not recorded
            return self.iam.call(operation, ctx, params)
        try:
            self.trail.preflight()
        except AuditUnavailable:
            raise AwsError("The audit trail cannot be written (fail_mode closed): nothing was changed.",
                           code="InternalFailure", status=500) from None
        result: dict[str, Any] | None = None
        error: AwsError | None = None
        try:
            result = self.iam.call(operation, ctx, params)
        except AwsError as err:
            error = err
        event = local_event(service="iam", operation=operation, region=DEFAULT_REGION,
                            principal=root_principal(account),
                            model_name="iam", params=params, result=result,
                            error_code=error.code if error else None, error_message=error.message if error else None)
        try:
            self.trail.append(event)
        except AuditUnavailable:
            if error is not None:  # nothing changed: the caller learns why the call failed
                raise error from None
            # The change happened (the check before it passed) but its record did not: say so loudly.
            raise AwsError(f"{operation} was applied but its audit record could not be written.",
                           code="InternalFailure", status=500) from None
        if error is not None:
            raise error
        assert result is not None
        return result


def _cli_trail(store: Store) -> Any:
    """The audit trail of this command: settings from its --data-dir/--database, closed (and
    its events signed) when the command ends."""
    from strongroom.audit.local import LocalTrail

    ctx = click.get_current_context(silent=True)
    if ctx is None:  # used as a library: no config to read; a server signs these events later
        return LocalTrail(store)
    try:
        settings = load_settings(ctx.params.get("data_dir"), ctx.params.get("database_url"))
        trail = LocalTrail.for_settings(store, settings, command=ctx.command_path)
    except Exception:  # noqa: BLE001 - an unreadable config still gets its events recorded, unsigned
        trail = LocalTrail(store, command=ctx.command_path)
    # Runs when the command ends, after open_data's store.close(): that only empties the
    # connection pool, so the closing digest still gets a connection of its own.
    ctx.call_on_close(trail.close)
    return trail


@contextlib.contextmanager
def open_data(opts: dict[str, Any]) -> Iterator[tuple[Store, RootKey]]:
    """The store (schema checked) and root key named by --data-dir/--database."""
    settings = load_settings(opts["data_dir"], opts["database_url"])
    store = initialized_store(settings)
    try:
        try:
            root = load_root_key(settings)
        except RootKeyError as exc:
            fail(str(exc))
        schema = schema_state(store)
        if schema.state == EMPTY:
            fail("the database holds no strongroom schema; run `strongroom init` (or `strongroom migrate`)")
        if not schema.usable:
            # Only an older schema is refused: this release would read tables or columns it
            # does not have yet.
            fail(f"the database schema (revision {schema.current}) is older than this release "
                  f"(revision {schema.head}); run `strongroom migrate`")
        if schema.state == NEWER:
            # A newer release expanded the schema mid rolling upgrade; expand migrations only add,
            # so this release's operations still work on it (docs/deployment.md), as `serve` does.
            console.print(f"note: the database schema is newer than this release knows "
                          f"(revision {schema.current}, this release's latest {schema.head})")
        yield store, root
    finally:
        store.close()


def accounts_of(store: Store) -> list[dict[str, Any]]:
    """Accounts, oldest first: the first is the one `strongroom init` made."""
    with store.read() as tx:
        return sorted(tx.list_accounts(), key=lambda a: a["created_date"])


def call(opts: dict[str, Any], operation: str, request: dict[str, Any]) -> dict[str, Any]:
    """Run one IAM operation as the account root."""
    with open_data(opts) as (store, root):
        accounts = [a["account_id"] for a in accounts_of(store)]
        account = opts["account"] or (accounts[0] if accounts else None)
        if account is None or account not in accounts:
            fail("name an existing account with --account" if accounts else "run `strongroom init` first")
        try:
            return RootRunner(store, root)(account, operation, request)
        except AwsError as err:
            fail(f"{err.code}: {err.message}")


def _plain(value: Any) -> Any:
    """JSON-ready: datetimes as ISO 8601, absent (None) members dropped."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    return value


def _cell(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return "" if value is None else str(value)


def show(opts: dict[str, Any], result: dict[str, Any], key: str | None = None, columns: tuple[str, ...] = ()) -> None:
    if opts["as_json"] or key is None:
        if opts["as_json"] or result:
            click.echo(json.dumps(_plain(result), indent=2))
        return
    table = Table(*columns)
    for row in result.get(key, []):
        table.add_row(*(_cell(row.get(c)) for c in columns))
    out.print(table)


def document(value: str) -> str:
    """A policy document given inline, as file://PATH or @PATH, or `-` for stdin."""
    if value == "-":
        return sys.stdin.read()
    for prefix in ("file://", "@"):
        if value.startswith(prefix):
            return Path(value[len(prefix):]).expanduser().read_text()
    return value


def tags(values: tuple[str, ...]) -> list[dict[str, str]]:
    pairs = [v.partition("=") for v in values]
    return [{"Key": k, "Value": val} for k, _, val in pairs]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def iam() -> None:
    """Manage IAM users, access keys, roles and policies (direct access to the data directory).

    Commands act as the account root on the data directory given by --data-dir (or
    STRONGROOM_DATA_DIR), using the same operations and checks as the IAM API. To do the
    same over the network, use the AWS CLI with the admin profile, e.g.
    `aws --profile strongroom iam list-users`.
    """


# -- users and keys ----------------------------------------------------------------------------
@iam.command("create-user")
@click.argument("user_name")
@click.option("--path", default="/", show_default=True)
@click.option("--tag", "tag_values", multiple=True, metavar="KEY=VALUE")
@common
def create_user(user_name: str, path: str, tag_values: tuple[str, ...], **opts: Any) -> None:
    """Create an IAM user (no permissions until a policy grants some)."""
    request: dict[str, Any] = {"UserName": user_name, "Path": path}
    if tag_values:
        request["Tags"] = tags(tag_values)
    show(opts, call(opts, "CreateUser", request))


@iam.command("list-users")
@common
def list_users(**opts: Any) -> None:
    """List the account's users."""
    show(opts, call(opts, "ListUsers", {"MaxItems": 1000}), "Users", ("UserName", "UserId", "Arn", "CreateDate"))


@iam.command("delete-user")
@click.argument("user_name")
@common
def delete_user(user_name: str, **opts: Any) -> None:
    """Delete a user (its keys and policies must be removed first)."""
    show(opts, call(opts, "DeleteUser", {"UserName": user_name}))


@iam.command("create-access-key")
@click.argument("user_name")
@click.option("--write-profile", metavar="PROFILE", help="Write the key to this AWS profile instead of printing it.")
@click.option("--endpoint-url", default=f"http://{DEFAULT_HOST}:{DEFAULT_PORT}", show_default=True,
              help="Endpoint written into the profile.")
@click.option("--region", default=DEFAULT_REGION, show_default=True, help="Region written into the profile.")
@common
def create_access_key(user_name: str, write_profile: str | None, endpoint_url: str, region: str, **opts: Any) -> None:
    """Create an access key for a user; the secret is shown (or written) only this once."""
    key = call(opts, "CreateAccessKey", {"UserName": user_name})["AccessKey"]
    if write_profile:
        awsprofile.write_profile(write_profile, region=region, endpoint_url=endpoint_url,
                                 access_key_id=key["AccessKeyId"], secret_access_key=key["SecretAccessKey"])
        console.print(f"access key {key['AccessKeyId']} written to profile '{write_profile}'")
        return
    if opts["as_json"]:
        show(opts, {"AccessKey": key})
    else:
        click.echo(f"aws_access_key_id = {key['AccessKeyId']}")
        click.echo(f"aws_secret_access_key = {key['SecretAccessKey']}")
    console.print("The secret access key is shown only this once.")


@iam.command("list-access-keys")
@click.argument("user_name")
@common
def list_access_keys(user_name: str, **opts: Any) -> None:
    """List a user's access keys and their status."""
    show(opts, call(opts, "ListAccessKeys", {"UserName": user_name}), "AccessKeyMetadata",
         ("AccessKeyId", "Status", "CreateDate"))


@iam.command("update-access-key")
@click.argument("user_name")
@click.argument("access_key_id")
@click.option("--status", type=click.Choice(["Active", "Inactive"]), required=True)
@common
def update_access_key(user_name: str, access_key_id: str, status: str, **opts: Any) -> None:
    """Activate or deactivate an access key."""
    show(opts, call(opts, "UpdateAccessKey", {"UserName": user_name, "AccessKeyId": access_key_id,
                                              "Status": status}))


@iam.command("delete-access-key")
@click.argument("user_name")
@click.argument("access_key_id")
@common
def delete_access_key(user_name: str, access_key_id: str, **opts: Any) -> None:
    """Delete an access key."""
    show(opts, call(opts, "DeleteAccessKey", {"UserName": user_name, "AccessKeyId": access_key_id}))


# -- roles -------------------------------------------------------------------------------------
@iam.command("create-role")
@click.argument("role_name")
@click.option("--trust-policy", help="Trust policy document (JSON, file://PATH, @PATH or -).")
@click.option("--trust", "trusted", multiple=True, metavar="ACCOUNT|ARN",
              help="Let this account (id) or principal (ARN) assume the role; repeatable.")
@click.option("--max-session-duration", type=int, default=3600, show_default=True)
@click.option("--description")
@click.option("--path", default="/", show_default=True)
@common
def create_role(role_name: str, trust_policy: str | None, trusted: tuple[str, ...], max_session_duration: int,
                description: str | None, path: str, **opts: Any) -> None:
    """Create a role that the given accounts or principals may assume."""
    if bool(trust_policy) == bool(trusted):
        fail("give exactly one of --trust-policy or --trust")
    if trust_policy:
        text = document(trust_policy)
    else:
        principals = [f"arn:aws:iam::{t}:root" if t.isdigit() else t for t in trusted]
        text = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": principals}, "Action": ["sts:AssumeRole", "sts:TagSession"]}]})
    request: dict[str, Any] = {"RoleName": role_name, "AssumeRolePolicyDocument": text, "Path": path,
                               "MaxSessionDuration": max_session_duration}
    if description:
        request["Description"] = description
    show(opts, call(opts, "CreateRole", request))


@iam.command("list-roles")
@common
def list_roles(**opts: Any) -> None:
    """List the account's roles."""
    show(opts, call(opts, "ListRoles", {"MaxItems": 1000}), "Roles", ("RoleName", "RoleId", "Arn",
                                                                      "MaxSessionDuration"))


@iam.command("delete-role")
@click.argument("role_name")
@common
def delete_role(role_name: str, **opts: Any) -> None:
    """Delete a role (its policies must be removed first)."""
    show(opts, call(opts, "DeleteRole", {"RoleName": role_name}))


# -- policies ----------------------------------------------------------------------------------
def _inline_commands(kind: str) -> None:
    owner_key = "UserName" if kind == "user" else "RoleName"
    title = kind.capitalize()

    @iam.command(f"put-{kind}-policy")
    @click.argument("owner")
    @click.argument("policy_name")
    @click.argument("policy_document")
    @common
    def put(owner: str, policy_name: str, policy_document: str, **opts: Any) -> None:
        show(opts, call(opts, f"Put{title}Policy", {owner_key: owner, "PolicyName": policy_name,
                                                    "PolicyDocument": document(policy_document)}))

    @iam.command(f"delete-{kind}-policy")
    @click.argument("owner")
    @click.argument("policy_name")
    @common
    def remove(owner: str, policy_name: str, **opts: Any) -> None:
        show(opts, call(opts, f"Delete{title}Policy", {owner_key: owner, "PolicyName": policy_name}))

    @iam.command(f"attach-{kind}-policy")
    @click.argument("owner")
    @click.argument("policy_arn")
    @common
    def attach(owner: str, policy_arn: str, **opts: Any) -> None:
        show(opts, call(opts, f"Attach{title}Policy", {owner_key: owner, "PolicyArn": policy_arn}))

    @iam.command(f"detach-{kind}-policy")
    @click.argument("owner")
    @click.argument("policy_arn")
    @common
    def detach(owner: str, policy_arn: str, **opts: Any) -> None:
        show(opts, call(opts, f"Detach{title}Policy", {owner_key: owner, "PolicyArn": policy_arn}))

    put.help = f"Add or replace an inline policy of a {kind} (DOCUMENT: JSON, file://PATH, @PATH or -)."
    remove.help = f"Delete an inline policy of a {kind}."
    attach.help = f"Attach a managed policy (by ARN) to a {kind}."
    detach.help = f"Detach a managed policy from a {kind}."


_inline_commands("user")
_inline_commands("role")


@iam.command("create-policy")
@click.argument("policy_name")
@click.argument("policy_document")
@click.option("--path", default="/", show_default=True)
@click.option("--description")
@common
def create_policy(policy_name: str, policy_document: str, path: str, description: str | None, **opts: Any) -> None:
    """Create a managed policy (DOCUMENT: JSON, file://PATH, @PATH or -)."""
    request: dict[str, Any] = {"PolicyName": policy_name, "PolicyDocument": document(policy_document), "Path": path}
    if description:
        request["Description"] = description
    show(opts, call(opts, "CreatePolicy", request))


@iam.command("list-policies")
@common
def list_policies(**opts: Any) -> None:
    """List the account's managed policies."""
    show(opts, call(opts, "ListPolicies", {"MaxItems": 1000}), "Policies",
         ("PolicyName", "Arn", "DefaultVersionId", "AttachmentCount"))


@iam.command("delete-policy")
@click.argument("policy_arn")
@common
def delete_policy(policy_arn: str, **opts: Any) -> None:
    """Delete a managed policy (it must be detached everywhere first)."""
    show(opts, call(opts, "DeletePolicy", {"PolicyArn": policy_arn}))


iam.add_command(explain)
iam.add_command(apply)

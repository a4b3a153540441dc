"""Accounts: the first one is made by `strongroom init`, more by `strongroom account create`."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import click

from strongroom.auth.credentials import create_access_key, create_user, new_account_id
from strongroom.cli.options import initialized_store, location
from strongroom.crypto.rootkey import RootKey
from strongroom.storage import Tx, iam_store

ADMINISTRATOR_ACCESS = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)


@dataclass(frozen=True)
class NewAccount:
    account_id: str
    access_key_id: str
    secret_access_key: str


def account_created_event(new: NewAccount, name: str, command: str | None = None) -> Any:
    """The audit record of a local `account create` (or `iam apply` creating one): what AWS
    Organizations' CreateAccount would leave, as the new account's root, with the admin
    user and its access key id (never the secret key)."""
    from strongroom.audit.local import local_context, local_event, root_principal

    result = {"createAccountStatus": {"accountId": new.account_id, "accountName": name, "state": "SUCCEEDED"},
              "adminUser": f"arn:aws:iam::{new.account_id}:user/admin", "accessKeyId": new.access_key_id}
    # Organizations is global: CloudTrail records its calls in us-east-1, whatever the region.
    return local_event(service="organizations", operation="CreateAccount", region="us-east-1",
                       principal=root_principal(new.account_id), params={"accountName": name}, result=result,
                       details=local_context(command))


def create_account_recorded(store: Any, root: RootKey, name: str, trail: Any) -> NewAccount:
    """Create the account only if its record can be written (fail closed), then record it."""
    from strongroom.audit.writer import AuditUnavailable

    try:
        trail.preflight()
    except AuditUnavailable:
        raise click.ClickException("the audit trail cannot be written (fail_mode closed): "
                                   "no account was created") from None
    with store.write() as tx:
        new = create_account_with_admin(tx, root, name)
    try:
        trail.append(account_created_event(new, name, trail.command))
    except AuditUnavailable:
        raise click.ClickException(f"account {new.account_id} was created but its audit record "
                                   "could not be written") from None
    return new


def create_account_with_admin(tx: Tx, root: RootKey, name: str) -> NewAccount:
    """A new account whose user `admin` holds an AdministratorAccess inline policy and one key."""
    now = time.time()
    account_id = new_account_id()
    tx.insert_account(account_id, name, now)
    create_user(tx, account_id, "admin", now, is_admin=True)
    iam_store.put_inline_policy(tx.conn, "user", account_id, "admin", "AdministratorAccess", ADMINISTRATOR_ACCESS)
    key_id, secret = create_access_key(tx, root, account_id, "admin", now)
    return NewAccount(account_id, key_id, secret)


@click.group("account")
def account() -> None:
    """Accounts of this deployment (each with its own users, roles, secrets and keys)."""


@account.command("create")
@location
@click.option("--name", default="account", show_default=True, help="A name for people.")
@click.option("--profile", help="Write the new admin key as this AWS profile (else print it once).")
@click.option("--region", default="us-east-1", show_default=True, help="Region for the profile.")
@click.option("--endpoint-url", default="http://127.0.0.1:7979", show_default=True, help="Endpoint for the profile.")
def create(data_dir: str | None, database_url: str | None, name: str, profile: str | None, region: str,
           endpoint_url: str) -> None:
    """Create an account and its administrator."""
    from strongroom.cli import awsprofile
    from strongroom.config import load_settings
    from strongroom.server import load_root_key
    from strongroom.audit.local import LocalTrail

    settings = load_settings(data_dir, database_url)
    store = initialized_store(settings)
    trail = LocalTrail.for_settings(store, settings, command="strongroom account create")
    try:
        new = create_account_recorded(store, load_root_key(settings), name, trail)
    finally:
        trail.close()
        store.close()
    click.echo(f"account {new.account_id}  admin arn:aws:iam::{new.account_id}:user/admin")
    if profile:
        awsprofile.write_profile(profile, region=region, endpoint_url=endpoint_url,
                                 access_key_id=new.access_key_id, secret_access_key=new.secret_access_key)
        click.echo(f"profile '{profile}' written")
    else:
        click.echo(f"aws_access_key_id = {new.access_key_id}")
        click.echo(f"aws_secret_access_key = {new.secret_access_key}")


@account.command("list")
@location
def list_accounts(data_dir: str | None, database_url: str | None) -> None:
    """List the deployment's accounts."""
    from strongroom.config import load_settings

    store = initialized_store(load_settings(data_dir, database_url))
    try:
        with store.read() as tx:
            for row in tx.list_accounts():
                click.echo(f"{row['account_id']}  {row['name']}")
    finally:
        store.close()

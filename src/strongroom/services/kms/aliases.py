"""Aliases: CreateAlias, UpdateAlias, DeleteAlias, ListAliases.

An alias is a name in one account and region that points at one key; a key
may have many. Names under alias/aws/ belong to AWS managed keys: users can
neither create, move nor delete them.
"""

from __future__ import annotations

from typing import Any

from strongroom.context import RequestContext
from strongroom.errors import (
    AlreadyExistsException,
    InvalidAliasNameException,
    NotAuthorizedException,
    NotFoundException,
    ValidationException,
)
from strongroom.services.kms import paging
from strongroom.services.kms.access import authorize_identity, authorize_key
from strongroom.services.kms.core import (
    MANAGED_PREFIX,
    Caller,
    KmsDeps,
    alias_arn,
    require_customer_managed,
    require_not_pending,
    resolve_key,
    ts,
)
from strongroom.services.kms.materials import SECRETS_MANAGER_ALIAS
from strongroom.storage import Tx
from strongroom.storage import kms_store as ks
from strongroom.storage.kms_store import KmsAliasRecord, KmsKeyRecord

PREFIX_REQUIRED = ('Alias must start with the prefix "alias/". Please see '
                   "https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html")
# Aliases AWS predefines for the services strongroom provides; listed even before their key exists.
PREDEFINED = (SECRETS_MANAGER_ALIAS,)


def _check_name(name: str) -> None:
    if not name.startswith("alias/"):
        raise ValidationException(PREFIX_REQUIRED)
    if name.startswith(MANAGED_PREFIX):
        raise NotAuthorizedException(f"The alias name {name} is reserved for AWS managed keys.")
    if name == "alias/" or ":" in name:
        raise InvalidAliasNameException(f"{name} is not a valid alias name.")


def _target(tx: Tx, caller: Caller, ref: str, action: str) -> KmsKeyRecord:
    if ref.startswith("alias/") or (ref.startswith("arn:") and ":alias/" in ref):
        raise ValidationException("Aliases must refer to keys. Not aliases")
    key = resolve_key(tx, caller, ref, action=action, aliases=False)
    require_customer_managed(key, caller, action)
    require_not_pending(key)
    return key


def _authorize_alias(ctx: RequestContext, action: str, name: str) -> None:
    """The alias itself is an IAM resource (identity policies only); its key's policy is asked apart."""
    authorize_identity(ctx, action, alias_arn(ctx.region, ctx.account_id, name))


def _authorize_current(tx: Tx, caller: Caller, alias: KmsAliasRecord, action: str) -> None:
    key = ks.get_key(tx, alias.key_id)
    if key is not None:
        authorize_key(caller, key, action)


def create_alias(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    name = req["AliasName"]
    _check_name(name)
    _authorize_alias(ctx, "CreateAlias", name)
    caller = Caller.of(ctx)
    with deps.store.write() as tx:
        key = _target(tx, caller, req["TargetKeyId"], "CreateAlias")
        if ks.get_alias(tx, ctx.account_id, ctx.region, name) is not None:
            raise AlreadyExistsException(
                f"An alias with the name {alias_arn(ctx.region, ctx.account_id, name)} already exists")
        now = deps.clock()
        ks.insert_alias(tx, KmsAliasRecord(ctx.account_id, ctx.region, name, key.key_id, now, now))
    return {}


def update_alias(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    name = req["AliasName"]
    _check_name(name)
    _authorize_alias(ctx, "UpdateAlias", name)
    caller = Caller.of(ctx)
    with deps.store.write() as tx:
        alias = ks.get_alias(tx, ctx.account_id, ctx.region, name)
        if alias is None:
            raise NotFoundException(f"Alias {alias_arn(ctx.region, ctx.account_id, name)} is not found.")
        _authorize_current(tx, caller, alias, "UpdateAlias")
        key = _target(tx, caller, req["TargetKeyId"], "UpdateAlias")
        ks.retarget_alias(tx, alias, key.key_id, deps.clock())
    return {}


def delete_alias(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    name = req["AliasName"]
    _check_name(name)
    _authorize_alias(ctx, "DeleteAlias", name)
    with deps.store.write() as tx:
        alias = ks.get_alias(tx, ctx.account_id, ctx.region, name)
        if alias is None:
            raise NotFoundException(f"Alias {alias_arn(ctx.region, ctx.account_id, name)} is not found.")
        _authorize_current(tx, Caller.of(ctx), alias, "DeleteAlias")
        ks.delete_alias(tx, alias)
    return {}


def list_aliases(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    authorize_identity(ctx, "ListAliases")
    with deps.store.read() as tx:
        key_id = None
        if "KeyId" in req:
            key_id = resolve_key(tx, Caller.of(ctx), req["KeyId"], action="ListAliases", aliases=False,
                                 authorize=False).key_id
        records = ks.list_aliases(tx, ctx.account_id, ctx.region, key_id)
    entries: list[dict[str, Any]] = [
        {"AliasName": a.alias_name, "AliasArn": alias_arn(a.region, a.account_id, a.alias_name),
         "TargetKeyId": a.key_id, "CreationDate": ts(a.creation_date), "LastUpdatedDate": ts(a.last_updated_date)}
        for a in records
    ]
    if key_id is None:
        present = {a.alias_name for a in records}
        entries += [{"AliasName": n, "AliasArn": alias_arn(ctx.region, ctx.account_id, n)}
                    for n in PREDEFINED if n not in present]
    chunk, more = paging.page(entries, lambda e: e["AliasName"], req, "aliases", default_limit=50, max_limit=100)
    return {"Aliases": chunk, **more}

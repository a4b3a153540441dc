"""Key tags: TagResource, UntagResource, ListResourceTags, and the rules KMS applies to tags."""

from __future__ import annotations

from typing import Any

from strongroom.context import RequestContext
from strongroom.errors import LimitExceededException, TagException
from strongroom.services.kms import paging
from strongroom.services.kms.core import (
    Caller,
    KmsDeps,
    require_customer_managed,
    require_not_pending,
    resolve_key,
)
from strongroom.storage import kms_store as ks

MAX_TAGS = 50


def check_tags(tags: list[dict[str, str]]) -> None:
    keys = [t["TagKey"] for t in tags]
    if any(k.lower().startswith("aws:") for k in keys):
        raise TagException("Tags beginning with aws: are reserved.")
    if len(set(keys)) != len(keys):
        raise TagException("Duplicate tag keys")


def merge(current: list[dict[str, str]], new: list[dict[str, str]]) -> list[dict[str, str]]:
    """New values replace old ones for the same key; order of first appearance is kept."""
    merged = {t["TagKey"]: t["TagValue"] for t in current}
    merged.update({t["TagKey"]: t["TagValue"] for t in new})
    if len(merged) > MAX_TAGS:
        raise LimitExceededException(f"A KMS key can have at most {MAX_TAGS} tags.")
    return [{"TagKey": k, "TagValue": v} for k, v in merged.items()]


def tag_resource(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    check_tags(req["Tags"])
    caller = Caller.of(ctx)
    with deps.store.write() as tx:
        key = resolve_key(tx, caller, req["KeyId"], action="TagResource", aliases=False)
        require_customer_managed(key, caller, "TagResource")
        require_not_pending(key)
        key.tags = merge(key.tags, req["Tags"])
        ks.update_key(tx, key)
    return {}


def untag_resource(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    caller = Caller.of(ctx)
    gone = set(req["TagKeys"])
    with deps.store.write() as tx:
        key = resolve_key(tx, caller, req["KeyId"], action="UntagResource", aliases=False)
        require_customer_managed(key, caller, "UntagResource")
        require_not_pending(key)
        key.tags = [t for t in key.tags if t["TagKey"] not in gone]
        ks.update_key(tx, key)
    return {}


def list_resource_tags(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    with deps.store.read() as tx:
        key = resolve_key(tx, Caller.of(ctx), req["KeyId"], action="ListResourceTags", aliases=False)
    chunk, more = paging.page(key.tags, lambda t: t["TagKey"], req, "tags", default_limit=50, max_limit=50)
    return {"Tags": chunk, **more}

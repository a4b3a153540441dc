"""ListSecrets: filters, sort orders and keyset pagination."""

from __future__ import annotations

import math
from typing import Any

from strongroom.context import RequestContext
from strongroom.errors import InvalidNextTokenException, InvalidParameterException
from strongroom.services.secretsmanager import filters, paging
from strongroom.services.secretsmanager.access import authorize
from strongroom.services.secretsmanager.core import Deps, labels_by_version, summary
from strongroom.storage import SecretRecord

DEFAULT_PAGE = 100
_SORT_FIELDS = {
    "created-date": lambda s: s.created_date,
    "last-accessed-date": lambda s: s.last_accessed_date or 0.0,
    "last-changed-date": lambda s: s.last_changed_date,
    "name": lambda s: s.name,
}
_ID_LIMIT = 2**63


def _position_valid(value: Any, last_id: Any, sort_by: str) -> bool:
    """A position a token can name: the sort column's type (text for names, a finite number for
    dates) and a row id within the database's integer range."""
    if isinstance(last_id, bool) or not isinstance(last_id, int) or not 0 <= last_id < _ID_LIMIT:
        return False
    if sort_by == "name":
        return isinstance(value, str)
    return (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
            and abs(value) < 1e15)


def page_of_secrets(
    deps: Deps,
    ctx: RequestContext,
    flt: list[dict[str, Any]],
    max_results: int | None,
    next_token: str | None,
    order: str,
    sort_by: str,
    *,
    kind: str,
    include_deleted: bool = False,
) -> tuple[list[SecretRecord], str | None]:
    for f in flt:
        if "Key" not in f:  # the model leaves Key optional; a filter without one can't match anything
            raise InvalidParameterException("Each filter must have a Key.")
        if not f.get("Values"):
            raise InvalidParameterException(f"Filter {f.get('Key')} must have at least one value.")
    after = None
    if next_token:
        state = paging.decode(next_token, kind)
        marker = state.get("a")
        if state.get("s") != [order, sort_by] or not isinstance(marker, list) or len(marker) != 2:
            raise InvalidParameterException("The NextToken doesn't match the request's SortOrder and SortBy.")
        if not _position_valid(marker[0], marker[1], sort_by):  # signed, but never trusted blindly
            raise InvalidNextTokenException("The NextToken value is invalid.")
        after = (marker[0], marker[1])
    limit = max_results or DEFAULT_PAGE
    page: list[SecretRecord] = []
    more = False
    with deps.store.read() as tx:
        # The database orders and pages; the filters (AWS's word rules) are applied here, and
        # reading stops one match past the page, so a page costs what it holds, not the account.
        for secret in tx.secrets_in_order(ctx.account_id, ctx.region, sort_by=sort_by, descending=order == "desc",
                                          after=after, include_deleted=include_deleted,
                                          name_prefixes=_prefixes(flt, "name"),
                                          tag_key_prefixes=_prefixes(flt, "tag-key"),
                                          tag_value_prefixes=_prefixes(flt, "tag-value"),
                                          batch=min(max(limit + 1, 100), 1000)):
            if not filters.matches(flt, secret):
                continue
            if len(page) == limit:
                more = True
                break
            page.append(secret)
    token = None
    if more:
        last = page[-1]
        token = paging.encode({"k": kind, "s": [order, sort_by], "a": [_SORT_FIELDS[sort_by](last), last.id]})
    return page, token


def _prefixes(flt: list[dict[str, Any]], key: str) -> list[str] | None:
    """Prefixes the database can narrow by: a filter on `key` with only positive values
    (those filters match by prefix, case-sensitive: filters.py)."""
    for f in flt:
        if f["Key"] == key and not any(v.startswith("!") for v in f["Values"]):
            return list(f["Values"])
    return None


def list_secrets(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    authorize(ctx, "secretsmanager:ListSecrets", "*", req)
    page, token = page_of_secrets(
        deps,
        ctx,
        req.get("Filters", []),
        req.get("MaxResults"),
        req.get("NextToken"),
        req.get("SortOrder", "desc"),
        req.get("SortBy", "created-date"),
        kind="list",
        include_deleted=req.get("IncludePlannedDeletion", False),
    )
    with deps.store.read() as tx:
        stages = tx.stages_of([s.id for s in page])  # type: ignore[misc]
    entries = [summary(s, labels_by_version(stages[s.id]), versions_key="SecretVersionsToStages")  # type: ignore[index]
               for s in page]
    out: dict[str, Any] = {"SecretList": entries}
    if token:
        out["NextToken"] = token
    return out

"""ListSecrets: filters, sort orders and keyset pagination."""

from __future__ import annotations

from typing import Any

from strongroom.context import RequestContext
from strongroom.errors import InvalidParameterException
from strongroom.services.secretsmanager import filters, paging
from strongroom.services.secretsmanager.access import authorize
from strongroom.services.secretsmanager.core import Deps, stages_by_version, summary
from strongroom.storage import SecretRecord

DEFAULT_PAGE = 100
_SORT_FIELDS = {
    "created-date": lambda s: s.created_date,
    "last-accessed-date": lambda s: s.last_accessed_date or 0.0,
    "last-changed-date": lambda s: s.last_changed_date,
    "name": lambda s: s.name,
}


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
    with deps.store.read() as tx:
        candidates = tx.list_secrets(ctx.account_id, ctx.region)
    key_of = _SORT_FIELDS[sort_by]
    rows = sorted(
        (s for s in candidates
         if (include_deleted or s.deleted_date is None) and filters.matches(flt, s)),
        key=lambda s: (key_of(s), s.id),
        reverse=(order == "desc"),
    )
    if next_token:
        state = paging.decode(next_token, kind)
        after = state.get("a")
        if state.get("s") != [order, sort_by] or not isinstance(after, list) or len(after) != 2:
            raise InvalidParameterException("The NextToken doesn't match the request's SortOrder and SortBy.")
        marker = (after[0], after[1])
        if order == "desc":
            rows = [s for s in rows if (key_of(s), s.id) < marker]
        else:
            rows = [s for s in rows if (key_of(s), s.id) > marker]
    limit = max_results or DEFAULT_PAGE
    page = rows[:limit]
    token = None
    if len(rows) > limit:
        last = page[-1]
        token = paging.encode({"k": kind, "s": [order, sort_by], "a": [key_of(last), last.id]})
    return page, token


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
    entries = []
    with deps.store.read() as tx:
        for secret in page:
            entries.append(summary(secret, stages_by_version(tx, secret.id), versions_key="SecretVersionsToStages"))  # type: ignore[arg-type]
    out: dict[str, Any] = {"SecretList": entries}
    if token:
        out["NextToken"] = token
    return out

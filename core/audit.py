"""The audit trail (監査ログ): who viewed, changed, listed, searched,
exported or erased customers' personal data, when, where and from which
address. One INSERT per access, never an UPDATE or DELETE (the table
refuses both: core.migrations.0007).

Callers pass what they know: the request (for the staff member or API key,
the path and the address), the action, the customer when one customer is
concerned, and `what` for lists, searches and exports (the query, the row
count), never the rows themselves.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest

from core.models import AuditAction, AuditEntry
from core.types import Actor

# Query parameters that only page or sort a list: a list is a search when
# any other parameter (a search box, a filter) narrows it.
_LIST_ONLY = frozenset({"p", "o", "page", "page_size", "ordering", "cursor", "_changelist_filters"})
_SEARCH_TERMS = frozenset({"q", "search"})


def _principal(request: HttpRequest | None, actor: Actor) -> tuple[Any, Any]:
    """(user, API key) behind an actor, or the request's user: an API
    client carries its key; a staff member is a user with a primary key."""
    who = actor if actor is not None else getattr(request, "user", None)
    api_key = getattr(who, "api_key", None)
    user = who if api_key is None and getattr(who, "pk", None) else None
    return user, api_key


def audit_record(
    *,
    action: str,
    request: HttpRequest | None = None,
    actor: Actor = None,
    customer_id: int | None = None,
    what: str = "",
) -> AuditEntry:
    """Append one row. `actor` defaults to the request's user (a staff
    member, or the API client of a key)."""
    user, api_key = _principal(request, actor)
    return AuditEntry.objects.create(
        user=user,
        api_key=api_key,
        action=action,
        customer_id=customer_id,
        where=request.path[:255] if request is not None else "",
        what=what,
        ip=(request.META.get("REMOTE_ADDR") or None) if request is not None else None,
    )


def audit_query_record(*, request: HttpRequest, params=None) -> AuditEntry:
    """A list of customers, or a search when a search term or filter
    narrows it: the query is recorded, not the rows it found."""
    params = request.GET if params is None else params
    narrowing = [(key, value) for key, value in params.items() if key not in _LIST_ONLY and value]
    action = AuditAction.SEARCH if narrowing else AuditAction.LIST
    return audit_record(action=action, request=request, what=urlencode(narrowing))


def audit_csv_record(*, request: HttpRequest, rows: int, held: str) -> AuditEntry:
    """A CSV export: what it held and how many rows."""
    return audit_record(action=AuditAction.EXPORT, request=request, what=f"{held}: {rows}")


def audit_entries(*, customer_id: int):
    """One customer's audit trail, newest first, with who did it."""
    return AuditEntry.objects.filter(customer_id=customer_id).select_related("user", "api_key")

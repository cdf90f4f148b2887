"""What every timeline shares besides its record (core.models.EventRecord):
who may be an event's actor, and how its rows read in words."""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from django.contrib.auth import get_user_model
from django.utils.translation import gettext

from core.roles import staff_name
from core.types import Actor

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def actor_or_none(actor: Actor) -> "User | None":
    """Only a real user is stored as an actor (not an API client, which has
    no primary key, nor nobody)."""
    return cast("User | None", actor if getattr(actor, "pk", None) else None)


@dataclass(frozen=True)
class EventWording:
    """How one kind of event reads on a timeline: a label (what changed, as
    staff call it) and how its stored old and new values read. `values`
    maps a stored value to its label (a TextChoices' choices); `staff`
    says the values are usernames, shown as the colleague's name; with
    neither, the values are already words (a category's or an incident's
    name, a reference) and are shown as stored. `subject` says the old
    value is what the event is about (an unlinked order's number), not a
    value that was replaced by nothing. `note` words what the event's
    details add to its new value (「佐藤 美咲 (自動割り当て)」)."""

    label: Any
    values: Iterable[tuple[str, Any]] | Mapping[str, Any] | None = None
    staff: bool = False
    subject: bool = False
    note: Callable[[Any, str], str] | None = None

    def value(self, stored: str, names: Mapping[str, str]) -> str:
        if not stored:
            return ""
        if self.staff:
            return names.get(stored) or gettext("(unknown staff member)")
        if self.values is not None:
            return str(dict(self.values).get(stored, stored))
        return stored


def timeline_rows(events: Iterable, wordings: Mapping[str, EventWording]) -> list[dict[str, Any]]:
    """Timeline rows in words, one mechanism for every kind of event: each
    row's `text` is 「label: old → new」 (「担当者: 佐藤 美咲」, 「SLA: 期限内 →
    期限超過」), values through the kind's wording, usernames as staff names
    (one query for all). A kind without a wording shows its label only:
    never a stored value nor the event's details."""
    events = list(events)
    usernames = {
        stored
        for event in events
        if getattr(wordings.get(event.kind), "staff", False)
        for stored in (event.old, event.new)
        if stored
    }
    names = (
        {
            user.get_username(): staff_name(user)
            for user in get_user_model().objects.filter(username__in=usernames)
        }
        if usernames
        else {}
    )
    none = gettext("none")  # a value removed: 「担当者: 佐藤 → なし」
    rows = []
    for event in events:
        wording = wordings.get(event.kind) or EventWording(event.get_kind_display())
        old, new = (
            (wording.value(event.old, names), wording.value(event.new, names))
            if event.kind in wordings
            else ("", "")
        )
        if wording.note is not None and new:
            new = wording.note(event, new)
        if old and not (wording.subject and not new):
            change = f"{old} → {new or none}"
        else:
            change = new or old
        label = str(wording.label)
        rows.append(
            {
                "at": event.created_at,
                "kind": label,
                "old": old,
                "new": new,
                "text": f"{label}: {change}" if change else label,
                "actor": staff_name(event.actor),
            }
        )
    return rows

"""Types the apps share."""

from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User
    from django.utils.functional import _StrPromise

# Who did something, as services take it (`actor=`): a staff member
# (request.user in the admin), the client of an API key (request.user in the
# API: core.api.auth.ApiClient, which stands in for a user and has no primary
# key, so events store no one for it), or None for the system (the worker, a
# schedule, a command, an automatic reply). Events and rows keep only a real
# user: see core.timeline.actor_or_none.
Actor: TypeAlias = "User | AnonymousUser | None"

# Words for people: a str, or a lazy translation (gettext_lazy) made a str
# when shown. As django_stubs_ext.StrOrPromise, without its import at run time.
StrOrPromise: TypeAlias = "str | _StrPromise"

"""The staff roles (SPEC: groups agent, marketer, manager), who counts as a
manager, and a helper for data migrations that grant each role the
permissions of one app's models.

Each app's data migration lists what its models allow each role; the
helper creates the groups when missing, so the migrations of any app can
run in any order."""

from __future__ import annotations

from core.types import Actor

AGENT = "agent"
MARKETER = "marketer"
MANAGER = "manager"
ROLES = (AGENT, MARKETER, MANAGER)


def staff_name(user) -> str:
    """A staff member as Japanese colleagues call them: family name first;
    the username only for an account with no name."""
    if user is None:
        return ""
    name = f"{user.last_name} {user.first_name}".strip()
    return name or user.get_username()


def is_manager(user: Actor) -> bool:
    """Whether `user` has a manager's say: approves held replies, replies
    without approval, sees everyone's notifications. Superusers count.
    Asked once per user object (a request's user): the answer is kept on
    it, as Django keeps its permission cache."""
    if user is None:
        return False
    if not hasattr(user, "_is_manager"):
        user._is_manager = user.is_superuser or user.groups.filter(name=MANAGER).exists()  # type: ignore[union-attr]  # a cache on the user object, as Django's _perm_cache
    return user._is_manager  # type: ignore[union-attr]  # set just above


def manager_required(actor: Actor, message: str = "") -> None:
    """Refuse (PermissionDenied, with `message` or a general sentence) an
    actor who is not a manager: the one check services run before a
    manager's decision."""
    from django.core.exceptions import PermissionDenied
    from django.utils.translation import gettext

    if not is_manager(actor):
        raise PermissionDenied(message or gettext("Only a manager may do this."))


def managers():
    """The active members of the manager group: who is told of held replies
    and SLA breaches. Superusers are left out on purpose: a superuser is an
    administrator's account, not on the shop's rota, so it may act as a
    manager (is_manager) but is not notified as one."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(groups__name=MANAGER, is_active=True)


def role_permissions_grant(apps, app_label: str, grants: dict[str, list[str]]) -> None:
    """`grants` maps a role to permission codenames of `app_label`
    ("view_customer"); the permissions are created first if need be."""
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config(app_label)
    stub = getattr(app_config, "models_module", None) is None
    if stub:
        # The migration state's app configs are stubs; create_permissions
        # only needs to know the app has models.
        app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    if stub:
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        codenames = grants.get(role, [])
        permissions = list(
            Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames)
        )
        missing = set(codenames) - {p.codename for p in permissions}
        if missing:
            raise RuntimeError(f"unknown permissions for {app_label}: {sorted(missing)}")
        group.permissions.add(*permissions)

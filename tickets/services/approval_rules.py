"""Reply approval rules: which groups' replies wait for a manager
(replies.reply_needs_approval). Setting or removing one changes who may
write to customers unchecked, so each change is recorded in the audit
trail (監査ログ), which nobody can change, as staff logins are
(core.services)."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from core.audit import audit_record
from core.models import AuditAction
from core.timeline import actor_or_none
from core.types import Actor
from tickets.models import ReplyApprovalRule


def reply_approval_rule_save(*, rule: ReplyApprovalRule, actor: Actor) -> ReplyApprovalRule:
    """Create or change a rule; a new one records who set it."""
    created = rule.pk is None
    if created:
        rule.created_by = actor_or_none(actor)
    rule.full_clean()
    with transaction.atomic():
        rule.save()
        if created:
            what = _("Replies by %(group)s now wait for a manager's approval.")
        else:
            what = _("Reply approval rule changed: now for %(group)s.")
        audit_record(action=AuditAction.CHANGE, actor=actor, what=what % {"group": rule.group.name})
    return rule


def reply_approval_rule_delete(*, rule: ReplyApprovalRule, actor: Actor) -> None:
    """Remove a rule: the group's replies go out without approval again."""
    with transaction.atomic():
        what = _("Replies by %(group)s no longer wait for approval.") % {"group": rule.group.name}
        rule.delete()
        audit_record(action=AuditAction.CHANGE, actor=actor, what=what)

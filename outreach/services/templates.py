"""Writes for message templates."""

from __future__ import annotations

from core.types import Actor
from outreach.models import MessageTemplate
from outreach.services.review_requests import template_saved, template_saved_after
from outreach.templating import template_validate


def template_save(*, template: MessageTemplate, actor: Actor = None) -> MessageTemplate:
    """Validate (syntax, variables, LINE limits) and save."""
    check = template_validate(
        channel=template.channel,
        subject=template.subject,
        body_text=template.body_text,
        body_html=template.body_html,
        line_messages=template.line_messages,
    )
    template.is_personal = check.is_personal
    if template.pk is None and getattr(actor, "pk", None):
        template.created_by = actor
    template.full_clean()
    # Journey steps: a review request's wording is checked; their open
    # sends go on with the template as it is now.
    template_saved(template)
    template.save()
    template_saved_after(template)
    return template

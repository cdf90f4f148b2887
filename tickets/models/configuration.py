"""What managers set up for inquiries: trouble categories, reply templates,
reply approval rules and automatic acknowledgements."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from core.choices import Channel


class Category(models.Model):
    """Trouble categories (SPEC rule 3); managers may add more."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100, unique=True)
    is_complaint = models.BooleanField(
        _("counts as a complaint"),
        default=False,
        help_text=_("Inquiries of this category count towards the claimant suggestion."),
    )
    position = models.PositiveSmallIntegerField(_("position"), default=100)

    class Meta:
        ordering = ["position", "name"]
        verbose_name = _("category")
        verbose_name_plural = _("categories")

    def __str__(self) -> str:
        return self.name


class ReplyTemplate(models.Model):
    """A canned reply an agent picks in the reply box; its variables fill in
    from the inquiry (customer name, order number, expected date...)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    category = models.ForeignKey(
        Category,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="reply_templates",
        verbose_name=_("category"),
    )
    body = models.TextField(_("text"))
    is_active = models.BooleanField(_("active"), default=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    # The short text for LINE replies (no mail signature, no 「本メール」).
    line_body = models.TextField(_("LINE text"), blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("reply template")
        verbose_name_plural = _("reply templates")

    def __str__(self) -> str:
        return self.name


class ReplyApprovalRule(models.Model):
    """Replies written by members of this group wait for a manager's
    approval before they go out."""

    group = models.OneToOneField(
        "auth.Group",
        on_delete=models.CASCADE,
        related_name="reply_approval_rule",
        verbose_name=_("group"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("set by"),
    )
    created_at = models.DateTimeField(_("since"), auto_now_add=True)

    class Meta:
        verbose_name = _("reply approval rule")
        verbose_name_plural = _("reply approval rules")

    def __str__(self) -> str:
        return str(self.group)


class AutoAcknowledgement(models.Model):
    """An automatic first answer per channel ("we received your inquiry").
    It is not a person's reply: it never stops the first-reply clock."""

    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, unique=True)
    body = models.TextField(
        _("text"),
        help_text=_("Variables: {{ customer.name }}, {{ inquiry.reference }}, {{ shop.name }}."),
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("automatic acknowledgement")
        verbose_name_plural = _("automatic acknowledgements")

    def __str__(self) -> str:
        return self.get_channel_display()

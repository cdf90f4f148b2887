"""Every mail received (what became of it) and where the IMAP poller is."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from tickets.models.messages import InquiryMessage


class InboundStatus(models.TextChoices):
    PROCESSED = "processed", _("Processed")
    IGNORED = "ignored", _("Ignored")
    FAILED = "failed", _("Failed")


class InboundMail(models.Model):
    """Every mail received, once (by Message-ID or content hash): what
    became of it, and the raw bytes of those that failed so nothing is lost."""

    source = models.CharField(_("source"), max_length=100)
    dedupe_key = models.CharField(max_length=255, unique=True)
    message_id = models.CharField(_("Message-ID"), max_length=255, blank=True)
    from_address = models.CharField(_("sender"), max_length=255, blank=True)
    subject = models.CharField(_("subject"), max_length=255, blank=True)
    status = models.CharField(_("status"), max_length=9, choices=InboundStatus.choices)
    reason = models.TextField(_("reason"), blank=True)
    raw = models.BinaryField(_("raw message"), blank=True)
    inquiry_message = models.ForeignKey(
        InquiryMessage,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("message"),
    )
    received_at = models.DateTimeField(_("received"), auto_now_add=True)

    class Meta:
        verbose_name = _("inbound mail")
        verbose_name_plural = _("inbound mail")
        indexes = [models.Index(fields=["status", "received_at"], name="tickets_inbound_status")]

    def __str__(self) -> str:
        return f"{self.get_status_display()}: {self.subject}"


class MailboxState(models.Model):
    """Where the IMAP poller is in a mailbox: survives restarts."""

    name = models.CharField(max_length=255, primary_key=True)  # user@host/mailbox
    uid_validity = models.BigIntegerField(null=True)
    last_uid = models.BigIntegerField(default=0)
    polled_at = models.DateTimeField(null=True)
    # The message being read, and how many polls began reading it: a poll
    # that died on it (killed, out of memory) leaves these behind.
    attempt_uid = models.BigIntegerField(null=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_uid}"

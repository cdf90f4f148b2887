"""The email worker: renders each claimed row with its legal footer, tracked links and
unsubscribe header, and sends the batch over one SMTP connection.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import escape

from crm.models import Customer
from outreach import ledger, rate
from outreach.channels import Outcome, Result
from outreach.channels.email import (
    EmailAdapter,
    EmailMessage,
    bounce_address_for,
    message_id_for,
)
from outreach.dispatch_worker import DispatchReport, _record, _Worker
from outreach.ledger import Claimed
from outreach.models import (
    Delivery,
    Send,
    SendKind,
)
from outreach.templating import (
    TEST_MARK,
    render_email,
    shop_context,
)

logger = logging.getLogger(__name__)


class EmailWorker(_Worker):
    # Where each recipient's unsubscribe link goes in the footer rendered
    # once per worker: HTML escaping leaves it as it is.
    UNSUBSCRIBE_MARK = "madoguchi-unsubscribe-url-3f9c2e"

    def __init__(self, send: Send) -> None:
        super().__init__(send)
        self.batch_size = settings.EMAIL_BATCH_SIZE
        self.adapter = EmailAdapter()
        self._footers: tuple[str, str] | None = None

    def close(self) -> None:
        self.adapter.close()

    def footers(self, unsubscribe_url: str) -> tuple[str, str]:
        """The legal footer of marketing mail (text, HTML) for one link. The
        templates are rendered once per worker (the same shop, language and
        wording for every recipient); the link, escaped as the template
        would have escaped it, is put in afterwards."""
        if self._footers is None:
            footer = {"shop": shop_context(), "unsubscribe_url": self.UNSUBSCRIBE_MARK}
            self._footers = (
                render_to_string("outreach/email_footer.txt", footer),
                render_to_string("outreach/email_footer.html", footer),
            )
        link = escape(unsubscribe_url)
        text, html = self._footers
        return text.replace(self.UNSUBSCRIBE_MARK, link), html.replace(self.UNSUBSCRIBE_MARK, link)

    def message(self, row: Delivery, customer: Customer, address: str) -> EmailMessage:
        context = self.context(customer, row.context_key)
        if self.template is not None:
            rendered = render_email(
                subject=self.template.subject,
                body_text=self.template.body_text,
                body_html=self.template.body_html,
                context=context,
            )
            subject = rendered.subject
            text = self.track(rendered.text, row.pk)
            html = self.track(rendered.html, row.pk, html=True)
            if self.send.kind == SendKind.TEST:
                subject = TEST_MARK + subject
        else:  # literal content (an agent's reply): sent as written
            subject = self.content.get("subject", "")
            text = self.content.get("body_text", "")
            html = self.content.get("body_html", "")
        headers = {"X-Madoguchi-Delivery": str(row.pk)}
        headers.update(self.content.get("headers") or {})
        if self.send.is_marketing:
            footer_text, footer_html = self.footers(context["unsubscribe_url"])
            text = text.rstrip() + "\n\n" + footer_text
            if html:
                html = html + footer_html
            headers["List-Unsubscribe"] = f"<{context['unsubscribe_url']}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            headers["Precedence"] = "bulk"
            headers["Auto-Submitted"] = "auto-generated"
        return EmailMessage(
            key=row.pk,
            to=address,
            subject=subject,
            text=text,
            html=html,
            message_id=message_id_for(send_id=self.send.pk, delivery_id=row.pk),
            headers=headers,
            reply_to=self.content.get("reply_to", ""),
            return_path=bounce_address_for(delivery_id=row.pk),
        )

    def process(
        self, rows: list[Claimed], *, now: datetime, report: DispatchReport, lease: ledger.Lease
    ) -> bool:
        ready = self.check(rows, now=now, report=report)
        if not ready:
            return True
        messages, outcomes = [], []
        for row, customer, address in ready:
            try:
                messages.append(self.message(row, customer, address))
            except Exception as exc:  # a template that fails for this customer
                logger.exception("delivery %s: rendering failed", row.pk)
                outcomes.append(([row], Outcome(Result.FAILED, error=f"Rendering failed: {exc}")))
        by_id = {row.pk: row for row, _customer, _address in ready}
        if messages:
            rate.rate_acquire("email", rate_per_second=settings.EMAIL_RATE, tokens=len(messages))
            try:
                with ledger.delivery_sent_writer() as mark_sent:
                    for key, outcome in self.adapter.send(messages, held=lease.held):
                        if outcome.result is Result.SENT:
                            # Recorded before the next message goes out: a crash
                            # repeats at most the one in progress on this connection.
                            mark_sent(key, now=timezone.now(), provider_id=outcome.provider_id)
                            report.sent += 1
                        else:
                            outcomes.append(([by_id[key]], outcome))
            except Exception:
                # What the server took is recorded already (never sent
                # again), the other outcomes now; the rest keeps its lease.
                _record(outcomes, now=timezone.now(), report=report, lease=lease)
                raise
        return _record(outcomes, now=timezone.now(), report=report, lease=lease)

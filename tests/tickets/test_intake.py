"""A customer's message arriving (tickets/services/intake.py): the fields
that travel together from the channel travel as one InboundMessage."""

from __future__ import annotations

import dataclasses
import inspect
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.tickets import factories
from tickets.services import AttachmentData, InboundMessage, inquiry_create, inquiry_inbound_add

pytestmark = pytest.mark.django_db


def _mail(**changes) -> InboundMessage:
    mail = InboundMessage(
        subject="箱が潰れていました",
        body_text="届いた箱が潰れていました。\n\n> 以前のメール",
        visible_text="届いた箱が潰れていました。",
        body_html="<p>届いた箱が潰れていました。</p>",
        message_id="<a1@example.jp>",
        in_reply_to="<q0@example.jp>",
        references="<q0@example.jp> <r0@example.jp>",
        attachments=[AttachmentData("箱.jpg", "image/jpeg", b"jpg", 3)],
        received_at=timezone.now() - timedelta(hours=2),
    )
    return dataclasses.replace(mail, **changes)


def _stored(message) -> dict:
    return {
        "subject": message.subject,
        "body_text": message.body_text,
        "visible_text": message.visible_text,
        "body_html": message.body_html,
        "message_id": message.message_id,
        "in_reply_to": message.in_reply_to,
        "references": message.references,
        "attachments": [a.filename for a in message.attachments.all()],
        "received_at": message.created_at,
    }


def _expected(mail: InboundMessage) -> dict:
    return {
        **{field.name: getattr(mail, field.name) for field in dataclasses.fields(mail)},
        "attachments": [a.filename for a in mail.attachments],
    }


def test_every_field_of_the_message_reaches_a_new_inquiry():
    customer = factories.inquiry().customer
    mail = _mail()

    inquiry = inquiry_create(customer=customer, channel="email", message=mail)

    assert _stored(inquiry.messages.get()) == _expected(mail)
    assert inquiry.subject == mail.subject and inquiry.created_at == mail.received_at


def test_every_field_of_the_message_reaches_an_open_inquiry():
    inquiry = factories.inquiry(received_at=timezone.now() - timedelta(hours=3))
    mail = _mail()

    message = inquiry_inbound_add(inquiry=inquiry, message=mail)

    assert message.inquiry_id == inquiry.pk
    assert _stored(message) == _expected(mail)


def test_a_message_is_one_immutable_object():
    mail = _mail()
    with pytest.raises(dataclasses.FrozenInstanceError):
        mail.subject = "別件"  # type: ignore[misc]
    assert not hasattr(mail, "__dict__")  # slots: no stray attribute rides along


def test_inquiry_create_takes_the_message_as_one_parameter():
    parameters = inspect.signature(inquiry_create).parameters
    assert "message" in parameters and "body_text" not in parameters
    assert len(parameters) <= 10

"""Staff notifications by email, through a real SMTP server (aiosmtpd)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.smtp_server import SmtpServer
from tests.tickets import factories
from tickets.models import NotificationKind, StaffNotification
from tickets.services.notices import NOTICE_MAX_ATTEMPTS, staff_notifications_email
from tickets.tasks import notifications_email_task

pytestmark = pytest.mark.django_db


def notices_for(django_user_model, *names: str) -> list[StaffNotification]:
    """One assignment notice for each of `names` (users with an address
    name@shop.example), oldest first."""
    inquiry = factories.inquiry()
    notes = []
    for name in names:
        user = django_user_model.objects.create_user(
            name, email=f"{name}@shop.example", is_staff=True
        )
        notes.append(
            StaffNotification.objects.create(
                user=user, inquiry=inquiry, kind=NotificationKind.ASSIGNED
            )
        )
    return notes


def recipients(smtp: SmtpServer) -> list[str]:
    return sorted(address for mail in smtp.received for address in mail.rcpt_tos)


def test_a_refused_address_is_recorded_on_its_row_and_the_others_go_out_once(
    smtp, django_user_model
):
    # given: three notices, the middle one for an address the server refuses
    first, refused, last = notices_for(django_user_model, "sato", "gone", "suzuki")
    smtp.refuse("gone@shop.example")
    # when: the task runs twice, and once more a day later
    assert notifications_email_task() == 2
    assert notifications_email_task() == 0
    assert staff_notifications_email(now=timezone.now() + timedelta(days=1)) == 0
    # then: the others were mailed exactly once; the refusal is on its row
    assert recipients(smtp) == ["sato@shop.example", "suzuki@shop.example"]
    for note in (first, refused, last):
        note.refresh_from_db()
    assert first.emailed_at is not None and last.emailed_at is not None
    assert refused.emailed_at is None and refused.email_failed_at is not None
    assert "550" in refused.email_error and refused.email_attempts == 1


def test_the_notification_list_says_which_notice_could_not_be_mailed(
    smtp, client, django_user_model, owner
):
    notices_for(django_user_model, "sato", "gone", "later")
    smtp.refuse("gone@shop.example")
    staff_notifications_email()
    StaffNotification.objects.create(
        user=django_user_model.objects.get(username="later"),
        inquiry=factories.inquiry(),
        kind=NotificationKind.ASSIGNED,
        key="again",
    )
    client.force_login(owner)
    response = client.get(reverse("admin:tickets_staffnotification_changelist") + "?for=all")
    rows = response.content.decode().split("<tr")
    mail = {name: [row for row in rows if f">{name}<" in row] for name in ("sato", "gone", "later")}
    assert "メール送信済み" in mail["sato"][0]
    assert (
        "メールを送れませんでした（宛先が受け付けられないか、失敗が続きました）" in mail["gone"][0]
    )
    assert sorted("メール送信待ち" in row for row in mail["later"]) == [False, True]


def test_the_notification_list_names_each_recipient_not_their_login(
    client, django_user_model, owner
):
    (note,) = notices_for(django_user_model, "tanaka")
    django_user_model.objects.filter(pk=note.user_id).update(last_name="田中", first_name="花子")
    client.force_login(owner)

    response = client.get(reverse("admin:tickets_staffnotification_changelist") + "?for=all")

    table = response.content.decode().split('id="result_list"')[1]
    assert ">田中 花子<" in table
    assert ">tanaka<" not in table


def test_a_temporary_failure_is_retried_later_and_given_up_after_the_last_attempt(
    smtp, django_user_model
):
    # given: a server that answers 451 to everything for a while
    (note,) = notices_for(django_user_model, "sato")
    smtp.fail_temporarily(100)
    now = timezone.now()
    # when: runs every hour, far past each back-off
    for hour in range(NOTICE_MAX_ATTEMPTS + 2):
        staff_notifications_email(now=now + timedelta(hours=hour))
        note.refresh_from_db()
        if hour == 0:
            # then: not retried before its back-off ends
            assert note.email_next_attempt_at > now
            assert staff_notifications_email(now=now + timedelta(seconds=1)) == 0
    # then: tried NOTICE_MAX_ATTEMPTS times, then given up with the reason
    assert note.email_attempts == NOTICE_MAX_ATTEMPTS
    assert note.email_failed_at is not None and note.emailed_at is None
    assert "451" in note.email_error
    assert smtp.handler.temporary_failures == 100 - NOTICE_MAX_ATTEMPTS


def test_a_server_that_cannot_be_reached_uses_no_attempt(smtp, django_user_model):
    (note,) = notices_for(django_user_model, "sato")
    smtp.stop()
    assert staff_notifications_email() == 0
    note.refresh_from_db()
    assert note.email_attempts == 0 and note.email_failed_at is None
    assert note.email_next_attempt_at > timezone.now() and note.email_error
    # the server is back: the notice goes out once its retry is due
    smtp.start()
    assert staff_notifications_email(now=note.email_next_attempt_at) == 1
    assert recipients(smtp) == ["sato@shop.example"]


def test_a_user_without_an_address_keeps_the_notice_in_the_admin_only(smtp, django_user_model):
    (note,) = notices_for(django_user_model, "sato")
    django_user_model.objects.filter(pk=note.user_id).update(email="")
    assert staff_notifications_email() == 0
    note.refresh_from_db()
    assert note.emailed_at is not None and smtp.received == []


def test_a_reply_failed_notice_is_mailed_to_its_author_in_japanese(smtp, django_user_model):
    (note,) = notices_for(django_user_model, "sato")
    StaffNotification.objects.filter(pk=note.pk).update(kind=NotificationKind.REPLY_FAILED)
    assert staff_notifications_email() == 1
    (mail,) = smtp.received
    reference = note.inquiry.reference
    assert mail.message["Subject"] == (
        f"【送信失敗】[{reference}] 返信がお客様に届きませんでした: {note.inquiry.subject}"
    )
    assert "あなたの返信がお客様に届きませんでした" in mail.message.get_content()


def test_a_notice_is_marked_automatic_and_never_mailed_to_our_own_address(
    smtp, django_user_model, settings
):
    # given: two notices, one for a staff member whose address is the shop's own
    settings.MAIL_OWN_ADDRESSES = ["loop@shop.example"]
    _mailed, ours = notices_for(django_user_model, "sato", "loop")
    # when
    assert notifications_email_task() == 1
    # then: the mail says it is automatic (RFC 3834); our own address gets none
    assert recipients(smtp) == ["sato@shop.example"]
    assert smtp.received[0].message["Auto-Submitted"] == "auto-generated"
    ours.refresh_from_db()
    assert ours.emailed_at is None and ours.email_failed_at is not None
    assert staff_notifications_email() == 0 and len(smtp.received) == 1


def test_the_notification_list_never_says_mailed_for_a_notice_to_our_own_address(
    smtp, client, django_user_model, owner, settings
):
    # given: a staff member whose address is one of the shop's own
    settings.MAIL_OWN_ADDRESSES = ["loop@shop.example"]
    notices_for(django_user_model, "sato", "loop")
    # when: the notices are mailed and a manager opens the list
    staff_notifications_email()
    client.force_login(owner)
    response = client.get(reverse("admin:tickets_staffnotification_changelist") + "?for=all")
    # then: the list says that notice was not mailed, and why
    rows = response.content.decode().split("<tr")
    (sato,) = [row for row in rows if ">sato<" in row]
    (loop,) = [row for row in rows if ">loop<" in row]
    assert "メール送信済み" in sato
    assert "メール送信済み" not in loop
    assert "メール未送信（店舗自身のアドレス）" in loop

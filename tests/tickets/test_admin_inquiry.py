"""The inquiry page: the conversation, the customer panel, the controls
(each one service), the template picker, the collision check, approval,
a flat query count; and the reply-template and calendar settings."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from core.roles import AGENT, MARKETER
from crm.services import consent_record, customer_claimant_set, customer_upsert
from outreach.dispatch import send_dispatch
from outreach.models import Delivery
from tests.crm import factories as crm_factories
from tests.tickets import factories
from tickets.admin.inquiries import InquiryAdmin
from tickets.admin.inquiry_context import ACTIONS
from tickets.models import (
    BusinessCalendar,
    Category,
    Inquiry,
    InquiryMessage,
    MessageKind,
    NotificationKind,
    OutboundState,
    ReplyApprovalRule,
    ReplyTemplate,
    SlaState,
    StaffNotification,
)
from tickets.reply_templates import DELIVERY_DELAY, reply_templates_ensure
from tickets.services import (
    AttachmentData,
    InboundMessage,
    inquiry_assign,
    inquiry_auto_acknowledge,
    inquiry_inbound_add,
    inquiry_note_add,
    inquiry_reply,
    reply_needs_approval,
)
from tickets.tasks import sla_watch_task

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media_and_presence(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    cache.clear()  # presence lives in the cache
    yield
    cache.clear()


@pytest.fixture
def marketer(django_user_model):
    user = django_user_model.objects.create_user("marketer", is_staff=True)
    user.groups.add(Group.objects.get(name=MARKETER))
    return user


@pytest.fixture
def trainee(django_user_model, owner):
    """An agent whose replies wait for a manager's approval."""
    user = django_user_model.objects.create_user("trainee", is_staff=True, last_name="新人")
    group = Group.objects.create(name="研修中")
    ReplyApprovalRule.objects.create(group=group, created_by=owner)
    user.groups.add(group, Group.objects.get(name=AGENT))
    return user


def page_url(inquiry) -> str:
    return reverse("admin:tickets_inquiry_change", args=[inquiry.pk])


def action_url(inquiry, action: str) -> str:
    return reverse("admin:tickets_inquiry_action", args=[inquiry.pk, action])


def ja(text: str) -> str:
    with translation.override("ja"):
        return gettext(text)


def latest_id(inquiry) -> int:
    return InquiryMessage.objects.filter(inquiry=inquiry).order_by("-pk").first().pk


def send_reply(client, inquiry, body="ご連絡ありがとうございます。", *, seen=None, **extra):
    data = {
        "reply-body": body,
        "reply-channel": "email",
        "reply-seen_message_id": latest_id(inquiry) if seen is None else seen,
        **extra,
    }
    return client.post(action_url(inquiry, "reply"), data)


def photo(name="写真.jpg", size=2048) -> AttachmentData:
    return AttachmentData(name, "image/jpeg", b"\xff\xd8" + b"x" * (size - 2), size)


# --- Query count ----------------------------------------------------------------------


def _messages(inquiry, count: int, colleague) -> None:
    """`count` more messages of every kind, with attachments."""
    for index in range(count):
        kind = index % 3
        if kind == 0:
            inquiry_inbound_add(
                inquiry=inquiry,
                message=InboundMessage(
                    body_text=f"追加の写真です {index}",
                    attachments=[
                        photo(f"写真{index}.jpg"),
                        AttachmentData("動画.mp4", "video/mp4", None, 10**9),
                    ],
                ),
            )
        elif kind == 1:
            inquiry_note_add(inquiry=inquiry, body=f"確認中 {index}", actor=colleague)
        else:
            inquiry_reply(inquiry=inquiry, body=f"回答 {index}", actor=colleague)


def test_inquiry_page_query_count_does_not_grow_with_messages(
    client, owner, colleague, django_assert_num_queries
):
    client.force_login(owner)
    customer = crm_factories.customer()
    crm_factories.order(customer=customer)
    factories.inquiry(customer=customer)  # another inquiry of the customer
    inquiry = factories.inquiry(customer=customer, attachments=[photo()])
    inquiry_assign(inquiry=inquiry, assignee=colleague, actor=owner)
    _messages(inquiry, 1, colleague)
    # session, user, permissions (2), the inquiry with its joins, manager?,
    # messages with authors and deliveries, their attachments, consent,
    # orders, other inquiries, timeline, the satisfaction survey, the colleagues its assignments
    # name, LINE identity, then the choices
    # of the template, assignee and category selects; the incident banner and
    # the ongoing incidents the inquiry is linked to or may belong to; the
    # audit row (a view of the customer); the agent's read state (the inbox's unread mark)
    with django_assert_num_queries(22):
        response = client.get(page_url(inquiry))
    assert len(response.context["conversation"]) == 2

    _messages(inquiry, 10, colleague)
    with django_assert_num_queries(22):
        response = client.get(page_url(inquiry))
    assert len(response.context["conversation"]) == 12


# --- What the page shows ------------------------------------------------------------------


def test_the_conversation_in_order_with_kinds_states_and_attachments(client, colleague, trainee):
    from tickets.models import AutoAcknowledgement

    AutoAcknowledgement.objects.create(channel="email", body="{{ customer.name }}様 受付しました")
    inquiry = factories.inquiry(
        attachments=[photo(), AttachmentData("大.mov", "video/quicktime", None, 10**9)]
    )
    inquiry_auto_acknowledge(inquiry=inquiry)
    inquiry_note_add(inquiry=inquiry, body="倉庫に確認中", actor=colleague)
    inquiry_reply(inquiry=inquiry, body="確認いたします。", actor=colleague)
    inquiry_reply(inquiry=inquiry, body="承認待ちの返信", actor=trainee)
    client.force_login(colleague)

    response = client.get(page_url(inquiry))
    views = response.context["conversation"]
    assert [(v.side, v.message.kind) for v in views] == [
        ("customer", "inbound"),
        ("staff", "outbound"),
        ("note", "note"),
        ("staff", "outbound"),
        ("staff", "outbound"),
    ]
    html = response.content.decode()
    assert ja("Automatic reply") in html and ja("Internal note") in html
    assert ja("Awaiting approval") in html and 'class="msg msg-note"' in html
    assert views[3].labels == [("delivery-queued", ja("Queued"))]
    stored, truncated = views[0].attachments
    assert stored[1] == reverse("admin:tickets_inquiry_attachment", args=[inquiry.pk, stored[0].pk])
    assert truncated[1] == "" and ja("too large, not stored") in html


def test_a_reply_that_did_not_reach_the_customer_says_so_and_the_clock_reopening_shows(
    client, colleague, smtp, settings
):
    # given: a first reply the mail server refused, and the SLA tick after it
    settings.QUIET_HOURS_START = settings.QUIET_HOURS_END = 0
    inquiry = factories.inquiry()
    smtp.refuse(inquiry.customer.email)
    reply = inquiry_reply(inquiry=inquiry, body="確認いたします。", actor=colleague)
    send_dispatch(send_id=reply.delivery.send_id)
    sla_watch_task()
    client.force_login(colleague)
    # when
    response = client.get(page_url(inquiry))
    # then: the reply is marked in Japanese, and the timeline tells why the clock runs
    (view,) = [v for v in response.context["conversation"] if v.message.pk == reply.pk]
    assert view.labels == [("delivery-failed", "送信失敗：お客様に届いていません")]
    timeline = [(row["kind"], row["old"], row["new"]) for row in response.context["timeline"]]
    assert timeline[-3:] == [
        ("返信が届きませんでした", "", ""),
        ("初回返信の計測を再開", "", ""),
        ("SLA", ja("Met"), ja("On track")),
    ]


def test_an_attachment_downloads_only_through_its_inquiry(client, colleague, outsider):
    inquiry = factories.inquiry(attachments=[photo(size=100)])
    other = factories.inquiry()
    attachment = inquiry.messages.get().attachments.get()
    client.force_login(colleague)
    response = client.get(
        reverse("admin:tickets_inquiry_attachment", args=[inquiry.pk, attachment.pk])
    )
    assert response.status_code == 200
    assert b"".join(response.streaming_content)[:2] == b"\xff\xd8"
    assert "attachment;" in response["Content-Disposition"]
    wrong = reverse("admin:tickets_inquiry_attachment", args=[other.pk, attachment.pk])
    assert client.get(wrong).status_code == 404
    client.force_login(outsider)
    assert (
        client.get(
            reverse("admin:tickets_inquiry_attachment", args=[inquiry.pk, attachment.pk])
        ).status_code
        == 302
    )


def test_the_customer_panel(client, colleague, owner):
    customer = crm_factories.customer(family_name="田村", family_name_kana="タムラ")
    customer_claimant_set(customer=customer, reason="返品期限後の返品を繰り返し要求。", actor=owner)
    consent_record(
        customer=customer, channel="email", action="opt_in", source="staff", note="店頭で申込書"
    )
    orders = [
        crm_factories.order(customer=customer, ordered_at=timezone.now() - timedelta(days=days))
        for days in range(1, 8)
    ]
    earlier = factories.inquiry(customer=customer, subject="以前の問い合わせ")
    inquiry = factories.inquiry(customer=customer)
    client.force_login(colleague)
    response = client.get(page_url(inquiry))
    html = response.content.decode()
    assert "返品期限後の返品を繰り返し要求。" in html and 'class="claimant-badge"' in html
    assert response.context["orders"] == orders[:5]  # the last five
    assert response.context["other_inquiries"] == [earlier]
    assert dict(response.context["consent"])[ja("Email")] is True
    assert reverse("admin:crm_customer_change", args=[customer.pk]) in html
    assert "タムラ" in html
    assert f"¥{orders[0].total:,}" in html  # amounts with the thousands separator


def test_a_reply_whose_outcome_is_unknown_is_not_called_failed(client, colleague, settings):
    # given: a reply the mail server took, but whose outcome the ledger could not learn
    settings.QUIET_HOURS_START = settings.QUIET_HOURS_END = 0
    inquiry = factories.inquiry()
    reply = inquiry_reply(inquiry=inquiry, body="確認いたします。", actor=colleague)
    Delivery.objects.filter(pk=reply.delivery_id).update(status="unknown")
    sla_watch_task()
    client.force_login(colleague)
    # when
    response = client.get(page_url(inquiry))
    # then: the label says the outcome is unknown, not that it failed
    (view,) = [v for v in response.context["conversation"] if v.message.pk == reply.pk]
    assert view.labels == [("delivery-unknown", "送信結果不明：お客様に届いたか確認できません")]


def test_the_timeline_names_channels_stages_and_colleagues_not_stored_values(client, colleague):
    # given: an inquiry by the own site, assigned to a colleague, who replies
    inquiry = factories.inquiry(channel="own_site")
    inquiry_assign(inquiry=inquiry, assignee=colleague, actor=colleague)
    inquiry_reply(inquiry=inquiry, body="確認いたします。", actor=colleague)
    client.force_login(colleague)
    # when
    response = client.get(page_url(inquiry))
    # then: every value reads as the team says it; no enum value nor username
    rows = [(row["kind"], row["old"], row["new"]) for row in response.context["timeline"]]
    assert ("受付", "", "自社サイト") in rows
    assert ("担当者", "", "佐藤") in rows
    assert ("段階", "", "初期連絡") in rows
    assert ("メッセージ", "", "顧客へ") in rows
    shown = {value for row in rows for value in row}
    assert not shown & {"own_site", "colleague", "triaged", "first_contact", "outbound"}


# --- Replying -------------------------------------------------------------------------------


def test_a_reply_from_the_page_goes_through_the_ledger(client, colleague):
    inquiry = factories.inquiry()
    client.force_login(colleague)
    response = send_reply(client, inquiry)
    assert response.status_code == 302 and response["Location"].endswith("#latest")
    reply = InquiryMessage.objects.get(inquiry=inquiry, kind=MessageKind.OUTBOUND)
    assert Delivery.objects.filter(pk=reply.delivery_id, send__kind="reply").exists()
    inquiry.refresh_from_db()
    assert inquiry.first_replied_at is not None and inquiry.sla_state == SlaState.MET


def test_a_note_from_the_page_does_not_stop_the_clock(client, colleague):
    inquiry = factories.inquiry()
    client.force_login(colleague)
    response = client.post(action_url(inquiry, "note"), {"note-body": "倉庫に確認中"})
    assert response.status_code == 302
    inquiry.refresh_from_db()
    assert inquiry.first_replied_at is None
    assert inquiry.messages.filter(kind=MessageKind.NOTE, author=colleague).count() == 1


def test_the_template_picker_fills_customer_order_and_date(client, colleague):
    reply_templates_ensure()
    customer = crm_factories.customer(family_name="佐々木", given_name="恵子")
    order = crm_factories.order(customer=customer, order_number="MD-2611-000042")
    inquiry = factories.inquiry(customer=customer, order=order)
    template = ReplyTemplate.objects.get(name=DELIVERY_DELAY)
    url = reverse("admin:tickets_inquiry_reply_template", args=[inquiry.pk])
    client.force_login(colleague)

    data = client.get(
        url, {"template": template.pk, "order": order.pk, "date": "2026-12-05"}
    ).json()
    assert data["body"].startswith("佐々木 恵子様")
    assert "注文番号: MD-2611-000042" in data["body"]
    assert "お届け予定日: 2026年12月5日（土）" in data["body"]
    assert data["missing"] == []
    # without a date the agent is told what is missing
    data = client.get(url, {"template": template.pk, "order": order.pk}).json()
    assert data["missing"] == ["お届け予定日"]  # the value as the agent knows it
    # an impossible date is refused, not a crash
    assert client.get(url, {"template": template.pk, "date": "2026-02-30"}).status_code == 400
    # another customer's order is refused
    stranger = crm_factories.order(customer=crm_factories.customer())
    assert client.get(url, {"template": template.pk, "order": stranger.pk}).status_code == 400


def test_the_template_picker_picks_no_order_when_the_typed_number_did_not_match(client, colleague):
    # given: a customer with an order, who typed a stranger's order number
    customer = crm_factories.customer()
    crm_factories.order(customer=customer, order_number="OWN-1")
    crm_factories.order(customer=crm_factories.customer(), order_number="STRANGER-1")
    unmatched = factories.inquiry(customer=customer, order_number="STRANGER-1")
    plain = factories.inquiry(customer=customer)
    client.force_login(colleague)
    # when
    picks = [client.get(page_url(i)).context["pick_form"] for i in (unmatched, plain)]
    # then: no order is put in the template for the unmatched number; otherwise the latest
    assert picks[0].initial.get("order") is None
    assert picks[1].initial.get("order") == customer.orders.get().pk


def test_every_alert_on_the_inquiry_page_is_coloured_like_an_alert():
    # the unmatched order number, presence, newer and recent replies: each kind
    # of alert box the page template uses has its colours in the page's CSS
    root = Path(__file__).resolve().parents[2]
    page = (root / "templates/admin/tickets/inquiry/inquiry_page.html").read_text()
    css = (root / "tickets/static/tickets/admin.css").read_text()
    kinds = set(re.findall(r'class="inquiry-alert ([\w-]+)"', page))
    coloured = {
        kind
        for selectors, rule in re.findall(r"([^{}]+)\{([^}]*)\}", css)
        if "background" in rule
        for kind in re.findall(r"\.([\w-]+)", selectors)
    }
    assert "order-unmatched-alert" in kinds
    assert kinds <= coloured, kinds - coloured


def test_a_reply_by_someone_else_after_the_page_loaded_holds_the_send(client, colleague, owner):
    inquiry = factories.inquiry()
    client.force_login(owner)
    seen = client.get(page_url(inquiry)).context["latest_message_id"]
    # meanwhile, the colleague answers the same customer
    inquiry_reply(inquiry=inquiry, body="佐藤が先に回答しました。", actor=colleague)

    response = send_reply(client, inquiry, "店長からの回答です。", seen=seen)
    assert response.status_code == 200
    html = response.content.decode()
    assert ja("Not sent: someone else replied to this customer after you opened the page.") in html
    assert "佐藤が先に回答しました。" in html and 'name="reply-confirm_collision"' in html
    assert "店長からの回答です。" in html  # the draft is kept
    assert not inquiry.messages.filter(author=owner).exists()

    response = send_reply(
        client, inquiry, "店長からの回答です。", seen=seen, **{"reply-confirm_collision": "on"}
    )
    assert response.status_code == 302
    assert inquiry.messages.filter(author=owner, kind=MessageKind.OUTBOUND).count() == 1
    assert Delivery.objects.filter(send__kind="reply").count() == 2


def test_presence_tells_who_else_has_the_inquiry_open(client, colleague, owner):
    inquiry = factories.inquiry()
    client.force_login(colleague)
    client.get(page_url(inquiry))  # the colleague has it open
    presence = reverse("admin:tickets_inquiry_presence", args=[inquiry.pk])
    client.force_login(owner)
    response = client.get(page_url(inquiry))
    with translation.override("ja"):
        expected = gettext("%(names)s also has this inquiry open.") % {"names": "佐藤"}
    assert expected in response.content.decode()

    seen = response.context["latest_message_id"]
    inquiry_reply(inquiry=inquiry, body="回答しました。", actor=colleague)
    beat = client.post(presence, {"seen": seen}).json()
    assert beat == {"viewers": ["佐藤"], "newer_replies": ["佐藤"], "newer_messages": 1}
    client.force_login(colleague)
    client.post(presence, {"leave": "1"})
    client.force_login(owner)
    assert client.post(presence, {"seen": seen + 1}).json()["viewers"] == []


# --- Approval ---------------------------------------------------------------------------------


def test_a_held_reply_is_sent_when_a_manager_approves_it(client, trainee, owner):
    inquiry = factories.inquiry()
    client.force_login(trainee)
    send_reply(client, inquiry, "確認いたします。")
    held = inquiry.messages.get(kind=MessageKind.OUTBOUND)
    assert held.outbound_state == OutboundState.AWAITING_APPROVAL and held.delivery is None
    assert client.post(action_url(inquiry, "approve"), {"message": held.pk}).status_code == 403

    client.force_login(owner)
    page = client.get(page_url(inquiry))
    assert page.context["conversation"][1].forms is not None
    response = client.post(
        action_url(inquiry, "approve"),
        {"message": held.pk, f"approve-{held.pk}-body": "確認いたします。少々お待ちください。"},
    )
    assert response.status_code == 302
    held.refresh_from_db()
    assert held.delivery is not None and held.approved_by == owner
    assert held.body_text == "確認いたします。少々お待ちください。"
    inquiry.refresh_from_db()
    assert inquiry.first_replied_at is not None
    # approving twice (a second tab) sends nothing more and says why
    again = client.post(
        action_url(inquiry, "approve"), {"message": held.pk, f"approve-{held.pk}-body": "x"}
    )
    assert again.status_code == 200
    assert ja("This reply is not waiting for approval.") in again.content.decode()
    assert Delivery.objects.filter(send__kind="reply").count() == 1


def test_a_manager_returns_a_held_reply_with_a_note(client, trainee, owner):
    inquiry = factories.inquiry()
    client.force_login(trainee)
    send_reply(client, inquiry, "たぶん明日届きます。")
    held = inquiry.messages.get(kind=MessageKind.OUTBOUND)
    client.force_login(owner)
    # a return without a note is refused on the form
    response = client.post(action_url(inquiry, "return"), {"message": held.pk})
    assert response.status_code == 200
    response = client.post(
        action_url(inquiry, "return"),
        {
            "message": held.pk,
            f"return-{held.pk}-note": "「たぶん」ではなく日付を明記してください。",
        },
    )
    assert response.status_code == 302
    held.refresh_from_db()
    assert held.outbound_state == OutboundState.RETURNED and held.delivery is None
    client.force_login(trainee)
    html = client.get(page_url(inquiry)).content.decode()
    assert "「たぶん」ではなく日付を明記してください。" in html and "js-reuse" in html


def test_a_superuser_approves_replies_and_so_needs_no_approval_for_their_own(
    client, trainee, owner, django_user_model
):
    # given: a superuser who is also in the group whose replies wait for approval
    boss = django_user_model.objects.create_superuser("boss", last_name="社長")
    boss.groups.add(Group.objects.get(name="研修中"))
    inquiry = factories.inquiry()
    inquiry_reply(inquiry=inquiry, body="承認待ちの返信", actor=trainee)
    # when: they open the page, it offers them the trainee's held reply to approve
    client.force_login(boss)
    page = client.get(page_url(inquiry))
    assert page.context["can_approve"] and page.context["conversation"][1].forms is not None
    # then: the service agrees they approve, so their own reply goes straight out
    assert not reply_needs_approval(boss)
    assert send_reply(client, inquiry, "社長からの回答です。").status_code == 302
    sent = inquiry.messages.get(author=boss)
    assert sent.outbound_state == OutboundState.SENDING and sent.delivery is not None
    # the held reply was announced to the manager group, not to the superuser
    approvals = StaffNotification.objects.filter(kind=NotificationKind.APPROVAL)
    assert list(approvals.values_list("user", flat=True)) == [owner.pk]


# --- The other controls ------------------------------------------------------------------------


def test_every_control_on_the_page_has_its_handler_and_nothing_else_is_answered(client, colleague):
    inquiry = factories.inquiry()
    client.force_login(colleague)
    urls = client.get(page_url(inquiry)).context["action_urls"]
    assert sorted(urls) == sorted(name.replace("-", "_") for name in ACTIONS)
    for name in ACTIONS:
        assert callable(getattr(InquiryAdmin, f"do_{name.replace('-', '_')}")), name
    for unknown in ("delete", "assign_me", "held"):
        assert client.post(action_url(inquiry, unknown)).status_code == 404, unknown


def test_the_reply_box_offers_line_only_where_the_customer_can_get_it(client, colleague):
    by_mail = factories.inquiry(channel="email")
    by_line = factories.inquiry(channel="line")
    known_on_line = factories.inquiry(channel="email", customer=by_line.customer)
    client.force_login(colleague)
    for inquiry, default, offered in (
        (by_mail, "email", ["email"]),
        (by_line, "line", ["email", "line"]),
        (known_on_line, "email", ["email", "line"]),
    ):
        form = client.get(page_url(inquiry)).context["reply_form"]
        assert form["channel"].initial == default, inquiry.channel
        assert [value for value, _label in form.fields["channel"].choices] == offered


def test_each_control_calls_its_service(client, colleague):
    inquiry = factories.inquiry()
    client.force_login(colleague)
    defect = Category.objects.get(code="product_defect")
    posts = [
        ("assign-me", {}),
        ("category", {"category-category": defect.pk}),
        ("priority", {"priority-priority": "high"}),
        ("solution", {}),
        ("status", {"status-status": "resolved"}),
    ]
    for action, data in posts:
        assert client.post(action_url(inquiry, action), data).status_code == 302, action
    inquiry.refresh_from_db()
    assert (inquiry.assignee, inquiry.category, inquiry.priority) == (colleague, defect, "high")
    assert inquiry.triaged_at and inquiry.solution_proposed_at and inquiry.resolved_at
    kinds = set(inquiry.events.values_list("kind", flat=True))
    assert {"assigned", "category", "priority", "stage", "status"} <= kinds
    assert client.post(action_url(inquiry, "assign"), {"assign-assignee": ""}).status_code == 302
    inquiry.refresh_from_db()
    assert inquiry.assignee is None


def test_refusals_come_back_as_form_errors_not_errors(client, colleague):
    customer, _ = customer_upsert(channel="phone", phone="090-5555-6666", family_name="電話")
    inquiry = factories.inquiry(channel="phone", customer=customer)
    client.force_login(colleague)
    # the service refuses: no email address to reply to
    response = send_reply(client, inquiry, "お電話ありがとうございました。")
    assert response.status_code == 200
    assert ja("The customer has no email address.") in response.content.decode()
    assert response.context["reply_form"]["body"].value() == "お電話ありがとうございました。"
    # the forms refuse: an empty note, an unknown status
    assert client.post(action_url(inquiry, "note"), {"note-body": " "}).status_code == 200
    assert client.post(action_url(inquiry, "status"), {"status-status": "x"}).status_code == 200
    assert client.get(action_url(inquiry, "note")).status_code == 405
    assert inquiry.messages.count() == 1


# --- Who may ----------------------------------------------------------------------------------


def test_a_marketer_cannot_open_an_inquiry_nor_change_anything(client, marketer):
    # marketers build segments on inquiry counts but never read conversations
    inquiry = factories.inquiry(attachments=[photo(size=100)])
    attachment = inquiry.messages.get().attachments.get()
    client.force_login(marketer)
    assert client.get(page_url(inquiry)).status_code == 403
    download = reverse("admin:tickets_inquiry_attachment", args=[inquiry.pk, attachment.pk])
    assert client.get(download).status_code == 403
    assert client.post(action_url(inquiry, "note"), {"note-body": "メモ"}).status_code == 403
    assert send_reply(client, inquiry).status_code == 403
    assert inquiry.messages.count() == 1


def test_an_outsider_is_sent_to_the_login_page(client, outsider):
    inquiry = factories.inquiry()
    client.force_login(outsider)
    for url in (page_url(inquiry), action_url(inquiry, "note")):
        response = client.post(url, {"note-body": "x"}) if "do" in url else client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


def test_an_agent_enters_a_phone_call(client, colleague):
    customer = crm_factories.customer()
    client.force_login(colleague)
    response = client.post(
        reverse("admin:tickets_inquiry_add"),
        {
            "customer": customer.pk,
            "channel": "phone",
            "subject": "【電話】配達日の変更",
            "body_text": "土曜日の夜に変更したいとのこと。",
            "priority": "normal",
        },
    )
    inquiry = Inquiry.objects.get()
    assert response.status_code == 302 and response["Location"] == page_url(inquiry)
    assert inquiry.channel == "phone" and inquiry.first_reply_due_at is not None
    assert inquiry.messages.get().author == colleague


def test_an_agent_cannot_link_another_customers_order(client, colleague):
    customer = crm_factories.customer()
    strangers_order = crm_factories.order(customer=crm_factories.customer())
    client.force_login(colleague)
    response = client.post(
        reverse("admin:tickets_inquiry_add"),
        {
            "customer": customer.pk,
            "channel": "phone",
            "order": strangers_order.pk,
            "subject": "【電話】注文について",
            "body_text": "注文の確認をしたいとのこと。",
            "priority": "normal",
        },
    )
    assert response.status_code == 200
    assert ja("This order belongs to another customer.") in response.content.decode()
    assert not Inquiry.objects.exists()


def test_the_page_tells_the_agent_that_the_given_order_number_did_not_match(client, colleague):
    inquiry = factories.inquiry(order_number="OS-404")
    client.force_login(colleague)
    html = client.get(page_url(inquiry)).content.decode()
    assert "order-unmatched-alert" in html and "OS-404" in html
    matched = factories.inquiry()
    assert "order-unmatched-alert" not in client.get(page_url(matched)).content.decode()


# --- Settings: reply templates and calendars ------------------------------------------------------


def test_a_reply_template_is_checked_before_it_is_saved(client, owner):
    client.force_login(owner)
    url = reverse("admin:tickets_replytemplate_add")
    bad = client.post(
        url, {"name": "誤り", "body": "{{ customer.name }}様 {{ customer.password }}"}
    )
    assert (
        bad.status_code == 200
        and "customer.password" in bad.context["adminform"].form.errors["body"][0]
    )
    for body in ("{% if %}", "{{ customer.name 様"):  # a syntax error, a tag left open
        broken = client.post(url, {"name": "誤り", "body": body})
        assert broken.status_code == 200 and "body" in broken.context["adminform"].form.errors
    good = client.post(
        url,
        {
            "name": "お礼",
            "body": "{{ customer.name }}様\r\n{{ inquiry.reference }} {{ extra.date }}",
            "is_active": "on",
        },
    )
    assert good.status_code == 302
    assert (
        ReplyTemplate.objects.get(name="お礼").body
        == "{{ customer.name }}様\n{{ inquiry.reference }} {{ extra.date }}\n"
    )


def test_calendar_hours_are_entered_per_weekday_and_checked(client, owner):
    client.force_login(owner)
    calendar = BusinessCalendar.objects.get()
    url = reverse("admin:tickets_businesscalendar_change", args=[calendar.pk])
    data = {
        "name": calendar.name,
        "time_zone": "Asia/Tokyo",
        "hours_mon": "09:00-12:00, 13:00-18:00",
        "hours_tue": "9時から",
        "japanese_holidays": "on",
        "closures-TOTAL_FORMS": "0",
        "closures-INITIAL_FORMS": "0",
    }
    response = client.post(url, data)
    assert response.status_code == 200
    assert "hours_tue" in response.context["adminform"].form.errors
    data["hours_tue"] = "10:00-17:00"
    assert client.post(url, data).status_code == 302
    calendar.refresh_from_db()
    assert calendar.hours == {"mon": ["09:00-12:00", "13:00-18:00"], "tue": ["10:00-17:00"]}


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_the_page_script_parses():
    script = Path(__file__).resolve().parents[2] / "tickets/static/tickets/inquiry.js"
    subprocess.run(["node", "--check", str(script)], check=True)

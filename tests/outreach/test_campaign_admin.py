"""Campaigns, sends and deliveries in the admin: the buttons call the
services, progress comes from the ledger in one query, lists stay flat."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.roles import MARKETER
from crm import services as crm
from crm.models import Customer
from outreach import services
from outreach.dispatch import send_dispatch
from outreach.models import (
    Campaign,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    MessageTemplate,
    Segment,
    SegmentKind,
    Send,
    SendKind,
    SendStatus,
)
from tests.crm import factories

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:outreach_campaign_changelist")
ADD = reverse("admin:outreach_campaign_add")
DELIVERIES = reverse("admin:outreach_delivery_changelist")
SENDS = reverse("admin:outreach_send_changelist")


@pytest.fixture(autouse=True)
def _no_quiet_hours(settings):
    settings.QUIET_HOURS_START = settings.QUIET_HOURS_END = 0
    settings.DELIVERY_BACKOFF_SECONDS = 0
    settings.EMAIL_RATE = 10_000


@pytest.fixture
def marketer(django_user_model):
    user = django_user_model.objects.create_user(
        "marketer", password="pw-marketer-1234", is_staff=True, email="Mkt@Shop.example.jp"
    )
    user.groups.add(Group.objects.get(name=MARKETER))
    return user


@pytest.fixture
def template() -> MessageTemplate:
    return services.template_save(
        template=MessageTemplate(
            name="冬のセール",
            channel="email",
            purpose="marketing",
            subject="{{ customer.name }}様へ 冬のセール",
            body_text="{{ customer.family_name }}様\n\nセール開催中です。",
        )
    )


@pytest.fixture
def segment() -> Segment:
    return Segment.objects.create(name="新規", kind=SegmentKind.LIFECYCLE, lifecycle_segment="new")


def consented(**profile) -> Customer:
    """A new customer (one order) who opted in to email."""
    customer = factories.customer(**profile)
    factories.order(customer=customer)
    crm.consent_record(customer=customer, channel="email", action="opt_in", source="web_form")
    return customer


def campaign_make(template, segment, **fields) -> Campaign:
    return Campaign.objects.create(
        name=fields.pop("name", "冬のセール"),
        channel=template.channel,
        template=template,
        segment=segment,
        **fields,
    )


def change_url(campaign: Campaign) -> str:
    return reverse("admin:outreach_campaign_change", args=[campaign.pk])


def action_url(campaign: Campaign, action: str) -> str:
    return reverse("admin:outreach_campaign_action", args=[campaign.pk, action])


def progress_url(campaign: Campaign) -> str:
    return reverse("admin:outreach_campaign_progress", args=[campaign.pk])


def last_message(response) -> str:
    """The message this request added (earlier ones wait in the cookie)."""
    return [str(m) for m in get_messages(response.wsgi_request)][-1]


# --- Changelists: constant queries ----------------------------------------------------


def launched_campaigns(template, segment, numbers: range) -> list[Campaign]:
    campaigns = []
    for n in numbers:
        campaign = campaign_make(template, segment, name=f"c{n}")
        if n % 3:  # a mix of drafts and launched campaigns with ledgers
            campaign = services.campaign_launch(campaign=campaign)
        campaigns.append(campaign)
    return campaigns


def test_campaign_changelist_queries_do_not_grow_with_campaigns(
    client, marketer, template, segment, django_assert_num_queries
):
    for _ in range(3):
        consented()
    consented(email="")  # skipped: no address
    client.force_login(marketer)
    launched_campaigns(template, segment, range(3))
    with CaptureQueriesContext(connection) as few:
        response = client.get(CHANGELIST)
    assert response.status_code == 200
    launched_campaigns(template, segment, range(3, 10))
    # session, user, permissions (2), count, page, the progress of the page's
    # sends, the incident banner
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(CHANGELIST)
    assert len(few.captured_queries) == 8
    content = response.content.decode()
    # 4 recipients each: 3 queued, 1 skipped (no address), which is apart:
    # nothing attempted yet of the 3 that can be sent
    assert "0% (0/3)" in content
    rows = {row.name: row for row in response.context["cl"].result_list}
    assert len(rows) == 10
    progress = rows["c1"].send_progress
    assert (progress.attempted, progress.sendable, progress.ineligible) == (0, 3, 1)
    assert rows["c0"].send_id is None and rows["c0"].send_progress is None  # not launched


def test_delivery_changelist_queries_do_not_grow_with_deliveries(
    client, marketer, template, django_assert_num_queries
):
    client.force_login(marketer)

    def ledger(count: int) -> None:
        send = services.send_create(
            kind="campaign", channel="email", purpose="marketing", template=template
        )
        customers = [factories.customer() for _ in range(count)]
        services.deliveries_snapshot(
            send=send,
            audience=Customer.objects.filter(pk__in=[c.pk for c in customers]),
            now=timezone.now(),
        )

    ledger(5)
    with CaptureQueriesContext(connection) as few:
        assert client.get(DELIVERIES).status_code == 200
    ledger(25)
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(
            DELIVERIES, {"status__exact": "skipped", "send__kind__exact": "campaign"}
        )
    assert len(response.context["cl"].result_list) == 30
    # session, user, permissions (2), count, page, the incident banner
    assert len(few.captured_queries) == 7


def test_delivery_search_finds_a_customer_by_name_or_email(client, marketer, template, segment):
    hanako = consented(family_name="鈴木", given_name="花子", email="hanako@example.jp")
    consented(family_name="田中", email="tanaka@example.jp")
    services.campaign_launch(campaign=campaign_make(template, segment))
    client.force_login(marketer)
    for term in ("hanako@example.jp", "鈴木"):
        rows = client.get(DELIVERIES, {"q": term}).context["cl"].result_list
        assert [row.customer_id for row in rows] == [hanako.pk]


def test_deliveries_and_sends_are_read_only(client, owner, template, segment):
    consented()
    campaign = services.campaign_launch(campaign=campaign_make(template, segment))
    delivery = Delivery.objects.get()
    client.force_login(owner)
    delivery_url = reverse("admin:outreach_delivery_change", args=[delivery.pk])
    send_url = reverse("admin:outreach_send_change", args=[campaign.send_id])
    assert client.get(reverse("admin:outreach_delivery_add")).status_code == 403
    assert client.post(delivery_url, {"status": "sent"}).status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.QUEUED
    page = client.get(send_url)
    assert page.status_code == 200
    assert 'id="send-progress"' in page.content.decode()
    assert client.get(SENDS).status_code == 200


# --- The change page -----------------------------------------------------------------


def test_a_draft_page_shows_the_live_audience_in_bounded_queries(
    client, marketer, template, segment, django_assert_max_num_queries
):
    consented()
    consented()
    factories.order(customer=factories.customer())  # in the segment, but no consent
    campaign = campaign_make(template, segment)
    client.force_login(marketer)
    # session, user, campaign, permissions (2), audience, test customer, content
    # type (widget wrapper), template and segment choices
    with django_assert_max_num_queries(10):
        response = client.get(change_url(campaign))
    assert response.status_code == 200
    assert response.context["audience"] == {"total": 3, "reachable": 2}
    assert response.context["actions"]["launch"] is True
    assert action_url(campaign, "launch") in response.content.decode()


def test_a_line_draft_and_its_launch_name_the_longest_rendering(client, marketer, segment):
    template = services.template_save(
        template=MessageTemplate(
            name="LINE長文",
            channel="line",
            purpose="marketing",
            line_messages=["こんにちは", "あ" * 4960 + "{{ customer.name }}様"],
        )
    )
    for family, given in [("山田", "花"), ("長" * 30, "名" * 10), ("佐藤", "一郎")]:
        customer, _ = crm.customer_upsert(channel="line", external_id=f"U{len(given):032x}")
        crm.customer_update(customer=customer, family_name=family, given_name=given)
        factories.order(customer=customer)
        crm.consent_record(customer=customer, channel="line", action="opt_in", source="line")
    longest = Customer.objects.get(given_name="名" * 10)
    campaign = campaign_make(template, segment, name="LINE長文")
    client.force_login(marketer)

    page = client.get(change_url(campaign))

    assert page.context["longest"].customer == longest
    assert (page.context["longest"].message, page.context["longest"].length) == (2, 5002)
    html = page.content.decode()
    assert "最も長くなるのは" in html and "5,002" in html and str(longest) in html
    assert "LINEの上限を超えるため" in html

    launched = client.post(action_url(campaign, "launch"))
    text = last_message(launched)
    assert "最も長くなるのは" in text and "5,002" in text


def test_the_launch_message_reads_as_a_marketer_speaks(client, marketer, segment, settings):
    # given: a two-message LINE campaign launched at night (quiet hours now)
    hour = timezone.localtime().hour
    settings.QUIET_HOURS_START, settings.QUIET_HOURS_END = hour, (hour + 1) % 24
    template = services.template_save(
        template=MessageTemplate(
            name="LINE二通",
            channel="line",
            purpose="marketing",
            line_messages=["こんにちは", "{{ customer.name }}様、新商品のご案内です"],
        )
    )
    customer, _ = crm.customer_upsert(channel="line", external_id="U" + "a" * 32)
    crm.customer_update(customer=customer, family_name="山田", given_name="花")
    factories.order(customer=customer)
    crm.consent_record(customer=customer, channel="line", action="opt_in", source="line")
    campaign = campaign_make(template, segment, name="LINE二通")
    client.force_login(marketer)
    # when
    text = last_message(client.post(action_url(campaign, "launch")))
    # then: the 2nd message counted without encoding jargon; quiet hours not called 配信停止
    assert "2通目のメッセージで" in text and "夜間の配信休止時間帯" in text
    assert "UTF-16" not in text and "配信停止" not in text


def test_a_launched_campaign_page_shows_progress_and_is_read_only(
    client, marketer, template, segment, django_assert_max_num_queries
):
    consented()
    consented(email="")
    campaign = services.campaign_launch(campaign=campaign_make(template, segment))
    client.force_login(marketer)
    client.get(change_url(campaign))  # Django's content-type cache warm, as in production
    # session, user, campaign, permissions (2), progress, results, test
    # customer, the incident banner
    with django_assert_max_num_queries(9):
        response = client.get(change_url(campaign))
    progress = response.context["progress"]
    # before a single mail went out: 0 %, the ineligible one apart
    assert (progress["total"], progress["done"], progress["percent"]) == (1, 0, 0)
    assert progress["ineligible"] == 1
    assert {i["status"]: i["count"] for i in progress["by_status"]}["queued"] == 1
    assert [(i["reason"], i["count"]) for i in progress["by_reason"]] == [("no_address", 1)]
    assert "name" not in response.context["adminform"].form.fields
    assert response.context["actions"]["pause"] and not response.context["actions"]["launch"]
    content = response.content.decode()
    assert f'data-url="{progress_url(campaign)}"' in content
    # Posting the form changes nothing.
    client.post(change_url(campaign), {"name": "改名"})
    campaign.refresh_from_db()
    assert campaign.name == "冬のセール"


def test_a_campaign_page_names_its_creator_not_their_login(client, marketer, template, segment):
    marketer.last_name, marketer.first_name = "山本", "健太"
    marketer.save(update_fields=["last_name", "first_name"])
    campaign = campaign_make(template, segment, created_by=marketer)
    client.force_login(marketer)

    page = client.get(change_url(campaign)).content.decode()

    record = page.split('class="form-row field-created_by')[1].split("</div>\n</div>")[0]
    assert "山本 健太" in record and "marketer" not in record


def test_adding_a_draft_and_scheduling_it_by_its_time(client, marketer, template, segment):
    client.force_login(marketer)
    data = {"name": "冬", "channel": "email", "template": template.pk, "segment": segment.pk}
    response = client.post(ADD, data)
    assert response.status_code == 302
    campaign = Campaign.objects.get()
    assert (campaign.status, campaign.created_by) == (CampaignStatus.DRAFT, marketer)

    at = timezone.localtime() + timedelta(days=2)
    response = client.post(
        change_url(campaign),
        {
            **data,
            "scheduled_at_0": at.strftime("%Y-%m-%d"),
            "scheduled_at_1": at.strftime("%H:%M:%S"),
        },
    )
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SCHEDULED
    assert campaign.scheduled_at == at.replace(microsecond=0)


def test_a_past_time_or_another_channels_template_is_a_form_error(
    client, marketer, template, segment
):
    line = services.template_save(
        template=MessageTemplate(name="LINE", channel="line", line_messages=["新商品"])
    )
    campaign = campaign_make(template, segment)
    client.force_login(marketer)
    data = {"name": "冬", "channel": "email", "template": line.pk, "segment": segment.pk}
    response = client.post(change_url(campaign), data)
    assert list(response.context["adminform"].form.errors) == ["template"]

    past = timezone.localtime() - timedelta(hours=1)
    data.update(
        template=template.pk,
        scheduled_at_0=past.strftime("%Y-%m-%d"),
        scheduled_at_1=past.strftime("%H:%M:%S"),
    )
    response = client.post(change_url(campaign), data)
    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["scheduled_at"]
    campaign.refresh_from_db()
    assert (campaign.status, campaign.name) == (CampaignStatus.DRAFT, "冬のセール")


def test_only_marketing_templates_are_offered(client, marketer, template):
    services.template_save(
        template=MessageTemplate(
            name="発送", channel="email", purpose="transactional", subject="s", body_text="b"
        )
    )
    client.force_login(marketer)
    field = client.get(ADD).context["adminform"].form.fields["template"]
    names = [t.name for t in field.queryset]
    assert "冬のセール" in names and "発送" not in names
    assert {t.purpose for t in field.queryset} == {"marketing"}  # built-in journeys' too


# --- The buttons -----------------------------------------------------------------------


def test_send_now_snapshots_the_audience_into_the_ledger(client, marketer, template, segment):
    ok = consented()
    consented(email="")
    campaign = campaign_make(template, segment)
    client.force_login(marketer)
    response = client.post(action_url(campaign, "launch"))
    assert response.status_code == 302 and response.url == change_url(campaign)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENDING
    assert campaign.send.created_by == marketer
    assert Delivery.objects.get(send=campaign.send, status="queued").customer == ok
    assert Delivery.objects.filter(send=campaign.send).count() == 2
    assert "1" in last_message(response)  # one queued

    # a second click changes nothing and says so
    response = client.post(action_url(campaign, "launch"))
    assert Send.objects.count() == 1
    assert [m.level_tag for m in get_messages(response.wsgi_request)][-1] == "error"


def test_pause_resume_and_cancel_change_the_status(client, marketer, template, segment):
    consented()
    consented()
    campaign = services.campaign_launch(campaign=campaign_make(template, segment))
    client.force_login(marketer)

    client.post(action_url(campaign, "pause"))
    campaign.refresh_from_db()
    assert (campaign.status, campaign.send.status) == (CampaignStatus.PAUSED, SendStatus.PAUSED)

    client.post(action_url(campaign, "resume"))
    campaign.refresh_from_db()
    assert (campaign.status, campaign.send.status) == (CampaignStatus.SENDING, SendStatus.SENDING)

    client.post(action_url(campaign, "cancel"))
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CANCELLED
    assert set(Delivery.objects.values_list("skip_reason", flat=True)) == {"cancelled"}


def test_a_refused_transition_is_a_message_not_an_error_page(client, marketer, template, segment):
    campaign = campaign_make(template, segment)
    client.force_login(marketer)
    response = client.post(action_url(campaign, "resume"))
    assert response.status_code == 302
    assert campaign.get_status_display() in last_message(response)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT

    past = (timezone.localtime() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(action_url(campaign, "schedule"), {"schedule-scheduled_at": past})
    assert response.status_code == 302
    assert [m.level_tag for m in get_messages(response.wsgi_request)] == ["error", "error"]
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT


def test_schedule_button_schedules(client, marketer, template, segment):
    campaign = campaign_make(template, segment)
    at = timezone.localtime() + timedelta(days=1)
    client.force_login(marketer)
    client.post(
        action_url(campaign, "schedule"), {"schedule-scheduled_at": at.strftime("%Y-%m-%dT%H:%M")}
    )
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SCHEDULED
    assert campaign.scheduled_at == at.replace(second=0, microsecond=0)


def a_tester(**profile) -> Customer:
    """A customer marked as a test recipient (e.g. the shop's test account)."""
    customer = factories.customer(**profile)
    return crm.customer_test_recipient_set(customer=customer, value=True, actor=None)


def test_the_test_send_offers_only_testers(client, marketer, template, segment):
    regular = consented(email="hanako@example.jp")
    shop_test = a_tester(email="test@shop.example.jp")
    a_tester(email="")  # a tester without an email address: not offered for email
    campaign = campaign_make(template, segment)
    client.force_login(marketer)

    page = client.get(change_url(campaign))

    choices = dict(page.context["test_send_form"].fields["recipient"].choices)
    assert list(choices) == ["", "myself", str(shop_test.pk)]
    assert choices["myself"] == f"自分（{marketer.email}）"
    # a customer who is not a tester is refused, even posted by hand
    refused = client.post(action_url(campaign, "test_send"), {"recipient": regular.pk})
    assert [m.level_tag for m in get_messages(refused.wsgi_request)] == ["error"]
    assert not Send.objects.exists()


def test_the_test_send_picker_asks_to_choose_in_words_not_dashes(
    client, marketer, template, segment
):
    campaign = campaign_make(template, segment)
    client.force_login(marketer)

    page = client.get(change_url(campaign))

    choices = page.context["test_send_form"].fields["recipient"].choices
    assert choices[0] == ("", "（選択してください）")
    picker = page.content.decode().split('class="campaign-test-send"')[1].split("</form>")[0]
    assert "---------" not in picker and "（選択してください）" in picker


def test_with_no_tester_on_the_channel_the_page_says_how_to_get_one(client, marketer, segment):
    # given: a LINE campaign; the only tester has no LINE, and staff have no LINE of their own
    a_tester(email="test@shop.example.jp")
    template = services.template_save(
        template=MessageTemplate(
            name="LINE", channel="line", purpose="marketing", line_messages=["こんにちは"]
        )
    )
    campaign = campaign_make(template, segment)
    client.force_login(marketer)
    # when
    page = client.get(change_url(campaign)).content.decode()
    # then: no empty picker, but what to do instead
    assert 'name="recipient"' not in page
    assert "このチャネルで受け取れるテスト送信先がまだいません" in page


def test_a_test_goes_marked_to_the_tester_now_whatever_consent_and_quiet_hours(
    client, marketer, template, segment, smtp, settings
):
    hour = timezone.localtime().hour  # quiet hours now
    settings.QUIET_HOURS_START, settings.QUIET_HOURS_END = hour, (hour + 1) % 24
    shop_test = a_tester(email="test@shop.example.jp", family_name="検証")  # no consent
    campaign = campaign_make(template, segment)
    client.force_login(marketer)

    client.post(action_url(campaign, "test_send"), {"recipient": shop_test.pk})
    send = Send.objects.get()
    send_dispatch(send_id=send.pk)

    # the ledger records a test, to that tester only
    assert (send.kind, send.template) == (SendKind.TEST, template)
    assert list(send.deliveries.values_list("customer_id", "status")) == [(shop_test.pk, "sent")]
    [mail] = smtp.received
    assert mail.message["Subject"] == f"【テスト】{shop_test.display_name}様へ 冬のセール"
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT
    assert campaign.events.get(kind="test_sent").data == {"customer": shop_test.pk}


def test_a_test_to_myself_goes_to_my_own_address_marked_as_a_tester(
    client, marketer, template, segment
):
    campaign = campaign_make(template, segment)
    client.force_login(marketer)

    client.post(action_url(campaign, "test_send"), {"recipient": "myself"})

    me = Customer.objects.get(email_normalized="mkt@shop.example.jp")
    assert me.is_test_recipient
    delivery = Send.objects.get(kind=SendKind.TEST).deliveries.get()
    assert (delivery.customer_id, delivery.status) == (me.pk, "queued")


def test_the_test_send_message_names_the_tester_naturally(client, marketer, template, segment):
    tester = a_tester(email="test@shop.example.jp", family_name="店舗", given_name="テスト")
    campaign = campaign_make(template, segment)
    client.force_login(marketer)

    response = client.post(action_url(campaign, "test_send"), {"recipient": tester.pk})

    assert last_message(response) == "店舗 テスト 宛てにテストを送信しています。"


def test_launching_with_a_refused_template_is_a_message(client, marketer, segment):
    notice = services.template_save(
        template=MessageTemplate(
            name="発送", channel="email", purpose="transactional", subject="s", body_text="b"
        )
    )
    consented()
    campaign = campaign_make(notice, segment)  # the form would not offer it
    client.force_login(marketer)
    response = client.post(action_url(campaign, "launch"))
    assert response.status_code == 302
    assert [m.level_tag for m in get_messages(response.wsgi_request)] == ["error"]
    assert not Send.objects.exists()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT


def test_the_deliveries_link_lists_that_send_only(client, marketer, template, segment):
    consented()
    consented()
    first = services.campaign_launch(campaign=campaign_make(template, segment, name="a"))
    services.campaign_launch(campaign=campaign_make(template, segment, name="b"))
    client.force_login(marketer)
    page = client.get(change_url(first))
    url = page.context["deliveries_url"]
    rows = client.get(url).context["cl"].result_list
    assert {row.send_id for row in rows} == {first.send_id} and len(rows) == 2


def test_progress_endpoint_follows_the_worker(client, marketer, template, segment, smtp):
    consented()
    consented()
    consented(email="")
    campaign = campaign_make(template, segment)
    client.force_login(marketer)
    assert client.get(progress_url(campaign)).status_code == 404  # not launched yet
    client.post(action_url(campaign, "launch"))
    campaign.refresh_from_db()

    data = client.get(progress_url(campaign)).json()
    assert (data["total"], data["done"], data["pending"], data["percent"]) == (2, 0, 2, 0)
    assert data["ineligible"] == 1
    assert [(r["reason"], r["count"]) for r in data["by_reason"]] == [("no_address", 1)]

    send_dispatch(send_id=campaign.send_id)
    data = client.get(progress_url(campaign)).json()
    assert data["status"] == "completed"
    assert {s["status"]: s["count"] for s in data["by_status"]} == {
        "queued": 0,
        "sending": 0,
        "sent": 2,
        "failed": 0,
        "skipped": 0,  # the ineligible one is counted apart
        "unknown": 0,
    }
    assert data["percent"] == 100
    assert len(smtp.received) == 2


# --- Who may -------------------------------------------------------------------------------


def test_an_agent_cannot_launch_and_an_outsider_is_sent_to_login(
    client, colleague, outsider, template, segment
):
    consented()
    campaign = campaign_make(template, segment)
    client.force_login(colleague)
    assert client.post(action_url(campaign, "launch")).status_code == 403
    assert client.get(progress_url(campaign)).status_code == 403
    assert client.get(change_url(campaign)).status_code == 403
    client.force_login(outsider)
    for url in (action_url(campaign, "launch"), progress_url(campaign), CHANGELIST, DELIVERIES):
        response = client.post(url) if "action" in url else client.get(url)
        assert response.status_code == 302 and "/login/" in response.url
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT
    assert not Delivery.objects.exists()


def test_buttons_only_take_posts(client, marketer, template, segment):
    campaign = campaign_make(template, segment)
    client.force_login(marketer)
    assert client.get(action_url(campaign, "launch")).status_code == 405
    assert client.post(action_url(campaign, "explode")).status_code == 404
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT

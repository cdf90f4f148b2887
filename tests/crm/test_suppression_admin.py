"""Suppressed addresses on the customer page and in their list, and
「配信停止を解除する」 with a note (service, customer event, audit trail)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.models import AuditEntry
from crm import services as crm
from crm.models import MailBounce, Suppression
from tests.crm import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def bounced():
    customer = factories.customer(family_name="不達", given_name="太郎", email="gone@example.jp")
    crm.bounce_record(address="gone@example.jp", kind="hard", status="5.1.1")
    return customer


def lift_url(suppression: Suppression) -> str:
    return reverse("admin:crm_suppression_lift", args=[suppression.pk])


def test_the_customer_page_says_the_address_gets_no_marketing_and_why(client, owner, bounced):
    client.force_login(owner)
    html = client.get(reverse("admin:crm_customer_change", args=[bounced.pk])).content.decode()
    assert "gone@example.jp" in html
    assert "アドレスが存在しない（ハードバウンス）" in html
    assert lift_url(Suppression.objects.get()) in html


def test_an_agent_sees_the_suppression_but_no_lift_link_and_is_refused(client, colleague, bounced):
    client.force_login(colleague)
    html = client.get(reverse("admin:crm_customer_change", args=[bounced.pk])).content.decode()
    suppression = Suppression.objects.get()
    assert "アドレスが存在しない（ハードバウンス）" in html
    assert lift_url(suppression) not in html
    assert client.post(lift_url(suppression), {"note": "確認済み"}).status_code == 403
    assert Suppression.objects.get().lifted_at is None


def test_lifting_needs_a_note_and_is_recorded_in_the_audit_trail(client, owner, bounced):
    client.force_login(owner)
    suppression = Suppression.objects.get()

    refused = client.post(lift_url(suppression), {"note": ""})
    assert refused.status_code == 200 and Suppression.objects.get().lifted_at is None

    done = client.post(lift_url(suppression), {"note": "お電話でアドレスを確認しました"})
    assert done.status_code == 302
    lifted = Suppression.objects.get()
    assert (lifted.lifted_by, lifted.note) == (owner, "お電話でアドレスを確認しました")
    entry = AuditEntry.objects.get(customer_id=bounced.pk, action="change")
    assert entry.user == owner
    assert bounced.events.filter(kind="suppress_lifted").count() == 1


def test_the_suppression_list_reads_the_same_number_of_queries_for_3_or_12_rows(client, owner):
    client.force_login(owner)
    url = reverse("admin:crm_suppression_changelist")

    def queries(rows: int) -> int:
        for n in range(Suppression.objects.count(), rows):
            crm.bounce_record(address=f"gone{n}@example.jp", kind="hard")
            if n % 2:  # lifted rows show who lifted them
                crm.suppression_lift(
                    suppression=Suppression.objects.get(address=f"gone{n}@example.jp"),
                    note="確認済み",
                    actor=owner,
                )
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    assert queries(3) == queries(12)


def test_erasing_the_customer_deletes_their_bounces_and_suppressions(owner, bounced):
    other = factories.customer(email="stays@example.jp")
    crm.bounce_record(address="stays@example.jp", kind="hard")

    crm.customer_erase(customer=bounced, actor=owner, reason="ご本人のご依頼（電話）")

    assert list(Suppression.objects.values_list("address", flat=True)) == [other.email_normalized]
    assert list(MailBounce.objects.values_list("address", flat=True)) == ["stays@example.jp"]

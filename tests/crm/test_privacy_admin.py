"""The customer page's 「個人データを書き出す」 and 「個人データを削除する」:
managers only, with a reason; Django's delete of a customer is gone."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext

from core.roles import MARKETER
from crm.models import Customer, CustomerEvent, CustomerEventKind
from tests.crm import factories

pytestmark = pytest.mark.django_db


def ja(text: str) -> str:
    with translation.override("ja"):
        return gettext(text)


def export_url(customer: Customer) -> str:
    return reverse("admin:crm_customer_privacy_export", args=[customer.pk])


def erase_url(customer: Customer) -> str:
    return reverse("admin:crm_customer_privacy_erase", args=[customer.pk])


@pytest.fixture
def customer() -> Customer:
    return factories.customer(
        family_name="開示", given_name="花子", email="hanako.kaiji@example.jp", address="秘密町1-1"
    )


@pytest.fixture
def marketer(django_user_model):
    user = django_user_model.objects.create_user("marketer", is_staff=True)
    user.groups.add(Group.objects.get(name=MARKETER))
    return user


def test_a_manager_sees_both_buttons_on_the_customer_page(client, owner, customer):
    client.force_login(owner)
    html = client.get(reverse("admin:crm_customer_change", args=[customer.pk])).content.decode()
    assert export_url(customer) in html and erase_url(customer) in html


@pytest.mark.parametrize("user", ["colleague", "marketer"])
def test_agents_and_marketers_see_no_button_and_are_refused(client, customer, user, request):
    client.force_login(request.getfixturevalue(user))
    page = client.get(reverse("admin:crm_customer_change", args=[customer.pk]))
    assert export_url(customer) not in page.content.decode()
    for url in (export_url(customer), erase_url(customer)):
        assert client.get(url).status_code == 403
        assert client.post(url, {"reason": "依頼", "output": "download"}).status_code == 403
    assert Customer.objects.get(pk=customer.pk).email == "hanako.kaiji@example.jp"
    assert not CustomerEvent.objects.filter(
        kind__in=[CustomerEventKind.EXPORTED, CustomerEventKind.ERASED]
    ).exists()


def test_the_summary_shows_the_data_in_japanese_and_records_the_export(client, owner, customer):
    client.force_login(owner)
    response = client.post(export_url(customer), {"reason": "本人の開示請求", "output": "summary"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "開示" in html and "hanako.kaiji@example.jp" in html and "秘密町1-1" in html
    assert ja("Own site") in html and "own_site" not in html
    event = CustomerEvent.objects.get(customer=customer, kind=CustomerEventKind.EXPORTED)
    assert (event.actor, event.data["reason"]) == (owner, "本人の開示請求")


def test_the_download_is_the_whole_export_as_a_json_file(client, owner, customer):
    client.force_login(owner)
    response = client.post(export_url(customer), {"reason": "開示請求", "output": "download"})
    assert response["Content-Disposition"].startswith("attachment;")
    document = json.loads(response.content)
    assert document["customers"][0]["email"] == "hanako.kaiji@example.jp"


def test_without_a_reason_nothing_is_exported_and_the_form_says_why(client, owner, customer):
    client.force_login(owner)
    response = client.post(export_url(customer), {"reason": "", "output": "download"})
    assert response.status_code == 200 and response.context["form"].errors["reason"]
    assert not CustomerEvent.objects.filter(kind=CustomerEventKind.EXPORTED).exists()


def test_the_erase_page_says_what_goes_and_what_stays(client, owner, customer):
    client.force_login(owner)
    html = client.get(erase_url(customer)).content.decode()
    assert ja("What is erased") in html and ja("What stays") in html
    assert Customer.objects.get(pk=customer.pk).email == "hanako.kaiji@example.jp"


def test_a_manager_erases_with_a_reason_and_comes_back_to_the_anonymous_customer(
    client, owner, customer
):
    client.force_login(owner)
    response = client.post(erase_url(customer), {"reason": "本人の削除請求（電話）"})
    assert response.status_code == 302
    erased = Customer.objects.get(pk=customer.pk)
    assert (erased.family_name, erased.email, erased.address) == ("", "", "")
    event = CustomerEvent.objects.get(customer=customer, kind=CustomerEventKind.ERASED)
    assert (event.actor, event.data["reason"]) == (owner, "本人の削除請求（電話）")
    page = client.get(response["Location"]).content.decode()
    assert "開示" not in page and "hanako.kaiji" not in page
    # the timeline says what was done in words, not the event's JSON
    assert ja("Personal data erased") in page and ja("records erased") in page
    assert "crm.customer" not in page and "本人の削除請求（電話）" in page


def test_django_delete_of_a_customer_is_replaced(client, django_user_model, customer):
    admin = django_user_model.objects.create_superuser("root", password="pw-root-1234")
    client.force_login(admin)
    changelist = client.get(reverse("admin:crm_customer_changelist"))
    assert (
        "delete_selected"
        not in changelist.context["action_form"].fields["action"].choices.__str__()
    )
    response = client.post(
        reverse("admin:crm_customer_delete", args=[customer.pk]), {"post": "yes"}
    )
    assert response.status_code == 403
    assert Customer.objects.filter(pk=customer.pk).exists()

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import Customer
from outreach.segments import segment_rule_q
from tests.crm import factories as crm_factories
from tests.tickets import factories
from tickets.models import Category

pytestmark = pytest.mark.django_db


def matching(rule) -> set[int]:
    return set(
        Customer.objects.filter(segment_rule_q(rule, now=timezone.now())).values_list(
            "pk", flat=True
        )
    )


def test_inquiry_count_and_recent_complaints_are_segment_fields():
    quiet = crm_factories.customer()
    asker = crm_factories.customer()
    complainer = crm_factories.customer()
    defect = Category.objects.get(code="product_defect")
    factories.inquiry(customer=asker)
    for _ in range(3):
        factories.inquiry(customer=complainer, category=defect)
    factories.inquiry(
        customer=asker, category=defect, received_at=timezone.now() - timedelta(days=120)
    )

    assert matching(
        {"match": "all", "conditions": [{"field": "inquiry_count", "op": "gte", "value": 2}]}
    ) == {
        asker.pk,
        complainer.pk,
    }
    assert matching(
        {
            "match": "all",
            "conditions": [{"field": "complaint_count_recent", "op": "gte", "value": 3}],
        }
    ) == {complainer.pk}
    assert matching(
        {"match": "all", "conditions": [{"field": "inquiry_count", "op": "eq", "value": 0}]}
    ) == {quiet.pk}

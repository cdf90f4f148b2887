"""Property-based tests: the consent state always equals the ledger's last
event per channel, and lifecycle segments match their definition over
generated order histories."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from crm import services
from crm.models import ConsentEvent, ConsentState, Customer, LifecycleSegment

NOW = timezone.now().replace(microsecond=0)

consent_events = st.lists(
    st.tuples(
        st.sampled_from(["email", "line", "dm"]),
        st.sampled_from(["opt_in", "opt_out"]),
        # minutes before now; duplicates on purpose, to exercise ties
        st.integers(min_value=0, max_value=30),
    ),
    min_size=1,
    max_size=12,
)


class ConsentLedgerProperties(TestCase):
    @given(events=consent_events)
    def test_state_equals_last_ledger_event_per_channel_whatever_the_arrival_order(self, events):
        customer, _ = services.customer_upsert(channel="own_site", external_id="p1")
        for channel, action, minutes_ago in events:
            services.consent_record(
                customer=customer,
                channel=channel,
                action=action,
                source="api",
                occurred_at=NOW - timedelta(minutes=minutes_ago),
            )
        expected = {}
        for event in ConsentEvent.objects.filter(customer=customer).order_by("occurred_at", "id"):
            expected[event.channel] = (event.action == "opt_in", event.pk)
        actual = {
            state.channel: (state.granted, state.event_id)
            for state in ConsentState.objects.filter(customer=customer)
        }
        assert actual == expected


def segment_by_definition(*, claimant: bool, orders: list[tuple[int, int, str]]) -> str:
    """SPEC rule 7, written independently of the SQL: orders are
    (days ago, total, status)."""
    counted = [
        (days, total) for days, total, status in orders if status not in ("cancelled", "returned")
    ]
    if claimant:
        return LifecycleSegment.CLAIMANT
    if not counted:
        return LifecycleSegment.PROSPECT
    # each order is placed `days` days and one hour before now
    youngest = min(timedelta(days=days, hours=1) for days, _ in counted)
    if youngest > timedelta(days=settings.LIFECYCLE_SLEEPING_DAYS):
        return LifecycleSegment.SLEEPING
    spent = sum(total for _, total in counted)
    if (
        len(counted) >= settings.LIFECYCLE_VIP_MIN_ORDERS
        and spent >= settings.LIFECYCLE_VIP_MIN_SPENT
    ):
        return LifecycleSegment.VIP
    if len(counted) >= settings.LIFECYCLE_REGULAR_MIN_ORDERS:
        return LifecycleSegment.REGULAR
    return LifecycleSegment.NEW


order_histories = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=400),  # days ago (never exactly on the boundary second)
        st.integers(min_value=0, max_value=60_000),
        st.sampled_from(["paid", "shipped", "delivered", "delivered", "cancelled", "returned"]),
    ),
    max_size=9,
)


class LifecycleProperties(TestCase):
    @given(
        histories=st.lists(st.tuples(st.booleans(), order_histories), min_size=1, max_size=4),
        per_order=st.booleans(),
    )
    def test_segments_and_metrics_match_their_definition(self, histories, per_order):
        customers = []
        for index, (claimant, orders) in enumerate(histories):
            customer, _ = services.customer_upsert(channel="own_site", external_id=f"c{index}")
            for number, (days, total, status) in enumerate(orders):
                services.order_upsert(
                    channel="own_site",
                    order_number=f"{index}-{number}",
                    customer=customer,
                    ordered_at=NOW - timedelta(days=days, hours=1),
                    total=total,
                    status=status,
                )
            if claimant:
                services.customer_claimant_set(customer=customer, reason="テスト", actor=None)
            customers.append((customer.pk, claimant, orders))
        if not per_order:
            # the nightly job must agree with the per-order maintenance
            Customer.objects.update(order_count=0, total_spent=0, lifecycle_segment="new")
            services.lifecycle_recompute(now=timezone.now())
        for pk, claimant, orders in customers:
            customer = Customer.objects.get(pk=pk)
            counted = [o for o in orders if o[2] not in ("cancelled", "returned")]
            assert customer.lifecycle_segment == segment_by_definition(
                claimant=claimant, orders=orders
            )
            assert customer.order_count == len(counted)
            assert customer.total_spent == sum(total for _, total, _ in counted)
            if counted:
                assert customer.last_order_at == NOW - timedelta(
                    days=min(d for d, _, _ in counted), hours=1
                )
            else:
                assert customer.last_order_at is None

import django_filters
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext_lazy as _

from core.api.filters import IdFilter
from core.choices import Channel
from crm.models import (
    ChannelIdentity,
    ConsentAction,
    ConsentChannel,
    ConsentEvent,
    Customer,
    LifecycleSegment,
    Order,
    OrderStatus,
    Prefecture,
)
from crm.selectors import customer_search_q, outer_customer_channel_profiles


class CustomerFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="filter_q", label=_("Search by name, kana, email or phone")
    )
    channel = django_filters.ChoiceFilter(choices=Channel.choices, method="filter_channel")
    prefecture = django_filters.ChoiceFilter(choices=Prefecture.choices, method="filter_prefecture")
    # The segment of the key's channels' orders (selectors.customer_list).
    lifecycle_segment = django_filters.ChoiceFilter(
        choices=LifecycleSegment.choices, field_name="key_segment"
    )
    tag = django_filters.CharFilter(field_name="tags__name", distinct=True)
    updated_since = django_filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Customer
        fields = ["q", "channel", "prefecture", "lifecycle_segment", "tag", "updated_since"]

    # An API key filters on what its own channels gave, never on the merged
    # profile: a filter would otherwise tell it, one answer at a time, what
    # it may not read (SPEC rule 17).
    @property
    def key_channels(self) -> list[str]:
        return list(self.request.auth.channels)

    def filter_q(self, queryset, name, value):
        return queryset.filter(customer_search_q(value, channels=self.key_channels)).distinct()

    def filter_channel(self, queryset, name, value):
        return queryset.filter(
            Exists(
                ChannelIdentity.objects.filter(
                    customer=OuterRef("pk"), channel=value, channel__in=self.key_channels
                )
            )
        )

    def filter_prefecture(self, queryset, name, value):
        return queryset.filter(
            Exists(outer_customer_channel_profiles(self.key_channels).filter(prefecture=value))
        )


class OrderFilter(django_filters.FilterSet):
    customer = IdFilter(field_name="customer_id")
    channel = django_filters.ChoiceFilter(choices=Channel.choices)
    status = django_filters.ChoiceFilter(choices=OrderStatus.choices)
    order_number = django_filters.CharFilter()
    ordered_after = django_filters.IsoDateTimeFilter(field_name="ordered_at", lookup_expr="gte")
    ordered_before = django_filters.IsoDateTimeFilter(field_name="ordered_at", lookup_expr="lt")
    updated_since = django_filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Order
        fields = [
            "customer",
            "channel",
            "status",
            "order_number",
            "ordered_after",
            "ordered_before",
            "updated_since",
        ]


class ConsentEventFilter(django_filters.FilterSet):
    customer = IdFilter(field_name="customer_id")
    channel = django_filters.ChoiceFilter(choices=ConsentChannel.choices)
    action = django_filters.ChoiceFilter(choices=ConsentAction.choices)

    class Meta:
        model = ConsentEvent
        fields = ["customer", "channel", "action"]

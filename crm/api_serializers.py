"""The serializers of the store-site API (crm/api.py): customers and what an
API key's channels may see of them, orders, consent events, privacy requests."""

from __future__ import annotations

from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from core.api import serializers as api_serializers
from core.choices import Channel
from crm import selectors, services
from crm.fields import CustomerEmailSerializerField
from crm.models import (
    STORE_SITE_CONSENT_SOURCES,
    ChannelIdentity,
    ConsentAction,
    ConsentChannel,
    ConsentEvent,
    ConsentSource,
    ConsentState,
    Customer,
    LifecycleSegment,
    OrderStatus,
    Prefecture,
    Tag,
)

# --- Serializers -------------------------------------------------------------


class IdentitySerializer(api_serializers.ModelSerializer):
    class Meta:
        model = ChannelIdentity
        fields = ["channel", "external_id", "display_name"]


class ConsentStateSerializer(api_serializers.ModelSerializer):
    class Meta:
        model = ConsentState
        fields = ["channel", "granted", "changed_at"]


class FromKeyChannels:
    """A personal-data field read from what the API key's channels gave
    (selectors.customer_list), never from the merged profile (SPEC rule 17)."""

    def get_attribute(self, instance):
        return selectors.channel_profile_value(instance, self.source)


class KeyChannelsCharField(FromKeyChannels, serializers.CharField):
    pass


class KeyChannelsEmailField(FromKeyChannels, serializers.EmailField):
    pass


class KeyChannelsChoiceField(FromKeyChannels, serializers.ChoiceField):
    pass


class KeyChannelsDateField(FromKeyChannels, serializers.DateField):
    pass


class CustomerSerializer(api_serializers.ModelSerializer):
    family_name = KeyChannelsCharField(read_only=True)
    given_name = KeyChannelsCharField(read_only=True)
    family_name_kana = KeyChannelsCharField(read_only=True)
    given_name_kana = KeyChannelsCharField(read_only=True)
    # Empty when unknown; declared so that the schema allows "" too.
    email = KeyChannelsEmailField(read_only=True, allow_blank=True)
    phone = KeyChannelsCharField(read_only=True)
    postal_code = KeyChannelsCharField(read_only=True)
    prefecture = KeyChannelsChoiceField(
        choices=Prefecture.choices, read_only=True, allow_blank=True
    )
    address = KeyChannelsCharField(read_only=True)
    birthday = KeyChannelsDateField(read_only=True, allow_null=True)
    # The figures of the key's channels' orders only.
    lifecycle_segment = serializers.ChoiceField(
        source="key_segment", choices=LifecycleSegment.choices, read_only=True
    )
    order_count = serializers.IntegerField(source="key_order_count", read_only=True)
    total_spent = serializers.IntegerField(source="key_total_spent", read_only=True)
    first_order_at = api_serializers.DateTimeField(
        source="key_first_order_at", read_only=True, allow_null=True
    )
    last_order_at = api_serializers.DateTimeField(
        source="key_last_order_at", read_only=True, allow_null=True
    )
    identities = IdentitySerializer(many=True, read_only=True)
    consent = ConsentStateSerializer(source="consent_states", many=True, read_only=True)
    tags: serializers.SlugRelatedField[Tag] = serializers.SlugRelatedField(
        slug_field="name", many=True, read_only=True
    )

    class Meta:
        model = Customer
        fields = [
            "id",
            *services.PROFILE_FIELDS,
            "tags",
            "identities",
            "consent",
            "lifecycle_segment",
            "order_count",
            "total_spent",
            "first_order_at",
            "last_order_at",
            "merged_into",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class CustomerProfileSerializer(api_serializers.Serializer):
    """Who the buyer is; every field optional but at least one way to find
    them again (identity, email or phone) is required."""

    external_id = serializers.CharField(
        max_length=255,
        required=False,
        allow_blank=True,
        help_text=_("The customer's id on the channel (member id, LINE userId...)."),
    )
    identity_display_name = serializers.CharField(max_length=255, required=False, allow_blank=True)
    family_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    given_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    family_name_kana = serializers.CharField(max_length=100, required=False, allow_blank=True)
    given_name_kana = serializers.CharField(max_length=100, required=False, allow_blank=True)
    email = CustomerEmailSerializerField(required=False, allow_blank=True)
    phone = serializers.CharField(max_length=30, required=False, allow_blank=True)
    postal_code = serializers.CharField(max_length=10, required=False, allow_blank=True)
    prefecture = serializers.ChoiceField(
        choices=Prefecture.choices, required=False, allow_blank=True
    )
    address = serializers.CharField(max_length=255, required=False, allow_blank=True)
    birthday = serializers.DateField(required=False, allow_null=True)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=50), required=False, max_length=50
    )

    def validate(self, attrs):
        if not (attrs.get("external_id") or attrs.get("email") or attrs.get("phone")):
            raise serializers.ValidationError(
                {"external_id": [_("Give external_id, email or phone to identify the customer.")]}
            )
        return attrs


class CustomerUpsertSerializer(CustomerProfileSerializer):
    channel = serializers.ChoiceField(choices=Channel.choices)


# Orders are declared field by field (not ModelSerializer): they are on the
# hot path of every store site's order feed, and a ModelSerializer infers
# its fields from the model (field mapping, validators, labels) for every
# serializer it makes, i.e. on every request.
class OrderLineSerializer(api_serializers.Serializer):
    sku = serializers.CharField(label=capfirst(_("SKU")), max_length=64)
    name = serializers.CharField(label=capfirst(_("product name")), max_length=255)
    quantity = serializers.IntegerField(min_value=1, max_value=100_000)
    unit_price = serializers.IntegerField(min_value=0, max_value=100_000_000)


class OrderSerializer(api_serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    channel = serializers.ChoiceField(
        label=capfirst(_("channel")), choices=Channel.choices, read_only=True
    )
    order_number = serializers.CharField(label=capfirst(_("order number")), read_only=True)
    customer = serializers.IntegerField(source="customer_id", read_only=True)
    status = serializers.ChoiceField(
        label=capfirst(_("status")), choices=OrderStatus.choices, read_only=True
    )
    ordered_at = api_serializers.DateTimeField(label=capfirst(_("ordered at")), read_only=True)
    shipped_at = api_serializers.DateTimeField(
        label=capfirst(_("shipped at")), read_only=True, allow_null=True
    )
    delivered_at = api_serializers.DateTimeField(
        label=capfirst(_("delivered at")), read_only=True, allow_null=True
    )
    total = serializers.IntegerField(label=capfirst(_("total (JPY)")), read_only=True)
    lines = OrderLineSerializer(many=True, read_only=True)
    created_at = api_serializers.DateTimeField(label=capfirst(_("created at")), read_only=True)
    updated_at = api_serializers.DateTimeField(label=capfirst(_("updated at")), read_only=True)


class OrderUpsertSerializer(api_serializers.Serializer):
    channel = serializers.ChoiceField(choices=Channel.choices)
    order_number = serializers.CharField(max_length=64)
    customer = CustomerProfileSerializer(
        required=False, help_text=_("The buyer; created or matched by identity, email or phone.")
    )
    customer_id = serializers.IntegerField(
        required=False, help_text=_("An existing customer, instead of `customer`.")
    )
    status = serializers.ChoiceField(choices=OrderStatus.choices, default=OrderStatus.PAID)
    ordered_at = api_serializers.DateTimeField()
    shipped_at = api_serializers.DateTimeField(required=False, allow_null=True)
    delivered_at = api_serializers.DateTimeField(required=False, allow_null=True)
    total = serializers.IntegerField(min_value=0, max_value=10_000_000_000)
    lines = OrderLineSerializer(many=True, required=False, max_length=500)  # type: ignore[call-arg]  # many=True takes max_length (DRF 3.14); the stubs miss it

    def validate(self, attrs):
        if ("customer" in attrs) == ("customer_id" in attrs):
            raise serializers.ValidationError(
                {"customer": [_("Give exactly one of customer or customer_id.")]}
            )
        return attrs


class ConsentEventSerializer(api_serializers.ModelSerializer):
    customer: serializers.PrimaryKeyRelatedField[Customer] = serializers.PrimaryKeyRelatedField(
        read_only=True
    )
    # A store site's own notes only (selectors.consent_event_list).
    note = serializers.CharField(source="key_note", read_only=True)

    class Meta:
        model = ConsentEvent
        fields = [
            "id",
            "customer",
            "channel",
            "action",
            "source",
            "wording_version",
            "occurred_at",
            "recorded_at",
            "note",
        ]
        read_only_fields = fields


API_CONSENT_SOURCES = [
    (value, label) for value, label in ConsentSource.choices if value in STORE_SITE_CONSENT_SOURCES
]


class ConsentEventCreateSerializer(api_serializers.Serializer):
    customer_id = serializers.IntegerField()
    channel = serializers.ChoiceField(choices=ConsentChannel.choices)
    action = serializers.ChoiceField(choices=ConsentAction.choices)
    source = serializers.ChoiceField(choices=API_CONSENT_SOURCES, default=ConsentSource.API)  # type: ignore[assignment]  # a declared field; DRF's metaclass takes it off the class
    wording_version = serializers.CharField(
        max_length=50,
        help_text=_("Which version of the consent wording the customer agreed to."),
    )
    occurred_at = api_serializers.DateTimeField(required=False)
    note = serializers.CharField(max_length=255, required=False, allow_blank=True)


class PrivacyRequestSerializer(api_serializers.Serializer):
    reason = serializers.CharField(
        max_length=500,
        help_text=_("Why: whose request, when (recorded with the export or erasure)."),
    )


class PersonalDataExportSerializer(api_serializers.Serializer):
    """Everything held about the person that came from the key's channels."""

    format = serializers.CharField()
    customer_id = serializers.IntegerField()
    exported_at = serializers.CharField()
    customers = serializers.ListField(child=serializers.DictField())
    channel_profiles = serializers.ListField(child=serializers.DictField())
    identities = serializers.ListField(child=serializers.DictField())
    orders = serializers.ListField(child=serializers.DictField())
    inquiries = serializers.ListField(child=serializers.DictField())
    consent_events = serializers.ListField(child=serializers.DictField())
    consent_now = serializers.ListField(child=serializers.DictField())


class PersonalDataErasedSerializer(api_serializers.Serializer):
    customer = serializers.IntegerField()
    erased = serializers.DictField(
        child=serializers.IntegerField(), help_text=_("Rows erased, per kind of record.")
    )

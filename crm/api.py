"""Store-site REST API for customers, orders and consent (/api/v1/)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import prefetch_related_objects
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.api import serializers as api_serializers
from core.api.auth import HasPrivacyScope, api_key_channel_check
from core.api.idempotency import IDEMPOTENCY_PARAMETER, idempotent_response
from core.api.schema import REQUIRED_SCOPE_EXTENSION
from core.audit import audit_query_record, audit_record
from core.choices import Channel
from core.models import AuditAction
from crm import selectors, services
from crm.fields import CustomerEmailSerializerField
from crm.filters import ConsentEventFilter, CustomerFilter, OrderFilter
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
    Order,
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


def _customer_upsert_from(data: dict, channel: str):
    data = dict(data)
    return services.customer_upsert(
        channel=channel,
        external_id=data.pop("external_id", ""),
        identity_display_name=data.pop("identity_display_name", ""),
        tags=data.pop("tags", ()),
        **data,
    )


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


# --- Views ---------------------------------------------------------------------


class ChannelScopedMixin:
    """Everything an API key sees is limited to its channels."""

    @property
    def key_channels(self) -> list[str]:
        return list(self.request.auth.channels)  # type: ignore[attr-defined]  # part of a view; request.auth is our ApiKey

    def visible_customer(self, customer_id: int) -> Customer:
        return get_object_or_404(
            selectors.customers_visible(channels=self.key_channels), pk=customer_id
        )


@extend_schema_view(
    list=extend_schema(summary="List customers", tags=["customers"]),
    retrieve=extend_schema(summary="Get a customer", tags=["customers"]),
    create=extend_schema(
        summary="Create or update a customer by channel identity",
        description=(
            "Finds the customer by the channel identity, then email, then phone number, "
            "and updates or creates them. 201 when created, 200 when updated."
        ),
        tags=["customers"],
        request=CustomerUpsertSerializer,
        responses={201: CustomerSerializer, 200: CustomerSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
    ),
    orders=extend_schema(
        summary="List a customer's orders",
        tags=["orders"],
        responses=OrderSerializer(many=True),  # paginated like every list
    ),
    personal_data_export=extend_schema(
        summary="Export a person's data (APPI disclosure)",
        description=(
            "Everything held about the customer (and customers merged into them) that came "
            "from the key's channels. Only keys with the privacy scope; the export is "
            "recorded with the reason."
        ),
        tags=["personal data"],
        parameters=[PrivacyRequestSerializer],
        responses={200: PersonalDataExportSerializer},
        extensions={REQUIRED_SCOPE_EXTENSION: "privacy"},
    ),
    personal_data_erase=extend_schema(
        summary="Erase a person's data (APPI deletion)",
        description=(
            "Erases the customer's personal data everywhere (customers merged into them "
            "included): profiles, channel ids, inquiry texts and attachments, delivery "
            "addresses, LINE events, mail. Order stubs, figures and the fact of consent "
            "stay. Only keys with the privacy scope; recorded with the reason. Erasing "
            "again is harmless."
        ),
        tags=["personal data"],
        request=PrivacyRequestSerializer,
        responses={200: PersonalDataErasedSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
        extensions={REQUIRED_SCOPE_EXTENSION: "privacy"},
    ),
)
class CustomerViewSet(
    ChannelScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    queryset = Customer.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Customer.objects.none()
        return selectors.customer_list(channels=self.key_channels)

    def list(self, request, *args, **kwargs):
        audit_query_record(request=request, params=request.query_params)
        return super().list(request, *args, **kwargs)

    def retrieve(self, request, *args, **kwargs):
        response = super().retrieve(request, *args, **kwargs)
        audit_record(action=AuditAction.VIEW, request=request, customer_id=response.data["id"])
        return response

    def create(self, request):
        return idempotent_response(request, lambda: self._upsert(request))

    def _upsert(self, request) -> Response:
        serializer = CustomerUpsertSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        channel = data.pop("channel")
        api_key_channel_check(request.auth, channel)
        started = timezone.now()
        customer, created = _customer_upsert_from(data, channel)
        # New to the key's channels is "created": a person known only on
        # other channels is not revealed by a 200.
        created = created or not selectors.customer_known_on(
            customer=customer, channels=self.key_channels, before=started
        )
        customer = self.get_queryset().get(pk=customer.pk)
        return Response(
            CustomerSerializer(customer).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @action(detail=True, methods=["get"], serializer_class=OrderSerializer, filterset_class=None)
    def orders(self, request, pk=None):
        customer = self.visible_customer(pk)
        audit_record(action=AuditAction.VIEW, request=request, customer_id=customer.pk)
        queryset = selectors.order_list(channels=self.key_channels).filter(customer=customer)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(OrderSerializer(page, many=True).data)

    @action(
        detail=True,
        methods=["get"],
        url_path="personal-data",
        permission_classes=[HasPrivacyScope],
        filterset_class=None,
        pagination_class=None,
    )
    def personal_data_export(self, request, pk=None):
        reason = self._privacy_reason(request.query_params)
        customer = self.visible_customer(pk)
        with transaction.atomic():
            document = services.customer_export(
                customer=customer,
                actor=request.user,
                reason=reason,
                channels=self.key_channels,
                request=request,
            )
        return Response(document)

    @action(
        detail=True,
        methods=["post"],
        url_path="personal-data/erase",
        permission_classes=[HasPrivacyScope],
        filterset_class=None,
        pagination_class=None,
    )
    def personal_data_erase(self, request, pk=None):
        return idempotent_response(request, lambda: self._erase(request, pk))

    def _erase(self, request, pk) -> Response:
        reason = self._privacy_reason(request.data)
        customer = self.visible_customer(pk)
        erased = services.customer_erase(
            customer=customer, actor=request.user, reason=reason, request=request
        )
        return Response({"customer": customer.pk, "erased": erased})

    @staticmethod
    def _privacy_reason(data) -> str:
        serializer = PrivacyRequestSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data["reason"]


@extend_schema_view(
    list=extend_schema(summary="List orders", tags=["orders"]),
    retrieve=extend_schema(summary="Get an order", tags=["orders"]),
    create=extend_schema(
        summary="Create or update an order by channel and order number",
        description=(
            "Upserts the order (and its buyer, when `customer` is given) and keeps the "
            "customer's lifecycle metrics right. 201 when created, 200 when updated. "
            "Lines, when given, replace the order's lines."
        ),
        tags=["orders"],
        request=OrderUpsertSerializer,
        responses={201: OrderSerializer, 200: OrderSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
    ),
)
class OrderViewSet(
    ChannelScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = OrderSerializer
    filterset_class = OrderFilter
    queryset = Order.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Order.objects.none()
        return selectors.order_list(channels=self.key_channels)

    def create(self, request):
        return idempotent_response(request, lambda: self._upsert(request))

    def _upsert(self, request) -> Response:
        serializer = OrderUpsertSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        channel = data.pop("channel")
        api_key_channel_check(request.auth, channel)
        if "customer" in data:
            customer, _created = _customer_upsert_from(data.pop("customer"), channel)
        else:
            customer = self.visible_customer(data.pop("customer_id"))
        lines = data.pop("lines", None)
        order, created = services.order_upsert(
            channel=channel,
            customer=customer,
            lines=None if lines is None else [services.OrderLineData(**line) for line in lines],
            **data,
        )
        prefetch_related_objects([order], "lines")  # read only when not just written
        return Response(
            OrderSerializer(order).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


@extend_schema_view(
    list=extend_schema(summary="List consent events", tags=["consent"]),
    create=extend_schema(
        summary="Record an opt-in or opt-out",
        description=(
            "Appends an event to the consent ledger. The customer's current consent for "
            "the channel becomes the latest event by `occurred_at`."
        ),
        tags=["consent"],
        request=ConsentEventCreateSerializer,
        responses={201: ConsentEventSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
    ),
)
class ConsentEventViewSet(ChannelScopedMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = ConsentEventSerializer
    filterset_class = ConsentEventFilter
    queryset = ConsentEvent.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ConsentEvent.objects.none()
        return selectors.consent_event_list(channels=self.key_channels)

    def create(self, request):
        return idempotent_response(request, lambda: self._record(request))

    def _record(self, request) -> Response:
        serializer = ConsentEventCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        customer = self.visible_customer(data.pop("customer_id"))
        event = services.consent_record(customer=customer, **data)
        event = self.get_queryset().get(pk=event.pk)
        return Response(ConsentEventSerializer(event).data, status=status.HTTP_201_CREATED)


def register(router) -> None:
    router.register("customers", CustomerViewSet, basename="customer")
    router.register("orders", OrderViewSet, basename="order")
    router.register("consent-events", ConsentEventViewSet, basename="consent-event")

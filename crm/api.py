"""Store-site REST API for customers, orders and consent (/api/v1/): the
viewsets and their routes; the serializers are in crm/api_serializers.py."""

from __future__ import annotations

from django.db import transaction
from django.db.models import prefetch_related_objects
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.api.auth import HasPrivacyScope, api_key_channel_check
from core.api.idempotency import IDEMPOTENCY_PARAMETER, idempotent_response
from core.api.schema import REQUIRED_SCOPE_EXTENSION
from core.audit import audit_query_record, audit_record
from core.models import AuditAction
from crm import selectors, services
from crm.api_serializers import (
    ConsentEventCreateSerializer,
    ConsentEventSerializer,
    CustomerSerializer,
    CustomerUpsertSerializer,
    OrderSerializer,
    OrderUpsertSerializer,
    PersonalDataErasedSerializer,
    PersonalDataExportSerializer,
    PrivacyRequestSerializer,
)
from crm.filters import ConsentEventFilter, CustomerFilter, OrderFilter
from crm.models import ConsentEvent, Customer, Order


def _customer_upsert_from(data: dict, channel: str):
    data = dict(data)
    return services.customer_upsert(
        channel=channel,
        external_id=data.pop("external_id", ""),
        identity_display_name=data.pop("identity_display_name", ""),
        tags=data.pop("tags", ()),
        **data,
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

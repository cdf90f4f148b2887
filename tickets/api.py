"""Store-site API for inquiries: the contact form and the "my inquiry" page."""

from __future__ import annotations

import django_filters
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from core.api import serializers as api_serializers
from core.api.auth import api_key_channel_check
from core.api.filters import IdFilter
from core.api.idempotency import IDEMPOTENCY_PARAMETER, idempotent_response
from crm.fields import CustomerEmailSerializerField
from crm.models import Channel, Customer
from crm.services import customer_upsert
from tickets import selectors
from tickets.models import Category, Inquiry, InquiryStatus, SlaState
from tickets.services import inquiry_auto_acknowledge, inquiry_create


class InquirySerializer(api_serializers.ModelSerializer):
    category: serializers.SlugRelatedField[Category] = serializers.SlugRelatedField(
        slug_field="code", read_only=True, allow_null=True
    )
    order_number = serializers.CharField(
        source="api_order_number", default=None, read_only=True, allow_null=True
    )
    customer: serializers.PrimaryKeyRelatedField[Customer] = serializers.PrimaryKeyRelatedField(
        read_only=True
    )
    replied = serializers.SerializerMethodField()

    class Meta:
        model = Inquiry
        fields = [
            "reference",
            "customer",
            "channel",
            "subject",
            "category",
            "order_number",
            "status",
            "replied",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_replied(self, inquiry: Inquiry) -> bool:
        return inquiry.first_replied_at is not None


class ContactFormSerializer(api_serializers.Serializer):
    channel = serializers.ChoiceField(
        choices=Channel.choices,
        default=Channel.OWN_SITE,
        help_text=_("The store site's channel (its key must allow it)."),
    )
    name = serializers.CharField(
        max_length=100, help_text=_("Family and given name, e.g. 山田 太郎")
    )
    name_kana = serializers.CharField(max_length=100, required=False, allow_blank=True)
    email = CustomerEmailSerializerField()
    phone = serializers.CharField(max_length=30, required=False, allow_blank=True)
    external_id = serializers.CharField(
        max_length=255,
        required=False,
        allow_blank=True,
        help_text=_("The customer's member id on the store site, if logged in."),
    )
    order_number = serializers.CharField(max_length=64, required=False, allow_blank=True)
    category = api_serializers.OptionalSlugRelatedField(
        slug_field="code", queryset=Category.objects.all(), required=False, allow_null=True
    )
    subject = serializers.CharField(max_length=255, required=False, allow_blank=True)
    text = serializers.CharField(max_length=20_000)

    def validate_text(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError(_("Write the inquiry."))
        return value


def _split(name: str) -> tuple[str, str]:
    parts = name.replace("\u3000", " ").split(None, 1)
    return (parts[0] if parts else "", parts[1] if len(parts) > 1 else "")


class InquiryFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=InquiryStatus.choices)
    sla_state = django_filters.ChoiceFilter(choices=SlaState.choices)
    # The next-reply and resolution clocks' states, as the SLA watch stored them.
    next_reply_state = django_filters.ChoiceFilter(choices=SlaState.choices)
    resolution_state = django_filters.ChoiceFilter(choices=SlaState.choices)
    customer = IdFilter(field_name="customer_id")
    updated_since = django_filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Inquiry
        fields = [
            "status",
            "sla_state",
            "next_reply_state",
            "resolution_state",
            "customer",
            "updated_since",
        ]


@extend_schema_view(
    list=extend_schema(summary="List inquiries", tags=["inquiries"]),
    retrieve=extend_schema(
        summary="Get an inquiry's status by its reference",
        description='For the store\'s "my inquiry" page: reference, status, replied or not.',
        tags=["inquiries"],
    ),
    create=extend_schema(
        summary="Submit a contact-form inquiry",
        tags=["inquiries"],
        request=ContactFormSerializer,
        responses={201: InquirySerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
    ),
)
class InquiryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = InquirySerializer
    filterset_class = InquiryFilter
    lookup_field = "reference"
    lookup_value_regex = r"Q-\d{4}-\d{5}"
    queryset = Inquiry.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Inquiry.objects.none()
        return selectors.inquiry_list_for_channels(channels=self.request.auth.channels)

    def create(self, request):
        return idempotent_response(request, lambda: self._submit(request))

    def _submit(self, request) -> Response:
        form = ContactFormSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        channel = data["channel"]
        api_key_channel_check(request.auth, channel)
        family, given = _split(data["name"])
        family_kana, given_kana = _split(data.get("name_kana", ""))
        customer, _created = customer_upsert(
            channel=channel if data.get("external_id") else Channel.EMAIL,
            external_id=data.get("external_id", ""),
            email=data["email"],
            phone=data.get("phone", ""),
            family_name=family,
            given_name=given,
            family_name_kana=family_kana,
            given_name_kana=given_kana,
        )
        text = data["text"]
        inquiry = inquiry_create(
            customer=customer,
            channel=channel,
            subject=data.get("subject") or text.strip().splitlines()[0][:60],
            body_text=text,
            order_number=data.get("order_number", ""),
            order_channels=request.auth.channels,
            category=data.get("category"),
        )
        inquiry_auto_acknowledge(inquiry=inquiry)
        inquiry = self.get_queryset().get(pk=inquiry.pk)
        return Response(InquirySerializer(inquiry).data, status=status.HTTP_201_CREATED)


def register(router) -> None:
    router.register("inquiries", InquiryViewSet, basename="inquiry")

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
from core.choices import Channel
from crm.fields import CustomerEmailSerializerField
from crm.models import Customer
from tickets import selectors
from tickets.models import Category, Inquiry, InquiryStatus, SlaState
from tickets.services import inquiry_submit


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
        inquiry = inquiry_submit(
            channel=channel,
            name=data["name"],
            email=data["email"],
            text=data["text"],
            name_kana=data.get("name_kana", ""),
            phone=data.get("phone", ""),
            external_id=data.get("external_id", ""),
            order_number=data.get("order_number", ""),
            category=data.get("category"),
            subject=data.get("subject", ""),
            order_channels=request.auth.channels,
        )
        inquiry = self.get_queryset().get(pk=inquiry.pk)
        return Response(InquirySerializer(inquiry).data, status=status.HTTP_201_CREATED)


def register(router) -> None:
    router.register("inquiries", InquiryViewSet, basename="inquiry")

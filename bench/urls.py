"""Bench-only URLs: production's, plus two endpoints that only the
benchmarks use (see bench/README.md):

  /bench/ping/        a plain Django view: what the load generator and
                      gunicorn can do at all (the client's ceiling)
  /bench/bare-order/  the bare DRF endpoint: no authentication, no
                      idempotency, no customer resolution, no lifecycle;
                      the same payload validated by a plain Serializer,
                      then one Order insert and one bulk insert of its lines
"""

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse
from django.urls import path
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as production_urlpatterns
from core.choices import Channel
from crm.models import Order, OrderLine


class BareCustomerSerializer(serializers.Serializer):
    external_id = serializers.CharField(max_length=255, required=False, allow_blank=True)
    email = serializers.EmailField(required=False, allow_blank=True)
    family_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    given_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    family_name_kana = serializers.CharField(max_length=100, required=False, allow_blank=True)
    given_name_kana = serializers.CharField(max_length=100, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=30, required=False, allow_blank=True)


class BareLineSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=255)
    quantity = serializers.IntegerField(min_value=1, max_value=100_000)
    unit_price = serializers.IntegerField(min_value=0, max_value=100_000_000)


class BareOrderSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Channel.choices)
    order_number = serializers.CharField(max_length=64)
    customer = BareCustomerSerializer()
    ordered_at = serializers.DateTimeField()
    total = serializers.IntegerField(min_value=0, max_value=10_000_000_000)
    lines = BareLineSerializer(many=True, max_length=500)


class BareOrderView(APIView):
    authentication_classes = []
    permission_classes = []

    def post(self, request):
        serializer = BareOrderSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with transaction.atomic():
            order = Order.objects.create(
                channel=data["channel"],
                order_number=data["order_number"],
                customer_id=settings.BENCH_BARE_CUSTOMER_ID,
                ordered_at=data["ordered_at"],
                total=data["total"],
            )
            OrderLine.objects.bulk_create(OrderLine(order=order, **line) for line in data["lines"])
        return Response(
            {"id": order.pk, "order_number": order.order_number}, status=status.HTTP_201_CREATED
        )


def ping(request):
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [
    *production_urlpatterns,
    path("bench/ping/", ping),
    path("bench/bare-order/", BareOrderView.as_view()),
]

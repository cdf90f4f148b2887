"""core.api.serializers: fields copied shallowly per serializer instance."""

import threading

from rest_framework import serializers

from core.api import serializers as api_serializers
from crm.api_serializers import OrderSerializer, OrderUpsertSerializer


class Line(api_serializers.Serializer):
    sku = serializers.CharField(max_length=5)
    kind = serializers.ChoiceField(choices=[("a", "A"), ("b", "B")])


class Order(api_serializers.Serializer):
    number = serializers.CharField(max_length=10)
    lines = Line(many=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=3), required=False)


def test_each_instance_gets_its_own_bound_fields_and_the_declared_ones_stay_unbound():
    first, second = Order(data={}), Order(data={})
    assert first.fields["number"] is not second.fields["number"]
    assert first.fields["number"].parent is first
    assert second.fields["number"].parent is second
    assert first.fields["lines"] is not second.fields["lines"]
    assert first.fields["lines"].child is not second.fields["lines"].child
    # A ListField's child is bound to its ListField: each instance has its own.
    assert first.fields["tags"].child is not second.fields["tags"].child
    assert first.fields["tags"].child.parent is first.fields["tags"]
    declared = Order._declared_fields["number"]
    assert declared.parent is None  # never bound: only copied
    assert declared.field_name is None


def test_an_attribute_set_on_one_instance_stays_with_it():
    first, second = Order(data={}), Order(data={})
    first.fields["number"].required = False
    assert second.fields["number"].required is True
    assert Order(data={}).fields["number"].required is True


def test_validation_is_the_same_as_drf_s_and_errors_stay_per_instance():
    good = Order(data={"number": "W-1", "lines": [{"sku": "A1", "kind": "a"}]})
    bad = Order(data={"number": "x" * 11, "lines": [{"sku": "TOO-LONG", "kind": "c"}]})
    assert good.is_valid(), good.errors
    assert not bad.is_valid()
    assert set(bad.errors) == {"number", "lines"}
    assert set(bad.errors["lines"][0]) == {"sku", "kind"}
    assert good.errors == {}
    assert good.validated_data["lines"] == [{"sku": "A1", "kind": "a"}]


def test_threads_validating_at_once_each_get_their_own_answer():
    """gunicorn's threads share the declared fields: nothing one request
    binds or validates shows up in another's."""
    results: dict[int, object] = {}

    def run(index: int) -> None:
        outcomes = []
        for n in range(200):
            sku = f"S{index}" if (index + n) % 2 else "TOO-LONG"
            serializer = Order(data={"number": f"W-{index}", "lines": [{"sku": sku, "kind": "a"}]})
            valid = serializer.is_valid()
            expected = sku != "TOO-LONG"
            outcomes.append(
                valid == expected
                and (not valid or serializer.validated_data["lines"][0]["sku"] == sku)
            )
        results[index] = all(outcomes)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == dict.fromkeys(range(8), True)


def test_the_order_serializers_use_shallow_copies():
    assert isinstance(OrderUpsertSerializer(), api_serializers.ShallowFieldCopies)
    assert isinstance(OrderSerializer(), api_serializers.ShallowFieldCopies)


class Quantity(api_serializers.Serializer):
    number = serializers.CharField(required=False)
    count = serializers.IntegerField(required=False)
    tags = serializers.ListField(child=serializers.CharField(), required=False)
    lines = Line(many=True, required=False)


def test_each_field_is_taken_only_in_the_json_type_the_schema_gives_it():
    wrong = Quantity(
        data={"number": 0, "count": "5", "tags": ["ok", 7], "lines": [{"sku": 1, "kind": "a"}]}
    )
    assert not wrong.is_valid()
    assert set(wrong.errors) == {"number", "count", "tags", "lines"}
    assert list(wrong.errors["tags"]) == ["1"]
    assert "sku" in wrong.errors["lines"][0]
    assert not Quantity(data={"count": True}).is_valid()
    right = Quantity(data={"number": "0", "count": 5.0, "tags": ["7"], "lines": []})
    assert right.is_valid(), right.errors
    assert right.validated_data == {"number": "0", "count": 5, "tags": ["7"], "lines": []}

"""Writes for segments: saving one (its rule checked), and the built-in
lifecycle segments."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext

from core.timeline import actor_or_none
from core.types import Actor
from crm.models import LifecycleSegment
from outreach.models import Segment, SegmentKind
from outreach.segments.rules import segment_rule_clean


def segment_values_clean(
    *,
    name: str,
    kind: str,
    lifecycle_segment: str = "",
    rule: Any = None,
    description: str = "",
) -> dict[str, Any]:
    """The values of a segment as they will be stored: a lifecycle segment
    keeps no rule, a custom segment no lifecycle value; the rule validated
    and normalised. Raises ValidationError keyed by field name."""
    values: dict[str, Any] = {
        "name": (name or "").strip(),
        "kind": kind,
        "description": (description or "").strip(),
    }
    if kind == SegmentKind.LIFECYCLE:
        if lifecycle_segment not in LifecycleSegment.values:
            raise ValidationError({"lifecycle_segment": [gettext("Choose the lifecycle segment.")]})
        values.update(lifecycle_segment=lifecycle_segment, rule={})
    elif kind == SegmentKind.CUSTOM:
        try:
            values.update(lifecycle_segment="", rule=segment_rule_clean(rule))
        except ValidationError as error:
            raise ValidationError({"rule": error.error_list}) from None
    else:
        raise ValidationError({"kind": [gettext("Choose custom rule or lifecycle segment.")]})
    return values


def segment_save(
    *,
    segment: Segment | None,
    name: str,
    kind: str,
    lifecycle_segment: str = "",
    rule: Any = None,
    description: str = "",
    actor: Actor,
) -> Segment:
    """Create (segment=None) or change a segment. Raises ValidationError
    keyed by field ("rule" for the rule's problems, each naming its path)."""
    values = segment_values_clean(
        name=name,
        kind=kind,
        lifecycle_segment=lifecycle_segment,
        rule=rule,
        description=description,
    )
    with transaction.atomic():
        if segment is None:
            segment = Segment(created_by=actor_or_none(actor))
        else:
            segment = Segment.objects.select_for_update().get(pk=segment.pk)
        for key, value in values.items():
            setattr(segment, key, value)
        segment.full_clean()
        try:
            with transaction.atomic():
                segment.save()
        except IntegrityError:
            # Another request took the name between full_clean and save.
            raise ValidationError(
                {"name": [gettext("A segment with this name already exists.")]}
            ) from None
    return segment


# Japanese data, not UI text: the names the built-in segments are created with.
BUILTIN_SEGMENTS: dict[str, tuple[str, str]] = {
    LifecycleSegment.SLEEPING: (
        "休眠顧客 (スリーピング)",
        "最終注文から一定期間 (既定 180 日) 注文のない顧客",
    ),
    LifecycleSegment.REGULAR: ("一般", "2 回以上注文のある顧客"),
    LifecycleSegment.VIP: ("優良 (VIP)", "注文回数・購入額が基準以上の最優良顧客"),
    LifecycleSegment.NEW: ("新規", "初めて注文した顧客"),
    LifecycleSegment.PROSPECT: ("見込み客", "まだ注文のない顧客"),
    LifecycleSegment.CLAIMANT: (
        "クレーマー",
        "担当者がクレーマーとして登録した顧客 (自動配信の対象外)",
    ),
}


def segments_builtin_ensure(*, segment_model: Any = None) -> list[Any]:
    """One lifecycle segment per LifecycleSegment value, created when
    missing (idempotent: an existing one, even renamed, is left alone).
    A data migration passes `segment_model=apps.get_model("outreach",
    "Segment")`. Returns the segments created."""
    model = segment_model or Segment
    existing = set(
        model.objects.filter(kind=SegmentKind.LIFECYCLE.value).values_list(
            "lifecycle_segment", flat=True
        )
    )
    created = []
    for value in LifecycleSegment.values:
        if value in existing:
            continue
        name, description = BUILTIN_SEGMENTS[value]
        if model.objects.filter(name=name).exists():
            name = f"{name} (ライフサイクル)"
        created.append(
            model.objects.create(
                name=name,
                kind=SegmentKind.LIFECYCLE.value,
                lifecycle_segment=value,
                rule={},
                description=description,
            )
        )
    return created

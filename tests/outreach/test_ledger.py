"""The delivery ledger's shared rate limit and claims."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from outreach.models import RateBucket
from outreach.rate import rate_acquire, rate_pause, rate_paused_until

pytestmark = pytest.mark.django_db


def test_a_new_bucket_starts_full_and_the_next_tokens_wait_for_the_refill():
    started = time.monotonic()
    rate_acquire("test", rate_per_second=20, tokens=20)  # a full bucket: at once
    assert time.monotonic() - started < 0.5
    rate_acquire("test", rate_per_second=20, tokens=10)  # empty: half a second
    assert 0.3 < time.monotonic() - started < 5
    assert RateBucket.objects.get(name="test").tokens < 1


def test_tokens_refill_with_time_up_to_the_burst(django_assert_max_num_queries):
    # given a bucket emptied ten seconds ago, refilling 5 tokens a second
    RateBucket.objects.create(
        name="test", tokens=0, updated_at=timezone.now() - timedelta(seconds=10)
    )
    # when 8 tokens are taken: they are there (50 refilled, capped at the burst of 10)
    started = time.monotonic()
    with django_assert_max_num_queries(1):
        rate_acquire("test", rate_per_second=5, tokens=8, burst=10)
    assert time.monotonic() - started < 0.5
    # then 2 are left (10 - 8, give or take the refill since)
    assert 2 <= RateBucket.objects.get(name="test").tokens < 2.5


def test_a_pause_holds_every_bucket_named_and_a_shorter_one_never_cuts_it_short():
    now = timezone.now()
    rate_acquire("line_push", rate_per_second=10)  # one bucket exists, the other not yet
    rate_pause(["line_push", "line_multicast"], until=now + timedelta(seconds=30))
    rate_pause(["line_push"], until=now + timedelta(seconds=5))  # a later, shorter 429

    assert rate_paused_until(["line_multicast"], now=now) == now + timedelta(seconds=30)
    assert rate_paused_until(["line_push", "other"], now=now) == now + timedelta(seconds=30)
    assert rate_paused_until(["line_push"], now=now + timedelta(seconds=30)) is None
    assert rate_paused_until(["other"], now=now) is None

"""The improvement cycle's demo for `manage.py demo_data` (discovered through
DEMO_STEPS): the manager's countermeasure for the month of the demo's
delivery-delay spike (tickets.demo_history_lives), still in progress, so that
the monthly report shows it beside the months before and after it.

Safe to run again: made only when that month has no countermeasure for
delivery delays. The texts are Japanese data, not UI strings.
"""

from __future__ import annotations

from datetime import timedelta

from reports.models import Countermeasure, CountermeasureStatus
from reports.services import countermeasure_save
from tickets.demo_history_lives import delay_spike_month
from tickets.models import Category

CAUSE = (
    "お中元の繁忙期に、在庫引当の済んでいない注文まで出荷指示に回していた。"
    "欠品分は入荷待ちとなり、出荷がまとめて遅れた。"
)
ACTION = (
    "出荷前の在庫確認を徹底する。在庫引当の済んだ注文だけを出荷指示に回し、"
    "欠品が分かった注文はその日のうちにお客様へ入荷予定日をご案内する。"
)


def countermeasure_demo(ctx) -> None:
    manager = ctx.users.get("manager")
    category = Category.objects.filter(code="delivery_delay").first()
    if manager is None or category is None:
        return
    month = delay_spike_month(ctx.today)
    if Countermeasure.objects.filter(month=month, category=category).exists():
        ctx.kept["countermeasures"] += 1
        return
    # Reviewed early the next month, due in the middle of the one after.
    next_month = (month + timedelta(days=32)).replace(day=1)
    countermeasure = Countermeasure(
        month=month,
        category=category,
        cause=CAUSE,
        action=ACTION,
        owner=manager,
        due_date=(next_month + timedelta(days=32)).replace(day=15),
        status=CountermeasureStatus.IN_PROGRESS,
    )
    countermeasure_save(countermeasure=countermeasure, actor=manager)
    ctx.created["countermeasures"] += 1


DEMO_STEPS = [countermeasure_demo]

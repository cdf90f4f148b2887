"""Seed data: trouble categories (SPEC rule 3), the default SLA policies
(SPEC rule 1), a weekday business calendar, and role permissions."""

from django.db import migrations

from core.roles import AGENT, MANAGER, MARKETER, role_permissions_grant

CATEGORIES = [
    # code, name, counts as a complaint
    ("product_defect", "商品不良", True),
    ("delivery_delay", "配送遅延", True),
    ("system_failure", "システム障害", False),
    ("out_of_stock", "欠品", False),
    ("return_exchange", "返品・交換", True),
    ("payment", "決済", False),
    ("other", "その他", False),
]

POLICIES = [
    # name, channel, minutes
    ("既定: 24時間以内に初回返信", "", 24 * 60),
    ("Amazon: 24時間以内（土日祝を含む）", "amazon", 24 * 60),
    ("Yahoo!ショッピング: 12時間以内（ストアパフォーマンス上位）", "yahoo", 12 * 60),
]

WEEKDAYS = {day: ["09:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")}

AGENT_PERMS = [
    "view_inquiry",
    "add_inquiry",
    "change_inquiry",
    "view_inquirymessage",
    "add_inquirymessage",
    "view_attachment",
    "view_inquiryevent",
    "view_category",
    "view_replytemplate",
    "view_slapolicy",
    "view_businesscalendar",
    "view_calendarclosure",
    "view_staffnotification",
    "change_staffnotification",
]
MANAGER_EXTRA = [
    "add_category",
    "change_category",
    "add_replytemplate",
    "change_replytemplate",
    "delete_replytemplate",
    "add_slapolicy",
    "change_slapolicy",
    "add_businesscalendar",
    "change_businesscalendar",
    "add_calendarclosure",
    "change_calendarclosure",
    "delete_calendarclosure",
    "view_replyapprovalrule",
    "add_replyapprovalrule",
    "delete_replyapprovalrule",
    "view_autoacknowledgement",
    "add_autoacknowledgement",
    "change_autoacknowledgement",
    "view_inboundmail",
]


def seed(apps, schema_editor):
    Category = apps.get_model("tickets", "Category")
    SlaPolicy = apps.get_model("tickets", "SlaPolicy")
    BusinessCalendar = apps.get_model("tickets", "BusinessCalendar")
    for position, (code, name, complaint) in enumerate(CATEGORIES, start=1):
        Category.objects.get_or_create(
            code=code, defaults={"name": name, "is_complaint": complaint, "position": position * 10}
        )
    for name, channel, minutes in POLICIES:
        SlaPolicy.objects.get_or_create(
            channel=channel,
            priority="",
            is_active=True,
            defaults={"name": name, "first_reply_minutes": minutes, "clock": "calendar"},
        )
    BusinessCalendar.objects.get_or_create(
        name="営業日（平日 9:00–18:00）", defaults={"hours": WEEKDAYS}
    )
    role_permissions_grant(
        apps,
        "tickets",
        {
            AGENT: AGENT_PERMS,
            MANAGER: [*AGENT_PERMS, *MANAGER_EXTRA],
            # Marketers build segments on inquiry counts; they do not read
            # customers' conversations.
            MARKETER: ["view_category"],
        },
    )


def grant_assignment_and_surveys(apps, schema_editor):
    """Managers keep the assignment rules, the agents' limits and the survey
    settings; agents see them (their presence they set from the header)."""
    models_ = ("assignmentrule", "agentavailability", "csatsetting")
    role_permissions_grant(
        apps,
        "tickets",
        {
            AGENT: [f"view_{name}" for name in models_],
            MANAGER: [
                f"{action}_{name}"
                for name in models_
                for action in ("view", "add", "change", "delete")
            ],
        },
    )


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0022_assigncsat"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop), migrations.RunPython(grant_assignment_and_surveys, migrations.RunPython.noop)]

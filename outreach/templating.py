"""Message templates: the documented context, validation and rendering.

Templates are written in the Django template language against a small
context (TEMPLATE_CONTEXT below). Validation at save time catches syntax
errors, variables outside the context and LINE's limits; rendering builds
the same context for previews, test sends and the worker.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from html import escape as html_escape
from html import unescape as html_unescape
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.template import Context, Engine, Template, TemplateSyntaxError
from django.template.base import FilterExpression, Node, TextNode
from django.template.defaulttags import ForNode, IfNode, WithNode
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.models import Customer, Order

LINE_MAX_MESSAGES = 5
LINE_MAX_TEXT_UTF16 = 5000

# The documented template context: root name -> attributes a template may use.
TEMPLATE_CONTEXT: dict[str, dict[str, str]] = {
    "customer": {
        "name": "山田 太郎",
        "family_name": "山田",
        "given_name": "太郎",
        "family_name_kana": "ヤマダ",
        "given_name_kana": "タロウ",
        "email": "taro@example.jp",
        "prefecture": "東京都",
        "order_count": "3",
        "total_spent": "12800",
        "last_order_at": "2026-10-01",
    },
    "order": {
        "order_number": "OS-20261001-0001",
        "channel": "own_site",
        "channel_name": "自社サイト",
        "total": "4980",
        "ordered_at": "2026-10-01 10:15",
        "shipped_at": "",
        "delivered_at": "",
        "status": "発送済み",
    },
    "shop": {
        "name": "まどぐち雑貨店",
        "company": "株式会社まどぐち",
        "postal_address": "〒150-0001 東京都渋谷区神宮前1-2-3",
        "contact_email": "support@shop.example.jp",
        "contact_phone": "03-1234-5678",
        "url": "https://shop.example.jp",
    },
    # Where else customers can buy or reach the shop (settings SHOP_*_URL);
    # `others` lists every channel that works, as {name, url}, without the
    # one an incident affects (an emergency broadcast).
    "links": {
        "own_site": "https://shop.example.jp",
        "line": "https://line.me/R/ti/p/@madoguchi",
        "rakuten": "https://www.rakuten.co.jp/madoguchi/",
        "yahoo": "https://store.shopping.yahoo.co.jp/madoguchi/",
        "amazon": "https://www.amazon.co.jp/shops/madoguchi",
        "others": "",
    },
    # The incident a broadcast or notice is about (crisis), the same for
    # every recipient.
    "incident": {
        "title": "楽天市場のシステム障害",
        "channel_name": "楽天市場",
        "started_at": "12月5日（土）14:00",
        "expected_recovery": "12月5日（土）18:00ごろ",
    },
    "unsubscribe_url": {},
    # Free values a send may pass (e.g. an expected delivery date).
    "extra": {},
}
# Roots whose value differs per recipient.
PERSONAL_ROOTS = {"customer", "order", "unsubscribe_url", "extra"}

# The values sends pass as {{ extra.* }}, by the names people know them:
# what a screen or an error says instead of the variable (variable_label).
EXTRA_LABELS: dict[str, Any] = {
    "expected_date": gettext_lazy("expected delivery date"),
    "restock_date": gettext_lazy("restock date"),
    "recovery_eta": gettext_lazy("expected recovery"),
    "expected_resume": gettext_lazy("expected resume date"),
    "expected_resume_time": gettext_lazy("expected resume date and time"),
    "sku": gettext_lazy("SKU"),
    "product_name": gettext_lazy("product name"),
}
# The rows behind the other roots, whose fields name their attributes.
_ROOT_MODELS = {"customer": "crm.Customer", "order": "crm.Order", "inquiry": "tickets.Inquiry"}
_ATTRIBUTE_FIELDS = {"channel_name": "channel"}


def variable_label(path: str) -> str:
    """A template variable by the name people know it: 「お届け予定日」 for
    extra.expected_date, 「注文: 注文番号」 for order.order_number; the
    variable as written when it names nothing known."""
    root, _sep, attribute = path.partition(".")
    attribute = attribute.split(".")[0]
    if root == "extra":
        label = EXTRA_LABELS.get(attribute)
        return str(label) if label else path
    if root not in _ROOT_MODELS or not attribute:
        return path
    model = apps.get_model(_ROOT_MODELS[root])
    if attribute == "name":
        field_label = gettext_lazy("name")
    else:
        try:
            field = model._meta.get_field(_ATTRIBUTE_FIELDS.get(attribute, attribute))
        except FieldDoesNotExist:
            return path
        field_label = field.verbose_name
    return _("%(owner)s: %(field)s") % {
        "owner": model._meta.verbose_name,
        "field": field_label,
    }


# Builtins only: no {% load %} of arbitrary tag libraries, no file includes.
_ENGINE = Engine(
    debug=False,
    libraries={},
    builtins=["django.template.defaulttags", "django.template.defaultfilters"],
)


def utf16_length(text: str) -> int:
    """LINE counts text length in UTF-16 code units (an emoji may be 2)."""
    return len(text.encode("utf-16-le")) // 2


def template_variables(nodelist) -> set[str]:
    """Dotted variable paths a compiled template reads (loop variables and
    {% with %} names are local, and removed)."""
    found: set[str] = set()

    def expressions(node: Node):
        for attr in ("filter_expression", "sequence", "var", "target"):
            value = getattr(node, attr, None)
            if isinstance(value, FilterExpression):
                yield value
        if isinstance(node, IfNode):
            for condition, _nodelist in node.conditions_nodelists:
                yield from _condition_expressions(condition)
        if isinstance(node, WithNode):
            yield from node.extra_context.values()

    def walk(nodes, local: set[str]):
        for node in nodes:
            for expression in expressions(node):
                # The value, and variables passed as filter arguments
                # ({{ shop.name|add:customer.given_name }}).
                variables = [expression.var]
                variables += [
                    arg for _f, args in expression.filters for is_var, arg in args if is_var
                ]
                for var in variables:
                    lookups = getattr(var, "lookups", None)
                    if lookups and lookups[0] not in local:
                        found.add(".".join(lookups))
            inner_local = set(local)
            if isinstance(node, ForNode):
                inner_local |= set(node.loopvars) | {"forloop"}
            if isinstance(node, WithNode):
                inner_local |= set(node.extra_context)
            for child_attr in node.child_nodelists:
                walk(getattr(node, child_attr, None) or [], inner_local)

    walk(nodelist, set())
    return found


def _condition_expressions(condition):
    if condition is None:
        return
    value = getattr(condition, "value", None)
    if isinstance(value, FilterExpression):
        yield value
    for side in ("first", "second"):
        child = getattr(condition, side, None)
        if child is not None:
            yield from _condition_expressions(child)


def _unclosed_tag(template: Template) -> bool:
    """Django renders "{{ customer.name" (no closing braces) as plain text."""
    # The nodes are TextNodes, which have .s; the stubs say Node.
    return any(
        "{{" in node.s or "{%" in node.s  # type: ignore[attr-defined]
        for node in template.nodelist.get_nodes_by_type(TextNode)
    )


def _compile(source: str, field: str, errors: dict[str, list[str]]) -> Template | None:
    try:
        return _ENGINE.from_string(source)
    except TemplateSyntaxError as exc:
        errors.setdefault(field, []).append(_("Template syntax error: %(error)s") % {"error": exc})
        return None


def _check_variables(template: Template, field: str, errors: dict[str, list[str]]) -> set[str]:
    roots = set()
    for path in sorted(template_variables(template.nodelist)):
        root, _sep, attribute = path.partition(".")
        roots.add(root)
        allowed = TEMPLATE_CONTEXT.get(root)
        if allowed is None or (
            attribute and root != "extra" and attribute.split(".")[0] not in allowed
        ):
            errors.setdefault(field, []).append(
                _("Unknown variable {{ %(name)s }}. Available: %(available)s.")
                % {"name": path, "available": ", ".join(_documented_names())}
            )
    return roots


def _documented_names() -> list[str]:
    names = []
    for root, attributes in TEMPLATE_CONTEXT.items():
        if attributes and root != "extra":
            names += [f"{root}.{attribute}" for attribute in attributes]
        else:
            names.append(root if root != "extra" else "extra.*")
    return names


@dataclass(frozen=True)
class TemplateCheck:
    is_personal: bool


def template_validate(
    *, channel: str, subject: str = "", body_text: str = "", body_html: str = "", line_messages=None
) -> TemplateCheck:
    """Raise ValidationError (by field) for syntax errors, unknown variables
    and LINE limits; return what was learnt about the template."""
    errors: dict[str, list[str]] = {}
    roots: set[str] = set()
    sources: list[tuple[str, str]] = []
    if channel == "email":
        if not subject.strip():
            errors["subject"] = [_("An email needs a subject.")]
        if not body_text.strip():
            errors["body_text"] = [_("An email needs a text body.")]
        sources = [("subject", subject), ("body_text", body_text), ("body_html", body_html)]
    elif channel == "line":
        messages = line_messages if isinstance(line_messages, list) else None
        if not messages or not all(isinstance(m, str) and m.strip() for m in messages):
            errors["line_messages"] = [_("Write 1 to 5 non-empty text messages.")]
        elif len(messages) > LINE_MAX_MESSAGES:
            errors["line_messages"] = [
                _("LINE accepts at most %(max)d messages per send; this has %(count)d.")
                % {"max": LINE_MAX_MESSAGES, "count": len(messages)}
            ]
        else:
            for index, text in enumerate(messages, start=1):
                if utf16_length(text) > LINE_MAX_TEXT_UTF16:
                    errors.setdefault("line_messages", []).append(
                        _("Message %(n)d is %(len)d characters (UTF-16); LINE allows %(max)d.")
                        % {"n": index, "len": utf16_length(text), "max": LINE_MAX_TEXT_UTF16}
                    )
            sources = [("line_messages", text) for text in messages]
    else:
        errors["channel"] = [_("Unknown channel: %(value)s.") % {"value": channel}]
    for field, source in sources:
        if not source:
            continue
        compiled = _compile(source, field, errors)
        if compiled is not None:
            roots |= _check_variables(compiled, field, errors)
            if _unclosed_tag(compiled):
                errors.setdefault(field, []).append(
                    _("A tag opened with %(open)s is not closed: customers would see it as is.")
                    % {"open": "{{ / {%"}
                )
    if errors:
        raise ValidationError(errors)
    return TemplateCheck(is_personal=bool(roots & PERSONAL_ROOTS))


# --- Context and rendering ---------------------------------------------------------


def shop_context() -> dict[str, str]:
    return {
        "name": settings.SHOP_NAME,
        "company": settings.SHOP_COMPANY,
        "postal_address": settings.SHOP_POSTAL_ADDRESS,
        "contact_email": settings.SHOP_CONTACT_EMAIL,
        "contact_phone": settings.SHOP_CONTACT_PHONE,
        "url": settings.SHOP_URL,
    }


# The channel each link setting stands for, its name for customers, in the
# order customers read them.
LINK_SETTINGS = (
    ("own_site", "SHOP_URL", gettext_lazy("Our online shop")),
    ("line", "SHOP_LINE_URL", gettext_lazy("LINE official account (add as a friend)")),
    ("rakuten", "SHOP_RAKUTEN_URL", gettext_lazy("Our Rakuten Ichiba shop")),
    ("yahoo", "SHOP_YAHOO_URL", gettext_lazy("Our Yahoo! Shopping shop")),
    ("amazon", "SHOP_AMAZON_URL", gettext_lazy("Our Amazon shop")),
)


def links_context(*, exclude: str = "") -> dict[str, Any]:
    """The shop's addresses on each channel (settings), and `others`: those
    set, as {"channel", "name", "url"}, without the channel `exclude` (the
    one that is down)."""
    links: dict[str, Any] = {key: getattr(settings, name) for key, name, _label in LINK_SETTINGS}
    with translation.override(settings.LANGUAGE_CODE):  # customers read the shop's language
        links["others"] = [
            {"channel": key, "name": str(label), "url": links[key]}
            for key, _name, label in LINK_SETTINGS
            if links[key] and key != exclude
        ]
    return links


def customer_context(customer: Customer | None) -> dict[str, Any]:
    if customer is None:
        return {}
    return {
        "name": customer.display_name,
        "family_name": customer.family_name,
        "given_name": customer.given_name,
        "family_name_kana": customer.family_name_kana,
        "given_name_kana": customer.given_name_kana,
        "email": customer.email,
        "prefecture": customer.prefecture,
        "order_count": customer.order_count,
        "total_spent": customer.total_spent,
        "last_order_at": customer.last_order_at,
    }


def order_context(order: Order | None) -> dict[str, Any]:
    if order is None:
        return {}
    return {
        "order_number": order.order_number,
        "channel": order.channel,
        "channel_name": order.get_channel_display(),
        "total": order.total,
        "ordered_at": order.ordered_at,
        "shipped_at": order.shipped_at,
        "delivered_at": order.delivered_at,
        "status": order.get_status_display(),
    }


def template_context(
    *,
    customer: Customer | None,
    order: Order | None = None,
    unsubscribe_url: str = "",
    extra: dict[str, Any] | None = None,
    links: dict[str, Any] | None = None,
    incident: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`links` and `incident` as a send carries them (its content); the
    links default to the settings, every channel offered."""
    return {
        "customer": customer_context(customer),
        "order": order_context(order),
        "shop": shop_context(),
        "links": links if links is not None else links_context(),
        "incident": incident or {},
        "unsubscribe_url": unsubscribe_url,
        "extra": extra or {},
    }


@functools.lru_cache(maxsize=256)
def compiled(source: str) -> Template:
    """The compiled template for `source`. Keyed by the source itself, so an
    edited template is compiled afresh and a send keeps rendering the
    snapshot it was created with; bounded, as sources are user content.
    A compiled Template is immutable and safe to render concurrently."""
    return _ENGINE.from_string(source)


# 「様」 with no name before it (the name was empty): at the start of a line,
# after spaces, or after punctuation and brackets that open or close a
# phrase (「様へ」 in 「【店名】様へ」), and after a tag in HTML. It reads as a
# slip; it becomes the neutral 「お客様」. Not 様々, 様子, 様式, 様相, 様態.
_BOUNDARY = r"^|(?<=[、。，．,.!?！？【】「『：:・])"
_BARE_HONORIFIC = re.compile(rf"(?:{_BOUNDARY})[ \t\u3000]*様(?![々子式相態])", re.M)
_BARE_HONORIFIC_HTML = re.compile(rf"(?:{_BOUNDARY}|(?<=>))[ \t\u3000]*様(?![々子式相態])", re.M)
NEUTRAL_SALUTATION = "お客様"


def salutation_fallback(text: str, *, html: bool = False) -> str:
    """「様」 that lost its name → 「お客様」 (「{{ customer.name }}様」 for a
    customer whose name we do not know); a named 「山田 太郎様」 stays."""
    pattern = _BARE_HONORIFIC_HTML if html else _BARE_HONORIFIC
    return pattern.sub(NEUTRAL_SALUTATION, text)


def render_string(source: str, context: dict[str, Any], *, autoescape: bool = False) -> str:
    """`source` rendered with `context`; a salutation without its name falls
    back to 「お客様」 (salutation_fallback), for every message we send."""
    if not source:
        return ""
    rendered = compiled(source).render(Context(context, autoescape=autoescape))
    return salutation_fallback(rendered, html=autoescape)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def render_email(*, subject: str, body_text: str, body_html: str, context: dict) -> RenderedEmail:
    return RenderedEmail(
        # A header is one line, whatever the template produced.
        subject=" ".join(render_string(subject, context).split()),
        text=render_string(body_text, context),
        html=render_string(body_html, context, autoescape=True),
    )


def render_line(*, messages: list[str], context: dict) -> list[str]:
    return [render_string(text, context).strip() for text in messages]


# What a test send carries first in its subject (email) or first message
# (LINE), so that no tester takes it for the real thing.
TEST_MARK = "【テスト】"


# --- Tracked links (outreach.services.clicks) -----------------------------------------

# A link as written in a template or found in a rendered message: ASCII
# URL characters only, so Japanese text straight after a link is not part
# of it; a trailing full stop or comma is the sentence's, not the link's.
_LINK = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&*+,;=%]+")
_LINK_TRAILING = ".,;:!?"


def _links_in(text: str) -> list[tuple[str, int]]:
    """(link, end) for each literal link of `text`, trailing punctuation off."""
    found = []
    for match in _LINK.finditer(text):
        link = match.group().rstrip(_LINK_TRAILING)
        found.append((link, match.start() + len(link)))
    return found


def template_links(template: Any) -> list[str]:
    """The links a template itself contains (text body, HTML body, LINE
    messages), each once, in order: what a tracked link's index names.
    Only literal links count: one built from a variable ({{ shop.url }},
    or a path ending in {{ order.order_number }}) is not the template's to
    sign, nor is the unsubscribe link, which only the variable carries."""
    if template is None:
        return []
    get = template.get if isinstance(template, dict) else lambda name: getattr(template, name, "")
    sources = [get("body_text") or "", get("body_html") or "", *(get("line_messages") or [])]
    links: list[str] = []
    for index, source in enumerate(sources):
        for link, end in _links_in(source):
            if source[end : end + 1] == "{":
                continue  # continued by a variable: differs per message
            if index == 1:  # HTML: "&amp;" in an href is "&"
                link = html_unescape(link)
            if link not in links:
                links.append(link)
    return links


def links_track(text: str, *, links: list[str], url_for, html: bool = False) -> str:
    """`text` (a rendered message) with each of the template's own `links`
    replaced by `url_for(index)`, the tracked address; any other link (the
    unsubscribe link, one built from a variable) stays as it is."""
    if not text or not links:
        return text
    index = {link: number for number, link in enumerate(links)}

    def replace(match: re.Match) -> str:
        whole = match.group()
        link = whole.rstrip(_LINK_TRAILING)
        key = html_unescape(link) if html else link
        number = index.get(key)
        if number is None:
            return whole
        tracked = url_for(number)
        return (html_escape(tracked) if html else tracked) + whole[len(link) :]

    return _LINK.sub(replace, text)

"""The template language our texts are written in (message templates,
reply templates, acknowledgements): one engine, and one check of what a
template reads, worded for the person who wrote it."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping

from django.template import Engine, Template, TemplateSyntaxError
from django.template.base import FilterExpression, Node, TextNode
from django.template.defaulttags import ForNode, IfNode, WithNode
from django.utils.translation import gettext as _

# Builtins only: no {% load %} of arbitrary tag libraries, no file includes.
ENGINE = Engine(
    debug=False,
    libraries={},
    builtins=["django.template.defaulttags", "django.template.defaultfilters"],
)

# Root name -> the attributes a template may read on it, in the order they
# are listed for people; None: any attribute (`extra.*`); empty: the root
# alone (`unsubscribe_url`).
Roots = Mapping[str, Collection[str] | None]


def template_variables(nodelist) -> set[str]:
    """Dotted variable paths a compiled template reads (loop variables and
    {% with %} names are local, and removed)."""
    found: set[str] = set()

    def expressions(node: Node) -> Iterator[FilterExpression]:
        for attr in ("filter_expression", "sequence", "var", "target"):
            value = getattr(node, attr, None)
            if isinstance(value, FilterExpression):
                yield value
        if isinstance(node, IfNode):
            for condition, _nodelist in node.conditions_nodelists:
                yield from _condition_expressions(condition)
        if isinstance(node, WithNode):
            yield from node.extra_context.values()

    def walk(nodes, local: set[str]) -> None:
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


def _condition_expressions(condition) -> Iterator[FilterExpression]:
    if condition is None:
        return
    value = getattr(condition, "value", None)
    if isinstance(value, FilterExpression):
        yield value
    for side in ("first", "second"):
        child = getattr(condition, side, None)
        if child is not None:
            yield from _condition_expressions(child)


def variable_names(roots: Roots) -> list[str]:
    """The variables `roots` allows, as a template writes them:
    customer.name, …, extra.*, unsubscribe_url."""
    names = []
    for root, attributes in roots.items():
        if attributes is None:
            names.append(f"{root}.*")
        elif attributes:
            names += [f"{root}.{attribute}" for attribute in attributes]
        else:
            names.append(root)
    return names


def _unclosed_tag(template: Template) -> bool:
    """Django renders "{{ customer.name" (no closing braces) as plain text."""
    return any(
        "{{" in node.s or "{%" in node.s  # type: ignore[attr-defined]  # TextNodes have .s; the stubs say Node
        for node in template.nodelist.get_nodes_by_type(TextNode)
    )


def template_check(source: str, *, roots: Roots) -> tuple[set[str], list[str]]:
    """The dotted variables `source` reads, and what is wrong with it, in
    words for the person who wrote it: a syntax error, a tag left open
    (customers would see it as is), a variable outside `roots`."""
    try:
        template = ENGINE.from_string(source)
    except TemplateSyntaxError as exc:
        return set(), [_("Template syntax error: %(error)s") % {"error": exc}]
    variables = template_variables(template.nodelist)
    errors = []
    for path in sorted(variables):
        root, _sep, attribute = path.partition(".")
        allowed = roots.get(root, ())
        known = root in roots and (
            allowed is None or not attribute or attribute.split(".")[0] in allowed
        )
        if not known:
            errors.append(
                _("Unknown variable {{ %(name)s }}. Available: %(available)s.")
                % {"name": path, "available": ", ".join(variable_names(roots))}
            )
    if _unclosed_tag(template):
        errors.append(
            _("A tag opened with %(open)s is not closed: customers would see it as is.")
            % {"open": "{{ / {%"}
        )
    return variables, errors

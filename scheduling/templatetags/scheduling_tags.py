"""Template filters of the scheduling pages."""

from django import template

register = template.Library()


@register.filter
def signed_percent(value) -> str:
    """A fraction as a signed percentage with one decimal (0.0269 → "+2.7 %"); "—" when it is not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—"
    return f"{value * 100:+.1f} %"

"""`{% recall_banner obj %}`: the recalls touching a dataset, model or shop problem, as banners on its page."""

from django import template

register = template.Library()


@register.inclusion_tag("datalake/partials/_recall_banner.html")
def recall_banner(obj):
    from datalake.services.recalls import recalls_touching

    return {"banners": recalls_touching(obj) if obj is not None else []}

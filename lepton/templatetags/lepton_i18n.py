"""Template filters for words the platform itself stores in English and shows in the reader's language.

{% load lepton_i18n %}
{{ event.actor_label|actor }}   "system" (the platform acting on its own, lepton.audit) in the reader's language
"""

from django import template
from django.utils.translation import gettext

register = template.Library()

# The actor label lepton.audit records when no person acted; kept in English in the database.
SYSTEM = "system"


@register.filter
def actor(label: str) -> str:
    return gettext("system") if label == SYSTEM else label

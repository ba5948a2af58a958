"""Labels of the model repository's stored keys, in the reader's language.

{% load models_repo_labels %}
{{ model.task|task_label }}   "classification" → "Classification" (or 分类), unknown keys as they are
"""

from django import template

from models_repo.forms import TASKS

register = template.Library()


@register.filter
def task_label(task: str) -> str:
    return str(dict(TASKS).get(task, task))

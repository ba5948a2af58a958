"""`{{ value|cell }}`: one value of a dataset's rows as a page shows it.

Missing values are empty; booleans are shown in the reader's words (是/否 in Chinese, true/false
in English) whatever words the file used (是/否, yes/no, Y/N, 1/0 beside words): the ingest
engine stores them as booleans (datalake.engine.infer), so the file's own label is not kept. The
API and the CSV download keep JSON true/false and "true"/"false", which programs read.
"""

from django import template
from django.utils.translation import pgettext

register = template.Library()


@register.filter
def cell(value):
    if value is None:
        return ""
    if value is True:
        return pgettext("boolean value", "true")
    if value is False:
        return pgettext("boolean value", "false")
    return value

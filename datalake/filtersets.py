"""The catalog's filters: one FilterSet for the HTML catalog and the API list of datasets."""

import django_filters
from django.utils.translation import gettext_lazy as _

from datalake import selectors
from datalake.models import Dataset, QualityStatus

FORMATS = [
    ("csv", "CSV"),
    ("tsv", "TSV"),
    ("xlsx", "Excel (.xlsx)"),
    ("xls", "Excel (.xls)"),
    ("json", "JSON"),
    ("parquet", "Parquet"),
    ("images", _("Images")),
    ("postgresql", "PostgreSQL"),
    ("mysql", "MySQL"),
    ("recipe", _("Recipe")),
]


class DatasetFilterSet(django_filters.FilterSet):
    """Words (names, descriptions, columns), a tag, a department, the latest version's format, quality."""

    q = django_filters.CharFilter(method="filter_words", label=_("Search"))
    tag = django_filters.CharFilter(method="filter_tag", label=_("Tag"))
    department = django_filters.CharFilter(field_name="department__slug", label=_("Department"))
    format = django_filters.MultipleChoiceFilter(choices=FORMATS, label=_("Format"))
    quality = django_filters.MultipleChoiceFilter(field_name="quality_status", choices=QualityStatus.choices, label=_("Quality"))

    class Meta:
        model = Dataset
        fields = ["q", "tag", "department", "format", "quality"]

    def filter_words(self, queryset, name, value):
        return selectors.search(queryset, query=value)

    def filter_tag(self, queryset, name, value):
        return selectors.search(queryset, tag=value)

"""Reused reads of the data lake, always starting from what the user may see."""

from django.db.models import Q

from datalake.models import Dataset, DatasetVersion, VersionStatus
from lepton import policy


def datasets_visible(user, action: str = "view", *, trash: bool = False):
    """Datasets not in the trash (or only those in it), with their department."""
    return policy.visible_to(user, Dataset, action).filter(deleted_at__isnull=not trash).select_related("department")


def versions_visible(user, dataset: Dataset):
    """Every version of a dataset the user may see: published ones, and pending/failed ones for its department."""
    versions = policy.visible_to(user, DatasetVersion).filter(dataset=dataset).select_related("job", "created_by", "dataset")
    if policy.can(user, "change", dataset):
        return versions
    return versions.filter(status=VersionStatus.PUBLISHED)


def search(queryset, query: str = "", tag: str = ""):
    """Filter datasets by words in the name, description, slug or column names, and by a tag."""
    for word in query.split():
        queryset = queryset.filter(
            Q(name__icontains=word) | Q(description__icontains=word) | Q(slug__icontains=word) | Q(columns_text__icontains=word)
        )
    if tag:
        # Tags are few per dataset: a text match on the JSON list, checked exactly in Python by callers that care.
        queryset = queryset.filter(tags__icontains=f'"{tag.strip().lower()}"')
    return queryset


def datasets_discoverable(user):
    """Datasets of other departments marked discoverable: their metadata only, never their rows."""
    return (
        Dataset.objects.filter(discoverable=True, deleted_at__isnull=True)
        .exclude(pk__in=policy.visible_to(user, Dataset).values("pk"))
        .select_related("department")
        .order_by("department__name", "name")
    )

"""Reused reads of the data lake, always starting from what the user may see."""

from django.db.models import Count, Max, Q

from datalake.models import Dataset, DatasetVersion, VersionStatus
from lepton import policy


def datasets_visible(user, action: str = "view", *, trash: bool = False):
    """Datasets not in the trash (or only those in it) with their published-version count and latest number."""
    return (
        policy.visible_to(user, Dataset, action)
        .filter(deleted_at__isnull=not trash)
        .select_related("department", "created_by")
        .annotate(
            version_count=Count("versions", filter=Q(versions__status=VersionStatus.PUBLISHED)),
            latest_number=Max("versions__number"),
        )
    )


def versions_visible(user, dataset: Dataset):
    """Every version of a dataset the user may see: published ones, and pending/failed ones for its department."""
    versions = policy.visible_to(user, DatasetVersion).filter(dataset=dataset).select_related("job", "created_by")
    if policy.can(user, "change", dataset):
        return versions
    return versions.filter(status=VersionStatus.PUBLISHED)

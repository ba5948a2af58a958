"""Read queries of the model repository, always filtered by what the user may see."""

from django.db.models import Prefetch

from lepton import policy
from models_repo.models import ModelAlias, PromotionRequest, RegisteredModel, TrainingRun


def runs_visible(user, action: str = "view"):
    return policy.visible_to(user, TrainingRun, action).select_related("department")


def models_visible(user, action: str = "view"):
    aliases = Prefetch("aliases", queryset=ModelAlias.objects.select_related("version").order_by("name"))
    return policy.visible_to(user, RegisteredModel, action).select_related("department").prefetch_related(aliases)


def promotions_visible(user):
    return policy.visible_to(user, PromotionRequest).select_related("model__department", "version", "requested_by", "decided_by")

"""Read queries of production scheduling, always filtered by what the user may see."""

from lepton import policy
from scheduling.models import ScheduleRun, ShopProblem


def problems_visible(user, action: str = "view"):
    return policy.visible_to(user, ShopProblem, action).select_related("department")


def runs_visible(user, action: str = "view"):
    return policy.visible_to(user, ScheduleRun, action).select_related("department", "problem__department")

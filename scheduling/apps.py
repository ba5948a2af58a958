from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SchedulingConfig(AppConfig):
    name = "scheduling"
    verbose_name = _("Production scheduling")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from lepton import policy
        from lepton.models import Role
        from scheduling.models import ScheduleRun, ShopProblem

        # Viewers see problems and schedules; members add problems and run methods on them
        # ("use", also through a share at the use level); maintainers delete and share.
        policy.register(
            ShopProblem,
            policy.OwnedRule(
                actions={
                    "view": Role.VIEWER,
                    "use": Role.MEMBER,
                    "change": Role.MEMBER,
                    "delete": Role.MAINTAINER,
                    "share": Role.MAINTAINER,
                }
            ),
        )
        policy.register(ScheduleRun, policy.OwnedRule())
        # Learnt policies are versions in the model repository, which knows the kind from here
        # (models_repo.external: no predictions, trained and applied by scheduling.policies).
        from models_repo import external
        from scheduling.policies import KIND

        external.register(KIND)

        from django.urls import reverse

        from lepton.collab import targets

        # Working together (lepton.collab): shop problems are shared; schedule runs take comments.
        targets.register(
            ShopProblem,
            url=lambda p: p.get_absolute_url(),
            shareable=True,
            discoverable=lambda p: p.discoverable,
            set_discoverable=_problem_set_discoverable,
            discoverable_filter={"discoverable": True},
        )
        targets.register(ScheduleRun, url=lambda r: reverse("scheduling:run", args=[r.pk]))


def _problem_set_discoverable(actor, problem, value: bool):
    from scheduling.services import problem_set_discoverable

    return problem_set_discoverable(actor=actor, problem=problem, discoverable=value)

"""Job kinds of production scheduling: `scheduling.solve` runs one method on one problem;
`scheduling.train_policy` trains a reusable policy over a generated family."""

from rest_framework import serializers

from lepton.jobs.registry import JobCancelled, JobTimedOut, job_kind


class RunParams(serializers.Serializer):
    run = serializers.UUIDField()


# The job's own limit is generous: the run's time_limit (at most an hour) bounds the search, and the
# job limit only catches a method that does not stop (its schedule is then lost, the run failed).
@job_kind("scheduling.solve", params=RunParams, time_limit=3900, label="Schedule a shop problem")
def solve(ctx, params) -> dict:
    """Schedule one run (scheduling.services.run_execute); the job's cancel stops the search early.

    A cancelled search keeps the best schedule it has, and the run succeeds with it (its info
    says it was stopped). A run that ends any other way is failed with the reason.
    """
    from django.utils.translation import gettext as _

    from scheduling.models import RunStatus
    from scheduling.services import engine_error_text, run_abandon, run_execute

    stopped: list[Exception] = []

    def should_stop() -> bool:
        try:
            ctx.check_cancelled()
        except (JobCancelled, JobTimedOut) as exc:
            stopped.append(exc)
            return True
        return False

    try:
        run = run_execute(params["run"], progress=ctx.progress, should_stop=should_stop)
    except Exception as exc:
        # Written for the person who asked, in their language (the job runs in it: lepton.jobs.runner).
        if stopped:
            reason = _("Cancelled before any schedule was found.")
        else:
            reason = _("The run failed (%(kind)s: %(reason)s).") % {"kind": type(exc).__name__, "reason": engine_error_text(exc)}
        run_abandon(params["run"], reason, RunStatus.CANCELLED if stopped else RunStatus.FAILED)
        raise
    if run.lower_bound:
        ctx.log(
            _("%(method)s: makespan %(makespan)s, lower bound %(bound)s")
            % {"method": run.get_method_display(), "makespan": run.makespan, "bound": run.lower_bound}
        )
    else:
        ctx.log(_("%(method)s: makespan %(makespan)s") % {"method": run.get_method_display(), "makespan": run.makespan})
    return {"run": str(run.pk), "makespan": run.makespan, "result_ref": f"scheduling.schedulerun:{run.pk}"}


class TrainingParams(serializers.Serializer):
    run = serializers.UUIDField(help_text="The policy's training run (models_repo.TrainingRun).")


# The budget (at most scheduling.engine.family.MAX_SECONDS) bounds the learning; the measure on the
# held-out shops and the registration follow it, hence the margin.
@job_kind("scheduling.train_policy", params=TrainingParams, time_limit=1200, max_attempts=1, label="Train a scheduling policy")
def train_policy(ctx, params) -> dict:
    """Train a policy over its family and register it (scheduling.policies.policy_train_execute).

    A cancel (or the job's time limit) stops the learning; the run then ends cancelled, with no
    version. A run that ends any other way is failed with the reason (models_repo.jobkinds.training_job).
    """
    from models_repo.jobkinds import training_job
    from scheduling.policies import policy_train_execute

    return training_job(ctx, params, policy_train_execute)

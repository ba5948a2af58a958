"""Learnt scheduling policies: trained by a job into the model repository, shown there, refused by the
prediction API, applied to shop problems (own, shared with use) without retraining, refused when incompatible."""

import json
import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.handlers.wsgi import WSGIHandler
from django.test import RequestFactory

from lepton.errors import Invalid
from lepton.jobs.models import Job
from lepton.models import AuditEvent
from lepton.services import share_grant, token_create
from lepton.storage import get_storage
from models_repo import services as registry
from models_repo.api import fastpath
from models_repo.models import ModelAlias, ModelVersion, PredictionLog, RegisteredModel, TrainingRun
from scheduling import policies, services
from scheduling.engine import family, qlearning
from scheduling.engine.generate import generate
from scheduling.models import ScheduleRun
from tests.conftest import wait_for_job
from tests.factories import MembershipFactory, UserFactory
from tests.models_repo.conftest import SPEC as TABULAR
from tests.models_repo.conftest import inspections as inspections_fixture
from tests.scheduling.test_api import api

SPEC = {"jobs": [4, 6], "machines": [3, 4], "instances": 2, "held_out": 3, "seconds": 60, "episodes": 40, "seed": 1}


@pytest.fixture
def trained(owner, production):
    """Production's "Press policy" with one version (trained in the test's process: no worker needed)."""
    run = policies.policy_train_start(actor=owner, department=production, spec=SPEC, model_name="Press policy")
    run = policies.policy_train_execute(run.pk)
    assert run.status == "succeeded", run.error_message
    return ModelVersion.objects.select_related("model").get(run=run)


@pytest.fixture
def problem(member, production):
    shop = generate(5, 3, seed=11, mtbf=400, mttr=20)
    return services.problem_create(actor=member, department=production, name="Press shop", instance=shop)


@pytest.fixture
def checker(production):
    user = UserFactory(username="max-maintainer")
    MembershipFactory(user=user, department=production, role="maintainer")
    return user


def _nothing_queued(runs=0, jobs=0):
    return ScheduleRun.objects.count() == runs and Job.objects.filter(kind="scheduling.solve").count() == jobs


# --- training --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_training_from_the_api_runs_on_a_worker_and_registers_a_policy_version(owner, production, celery_worker, dispatcher):
    body = {"department": "production", "model_name": "Line 3 policy", **SPEC, "breakdowns": True}
    response = api(owner).post("/api/v1/schedule-policies/", body, format="json")
    assert response.status_code == 202, response.json()
    run = TrainingRun.objects.get(pk=response.json()["id"])
    assert run.job.kind == "scheduling.train_policy" and run.job.resource == "cpu"
    assert wait_for_job(run.job, timeout=60).status == "succeeded", run.job.error_message
    run.refresh_from_db()
    version = ModelVersion.objects.get(run=run)
    model = version.model
    assert (model.name, model.task, version.flavor, version.task, version.number) == (
        "Line 3 policy", "scheduling_policy", "qpolicy", "scheduling_policy", 1,
    )  # fmt: skip
    assert set(version.metrics) == {"mean_gap", "mean_gap_untrained", "wins", "worst_gap"}
    assert version.holdout["metric"] == "mean_gap" and len(version.holdout["instances"]) == 3
    assert version.output["trained_on"]["breakdowns"] is True and version.output["trained_on"]["episodes"] == 40
    assert run.curves["episodes"][0]["episodes"] == 0 and run.params["episodes"] == 40
    stored = family.read(get_storage().read_bytes(version.artifact_sha256))  # checksum-verified
    assert stored.trained_on == version.output["trained_on"] and stored.table
    detail = api(owner).get(f"/api/v1/runs/{run.pk}/").json()
    assert detail["status"] == "succeeded" and detail["flavor"] == "qpolicy"
    listed = api(owner).get("/api/v1/schedule-policies/").json()["results"]
    assert [(p["model"], p["number"]) for p in listed] == [("production/line-3-policy", 1)]


def test_the_same_spec_and_seed_give_the_same_policy_and_a_rerun_repeats_it(owner, trained):
    again = registry.training_rerun(actor=owner, run=trained.run)
    assert again.rerun_of == trained.run and again.spec == trained.run.spec and again.job.kind == "scheduling.train_policy"
    policies.policy_train_execute(again.pk)
    second = ModelVersion.objects.get(run=again)
    assert second.number == 2 and second.artifact_sha256 == trained.artifact_sha256 and second.metrics == trained.metrics


@pytest.mark.parametrize(
    "change, field",
    [
        ({"jobs": [1, 5]}, "jobs"),
        ({"machines": [5, 3]}, "machines"),
        ({"machines": [3]}, "machines"),
        ({"instances": 0}, "instances"),
        ({"seconds": family.MAX_SECONDS + 1}, "seconds"),
        ({"seconds": 0}, "seconds"),
        ({"episodes": 0}, "episodes"),
        ({"seed": -1}, "seed"),
    ],
)
def test_a_bad_family_or_budget_is_a_400_naming_the_field_and_creates_nothing(owner, change, field):
    body = {"department": "production", "model_name": "Line 3 policy", **SPEC, **change}
    response = api(owner).post("/api/v1/schedule-policies/", body, format="json")
    assert response.status_code == 400 and field in response.json()["fields"], response.json()
    assert not TrainingRun.objects.exists() and not RegisteredModel.objects.exists() and not Job.objects.exists()


def test_the_target_model_must_be_one_policy_model_the_person_may_train_into(owner, member, viewer, trained, production):
    tabular = registry.model_create(actor=owner, department=production, name="Quality predictor")
    for body, status, field in (
        ({"department": "production"}, 400, "model"),  # neither a model nor a name
        ({"department": "production", "model": str(trained.model_id), "model_name": "Twice"}, 400, "model"),
        ({"model": str(tabular.pk)}, 400, "model"),  # not a policy model
    ):
        response = api(owner).post("/api/v1/schedule-policies/", {**SPEC, **body}, format="json")
        assert response.status_code == status and field in response.json()["fields"], response.json()
    # members train into an existing policy model; registering a new one is for maintainers; viewers train nothing
    existing = {**SPEC, "model": str(trained.model_id)}
    assert api(member).post("/api/v1/schedule-policies/", existing, format="json").status_code == 202
    new = {**SPEC, "department": "production", "model_name": "Mine"}
    assert api(member).post("/api/v1/schedule-policies/", new, format="json").status_code == 403
    assert api(viewer).post("/api/v1/schedule-policies/", existing, format="json").status_code == 403
    assert TrainingRun.objects.count() == 2 and RegisteredModel.objects.count() == 2


def test_anonymous_gets_401_and_an_outsider_sees_no_policy_and_trains_into_none(outsider, trained):
    for method, path in (("get", "/api/v1/schedule-policies/"), ("post", "/api/v1/schedule-policies/")):
        assert getattr(api(), method)(path, {}, format="json").status_code == 401
    assert api(outsider).get("/api/v1/schedule-policies/").json()["results"] == []
    response = api(outsider).post("/api/v1/schedule-policies/", {**SPEC, "model": str(trained.model_id)}, format="json")
    assert response.status_code == 404 and TrainingRun.objects.count() == 1


def test_the_policy_list_costs_the_same_queries_whatever_its_length(member, trained, django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    api(member).get("/api/v1/schedule-policies/")  # warm: the person's roles and content types are cached after it
    with CaptureQueriesContext(connection) as one:
        assert len(api(member).get("/api/v1/schedule-policies/").json()["results"]) == 1
    for number in (2, 3):
        ModelVersion.objects.create(
            model=trained.model, number=number, flavor="qpolicy", task="scheduling_policy",
            artifact_sha256=trained.artifact_sha256, metrics=trained.metrics, output=trained.output,
        )  # fmt: skip
    with django_assert_num_queries(len(one)):
        assert len(api(member).get("/api/v1/schedule-policies/").json()["results"]) == 3


def test_a_cancelled_training_registers_nothing(owner, production):
    run = policies.policy_train_start(actor=owner, department=production, spec=SPEC, model_name="Press policy")
    run = policies.policy_train_execute(run.pk, should_stop=lambda: True)
    assert run.status == "cancelled" and "no version" in run.error_message
    assert not ModelVersion.objects.exists()


# --- the model repository ------------------------------------------------------------------------------


def test_the_model_page_shows_the_family_and_the_held_out_gaps_and_no_prediction_form(client, owner, trained):
    client.force_login(owner)
    page = client.get(f"/models/{trained.model_id}/").content.decode()
    assert "data-policy-version" in page and "data-held-out" in page and "mean_gap" in page
    assert "4–6 jobs × 3–4 machines, 2 generated shops, 40 episodes" in page
    assert 'id="try-form"' not in page and 'id="version-upload-form"' not in page and 'id="batch-form"' not in page
    assert f'href="/scheduling/policies/?model={trained.model_id}"' in page  # "Train a new version" trains a policy
    run_page = client.get(f"/models/runs/{trained.run_id}/").content.decode()
    assert 'id="fig-episodes"' in run_page and f"production/{trained.model.slug} v1" in run_page
    assert "Generated job shops: 4–6 jobs × 3–4 machines, 2 shops" in run_page


def test_a_policy_version_is_refused_by_the_prediction_api_with_a_409_and_nothing_logged(member, trained):
    url = f"/api/v1/models/production/{trained.model.slug}/predict?version=1"
    response = api(member).post(url, {"inputs": [[1, 2]]}, format="json")
    assert response.status_code == 409 and response.json()["error"] == "not_served", response.json()
    assert "applied from a shop problem" in response.json()["detail"]
    assert api(member).post(url, {}, format="json").status_code == 409  # before the body is read
    assert not PredictionLog.objects.exists()


def test_through_the_fast_path_a_policy_always_reaches_the_full_views_409(member, trained, monkeypatch, settings):
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    monkeypatch.setattr(fastpath, "close_old_connections", lambda: None)
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        app = fastpath.PredictFastPath(WSGIHandler())
        secret = token_create(actor=member, name="mes", scopes=["predict"])[1]
        path = f"/api/v1/models/production/{trained.model.slug}/predict?version=1"
        seen = []
        for _attempt in range(2):
            body = json.dumps({"inputs": [[1]]})
            environ = (
                RequestFactory()
                .generic("POST", path, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}")
                .environ
            )
            answer = b"".join(app(environ, lambda status, headers, exc=None: seen.append(status)))
            assert seen[-1].startswith("409") and json.loads(answer)["error"] == "not_served"
        assert not fastpath.grants.items
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


inspections = inspections_fixture  # a published dataset version of Production (the model repository's tests)


def test_a_policy_model_takes_no_tabular_training_and_no_uploaded_file(owner, member, trained, inspections):
    upload = SimpleUploadedFile("model.onnx", b"not really onnx")
    response = api(owner).post(f"/api/v1/models/production/{trained.model.slug}/versions", {"file": upload}, format="multipart")
    assert response.status_code == 400 and "its own training" in response.json()["detail"], response.json()
    with pytest.raises(Invalid, match="its own training"):
        registry.training_start(actor=member, dataset_version=inspections, spec=TABULAR, registered_model=trained.model)
    with pytest.raises(Invalid, match="its own training"):
        registry.continuous_set(actor=owner, model=trained.model, dataset=inspections.dataset, spec=TABULAR)
    assert ModelVersion.objects.count() == 1 and TrainingRun.objects.count() == 1


def test_production_moves_by_promotion_and_a_run_applies_the_policy_by_its_alias(owner, member, checker, trained, problem):
    request = registry.promotion_request(actor=owner, version=trained)
    assert request.status == "pending" and request.gate["passed"], request.gate
    registry.promotion_approve(actor=checker, request=request)
    assert ModelAlias.objects.get(model=trained.model, name="production").version == trained
    body = {"problem": str(problem.pk), "method": "policy", "policy_model": f"production/{trained.model.slug}"}
    response = api(member).post("/api/v1/schedule-runs/", body, format="json")
    assert response.status_code == 202, response.json()
    assert response.json()["policy_version"] == str(trained.pk)


def test_a_gate_on_another_family_scores_production_on_the_candidates_held_out_shops(owner, checker, trained):
    registry.promotion_approve(actor=checker, request=registry.promotion_request(actor=owner, version=trained))
    wider = {**SPEC, "jobs": [6, 8], "seed": 2}
    run = policies.policy_train_execute(policies.policy_train_start(actor=owner, spec=wider, model=trained.model).pk)
    candidate = ModelVersion.objects.get(run=run)
    request = registry.promotion_request(actor=owner, version=candidate)
    assert request.status == "checking"  # another held-out set: a job re-scores production on the candidate's
    request = registry.promotion_gate_run(request.pk)
    production_there = family.evaluate(policies.policy_load(trained), family.Family.from_dict(candidate.holdout["family"]))
    assert request.gate["production"] == production_there["metrics"]["mean_gap"]
    assert request.gate["candidate"] == candidate.metrics["mean_gap"]
    assert request.gate["passed"] == (candidate.metrics["mean_gap"] <= production_there["metrics"]["mean_gap"])


# --- applying to a shop problem ---------------------------------------------------------------------


def test_a_member_applies_the_departments_policy_without_retraining(member, trained, problem):
    response = api(member).post(
        "/api/v1/schedule-runs/",
        {"problem": str(problem.pk), "method": "policy", "policy_version": str(trained.pk), "replications": 4},
        format="json",
    )
    assert response.status_code == 202, response.json()
    run = services.run_execute(response.json()["id"])
    assert run.status == "succeeded" and run.policy_version == trained
    learnt = policies.policy_load(trained)
    instance = services.instance_of(problem)
    assert run.makespan == qlearning.apply(instance, learnt).makespan  # the policy as stored, no learning
    assert run.info["policy_version"]["number"] == 1 and run.info["policy_version"]["model"] == f"production/{trained.model.slug}"
    assert run.info["rules"] and run.info["best_rule"] == min(run.info["rules"].values())
    assert len(run.info["robustness"]["redispatch_policy"]["makespans"]) == 4  # re-dispatch with the same policy
    assert policies.policy_load(trained).table == learnt.table
    assert AuditEvent.objects.filter(action="run.start", changes__policy=str(trained)).exists()


def test_a_run_page_names_the_policy_and_what_is_new_to_it(client, member, trained, problem):
    version = trained
    run = services.run_start(actor=member, problem=problem, method="policy", policy_version=version, breakdowns_seed=3)
    services.run_execute(run.pk)
    client.force_login(member)
    page = client.get(f"/scheduling/runs/{run.pk}/").content.decode()
    assert "data-policy-applied" in page and "Press policy v1" in page
    assert 'data-policy-note="breakdowns"' in page  # it learnt without breakdowns; this run has them


def test_a_department_with_a_use_share_applies_it_and_one_without_gets_404(owner, outsider, trained, quality):
    theirs = services.problem_create(actor=outsider, department=quality, name="Their shop", instance=generate(4, 3, seed=2))
    body = {"problem": str(theirs.pk), "method": "policy", "policy_version": str(trained.pk)}
    refused = api(outsider).post("/api/v1/schedule-runs/", body, format="json")
    assert refused.status_code == 404 and "policy_version" in refused.json()["fields"]
    share_grant(actor=owner, obj=trained.model, department=quality, level="view")
    assert api(outsider).post("/api/v1/schedule-runs/", body, format="json").status_code == 403
    assert _nothing_queued()
    share_grant(actor=owner, obj=trained.model, department=quality, level="use", replace=True)
    response = api(outsider).post("/api/v1/schedule-runs/", body, format="json")
    assert response.status_code == 202, response.json()
    assert services.run_execute(response.json()["id"]).status == "succeeded"


def test_an_incompatible_policy_is_a_400_with_the_reason_and_nothing_is_queued(owner, member, trained, problem):
    """A version whose state layout is not this scheduler's (a policy from another version of it)."""
    data = json.loads(get_storage().read_bytes(trained.artifact_sha256))
    data["features"] = "progress3,queue4"
    blob = get_storage().put_bytes(json.dumps(data).encode())
    old = ModelVersion.objects.create(
        model=trained.model, number=2, flavor="qpolicy", task="scheduling_policy", artifact_sha256=blob.sha256,
        artifact_bytes=blob.size, metrics=trained.metrics, output=trained.output,
    )  # fmt: skip
    body = {"problem": str(problem.pk), "method": "policy", "policy_version": str(old.pk)}
    response = api(member).post("/api/v1/schedule-runs/", body, format="json")
    assert response.status_code == 400 and response.json()["error"] == "incompatible_policy", response.json()
    reason = response.json()["fields"]["policy_version"][0]
    assert "cannot be applied to this problem" in reason and "other state features" in reason
    assert _nothing_queued()


def test_a_tampered_policy_artifact_is_not_loaded_and_nothing_is_queued(member, trained, problem):
    from lepton import storage

    path = get_storage().path(trained.artifact_sha256)
    storage._VERIFIED.discard(trained.artifact_sha256)
    os.chmod(path, 0o644)
    original = open(path, "rb").read()
    try:
        with open(path, "ab") as f:
            f.write(b" ")
        body = {"problem": str(problem.pk), "method": "policy", "policy_version": str(trained.pk)}
        response = api(member).post("/api/v1/schedule-runs/", body, format="json")
        assert response.status_code == 503 and response.json()["error"] == "artifact_unavailable", response.json()
        assert _nothing_queued()
    finally:  # the lake is shared by the session's tests; other trainings store these same bytes
        with open(path, "wb") as f:
            f.write(original)


@pytest.mark.parametrize(
    "body, status, field",
    [
        ({"method": "policy"}, 400, "policy_version"),  # no policy named
        ({"method": "spt", "policy_version": "{version}"}, 400, "policy_version"),  # a policy for another method
        ({"method": "policy", "policy_version": "00000000-0000-0000-0000-000000000000"}, 404, "policy_version"),
        ({"method": "policy", "policy_model": "production/press-policy", "policy_alias": "staging"}, 404, "policy_model"),
    ],
)
def test_bad_policy_requests_are_refused_naming_the_field(member, trained, problem, body, status, field):
    body = {k: v.format(version=trained.pk) for k, v in body.items()}
    response = api(member).post("/api/v1/schedule-runs/", {"problem": str(problem.pk), **body}, format="json")
    assert response.status_code == status and field in response.json()["fields"], response.json()
    assert _nothing_queued()


def test_a_tabular_model_is_not_a_policy(owner, member, problem, production):
    from tests.models_repo.conftest import HOLDOUT

    model = registry.model_create(actor=owner, department=production, name="Quality predictor")
    forest = ModelVersion.objects.create(
        model=model, number=1, flavor="sklearn", task="classification", artifact_sha256="a" * 64, holdout=HOLDOUT
    )
    body = {"problem": str(problem.pk), "method": "policy", "policy_version": str(forest.pk)}
    response = api(member).post("/api/v1/schedule-runs/", body, format="json")
    assert response.status_code == 400 and response.json()["error"] == "not_a_policy" and _nothing_queued()


# --- pages -------------------------------------------------------------------------------------------


def test_the_run_form_offers_the_policies_only_when_there_are_some(client, member, problem):
    client.force_login(member)
    form = client.get(f"/scheduling/problems/{problem.pk}/").context["form"]
    assert "policy_version" not in form.fields and "policy" not in dict(form.fields["method"].choices)


def test_a_member_applies_a_policy_from_the_problem_page(client, member, trained, problem):
    client.force_login(member)
    page = client.get(f"/scheduling/problems/{problem.pk}/")
    assert "Learnt policy (no retraining)" in page.content.decode()
    missing = client.post(f"/scheduling/problems/{problem.pk}/", {"method": "policy", "time_limit": 1, "seed": 0})
    assert missing.status_code == 400 and "policy_version" in missing.context["form"].errors and _nothing_queued()
    response = client.post(
        f"/scheduling/problems/{problem.pk}/", {"method": "policy", "policy_version": str(trained.pk), "time_limit": 1, "seed": 0}
    )
    assert response.status_code == 302
    assert ScheduleRun.objects.get().policy_version == trained


def test_an_incompatible_policy_is_a_form_error_on_the_problem_page(client, member, trained, problem, monkeypatch):
    monkeypatch.setattr(qlearning, "FAMILY_FEATURES", "progress3,bottleneck2,lengths2,faulty3")  # a newer scheduler
    client.force_login(member)
    response = client.post(
        f"/scheduling/problems/{problem.pk}/", {"method": "policy", "policy_version": str(trained.pk), "time_limit": 1, "seed": 0}
    )
    assert response.status_code == 400
    assert "cannot be applied to this problem" in str(response.context["form"].errors["policy_version"])
    assert _nothing_queued()


def test_anonymous_is_sent_to_log_in_and_the_policies_page_lists_and_trains(client, owner, member, viewer, trained):
    assert "/login" in client.get("/scheduling/policies/")["Location"]
    client.force_login(viewer)
    page = client.get("/scheduling/policies/").content.decode()
    assert "data-empty" in page and 'id="policy-train-form"' not in page  # a viewer may neither apply nor train
    client.force_login(member)
    assert "model_name" not in client.get("/scheduling/policies/").context["form"].fields  # maintainers register models
    response = client.post(
        "/scheduling/policies/",
        {"model": str(trained.model_id), "jobs_min": 4, "jobs_max": 5, "machines_min": 3, "machines_max": 3,
         "instances": 2, "seconds": 5, "episodes": 20, "seed": 0},
    )  # fmt: skip
    run = TrainingRun.objects.exclude(pk=trained.run_id).get()
    assert response.status_code == 302 and response["Location"] == f"/models/runs/{run.pk}/"
    assert run.spec["family"]["jobs"] == [4, 5] and run.job.kind == "scheduling.train_policy"
    client.force_login(owner)
    bad = client.post(
        "/scheduling/policies/",
        {"model_name": "Other", "jobs_min": 9, "jobs_max": 5, "machines_min": 3, "machines_max": 3, "instances": 2,
         "seconds": 5, "seed": 0},
    )  # fmt: skip
    assert bad.status_code == 400 and "jobs_min" in bad.context["form"].errors
    assert TrainingRun.objects.count() == 2 and not RegisteredModel.objects.filter(name="Other").exists()


def test_an_outsider_sees_no_policy_on_the_pages(client, outsider, trained):
    client.force_login(outsider)
    assert "Press policy" not in client.get("/scheduling/policies/").content.decode()
    assert client.get(f"/models/{trained.model_id}/").status_code == 404

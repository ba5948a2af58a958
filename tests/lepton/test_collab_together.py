"""Working together: comment threads with @mentions, watching objects (new versions, promotions,
failed checks), and activity feeds per object and per department — service, API, browser,
anonymous and outsider cases."""

import io

import pytest

from datalake import services as datalake_services
from lepton.collab import services
from lepton.collab.models import Comment, Notice, Watch
from lepton.errors import Invalid, NotFound
from lepton.models import AuditEvent
from lepton.services import share_grant
from models_repo import services as models_services
from models_repo.models import ModelVersion
from scheduling import services as scheduling_services
from scheduling.engine.generate import generate
from tests.lepton.collab_helpers import CSV, api, browser, published_dataset


@pytest.fixture
def version(member, production):
    return published_dataset(member, production)


@pytest.fixture
def dataset(version):
    return version.dataset


def _new_rows():
    """Different bytes each time (an identical upload makes no new version)."""
    _new_rows.count = getattr(_new_rows, "count", 0) + 1
    return io.BytesIO(CSV + f"M{_new_rows.count + 3},{60 + _new_rows.count}.5\n".encode())


def _notices(user):
    return list(Notice.objects.filter(user=user).values_list("message", flat=True))


# --- comments ------------------------------------------------------------------------------------


def test_a_mention_tells_those_who_may_see_the_object_and_nobody_else(owner, member, viewer, outsider, dataset):
    comment = services.comment_add(
        actor=member, obj=dataset, body="@oscar-owner @victor-viewer @olga-outsider @mia-member @nobody is v1 final?"
    )
    # The outsider may not see the dataset: not told; the author is not told of their own mention.
    assert comment.mentions == ["oscar-owner", "victor-viewer"]
    assert _notices(owner) == [f"mia-member mentioned you on {dataset}: " + comment.body]
    assert _notices(viewer) and not _notices(outsider) and not _notices(member)
    assert Notice.objects.get(user=owner).url == f"/data/{dataset.pk}/"
    event = AuditEvent.objects.get(action="comment.add")
    assert event.object_id == str(dataset.pk) and event.changes["mentions"] == ["oscar-owner", "victor-viewer"]


def test_a_share_lets_the_other_department_join_the_thread(owner, member, outsider, quality, dataset):
    share_grant(actor=owner, obj=dataset, department=quality)
    services.comment_add(actor=outsider, obj=dataset, body="Thanks! @mia-member which unit is temp in?")
    assert _notices(member) and list(services.comments_of(member, dataset).values_list("author__username", flat=True)) == [
        "olga-outsider"
    ]


@pytest.mark.parametrize("body, text", [("   ", "The comment is empty."), ("x" * 10_001, "At most 10000 characters.")])
def test_bad_comments_are_refused_and_change_nothing(member, dataset, body, text):
    before = AuditEvent.objects.count()
    with pytest.raises(Invalid) as refused:
        services.comment_add(actor=member, obj=dataset, body=body)
    assert refused.value.fields["body"] == [text]
    assert not Comment.objects.exists() and AuditEvent.objects.count() == before


def test_an_outsider_cannot_comment_or_read(outsider, member, dataset):
    services.comment_add(actor=member, obj=dataset, body="internal")
    with pytest.raises(NotFound):
        services.comment_add(actor=outsider, obj=dataset, body="hello")
    assert list(services.comments_of(outsider, dataset)) == [] and Comment.objects.count() == 1


def test_api_threads_on_versions_models_and_runs(owner, member, outsider, production, version):
    model = models_services.model_create(actor=owner, department=production, name="Quality predictor")
    model_version = ModelVersion.objects.create(model=model, number=1, flavor="sklearn", task="classification",
                                                artifact_sha256="a" * 64)  # fmt: skip
    problem = scheduling_services.problem_create(actor=owner, department=production, name="Shop", instance=generate(3, 2, seed=1))
    run = scheduling_services.run_start(actor=member, problem=problem, method="spt")
    for object_type, obj in (
        ("datalake.datasetversion", version),
        ("models_repo.registeredmodel", model),
        ("models_repo.modelversion", model_version),
        ("scheduling.schedulerun", run),
    ):
        target = {"object_type": object_type, "object_id": str(obj.pk)}
        created = api(member).post("/api/v1/comments/", {**target, "body": "Looks right, @oscar-owner"}, format="json")
        assert created.status_code == 201, (object_type, created.json())
        assert created.json()["mentions"] == ["oscar-owner"] and created.json()["author"] == "mia-member"
        listed = api(owner).get("/api/v1/comments/", target).json()
        assert [c["body"] for c in listed["results"]] == ["Looks right, @oscar-owner"], object_type
        assert api(outsider).get("/api/v1/comments/", target).status_code == 404
        assert api(outsider).post("/api/v1/comments/", {**target, "body": "hi"}, format="json").status_code == 404
    assert Comment.objects.count() == 4 and Notice.objects.filter(user=owner).count() == 4


def test_api_comment_bad_input(member, dataset):
    assert api(member).get("/api/v1/comments/").status_code == 400
    target = {"object_type": "datalake.dataset", "object_id": str(dataset.pk)}
    empty = api(member).post("/api/v1/comments/", {**target, "body": "  "}, format="json")
    assert empty.status_code == 400 and "body" in empty.json()["fields"]
    unknown = api(member).post("/api/v1/comments/", {"object_type": "lepton.job", "object_id": "1", "body": "x"}, format="json")
    assert unknown.status_code == 400 and "object_type" in unknown.json()["fields"]
    assert not Comment.objects.exists()


def test_api_anonymous_gets_401(dataset):
    target = {"object_type": "datalake.dataset", "object_id": str(dataset.pk)}
    client = api()
    assert client.get("/api/v1/comments/", target).status_code == 401
    assert client.post("/api/v1/comments/", {**target, "body": "x"}, format="json").status_code == 401
    assert client.get("/api/v1/watches/").status_code == 401
    assert client.post("/api/v1/watches/", target, format="json").status_code == 401
    assert client.post("/api/v1/watches/unwatch/", target, format="json").status_code == 401
    assert not Comment.objects.exists() and not Watch.objects.exists()


def test_browser_comment_thread(owner, member, dataset):
    target = {"object_type": "datalake.dataset", "object_id": str(dataset.pk)}
    response = browser(member).post("/comments/new/", {**target, "body": "Is **v1** final? @oscar-owner"})
    assert response.status_code == 302 and response["Location"] == f"/data/{dataset.pk}/#comments"
    page = browser(owner).get(f"/data/{dataset.pk}/").content.decode()
    assert "Is <strong>v1</strong> final?" in page
    empty = browser(member).post("/comments/new/", {**target, "body": ""})
    assert empty.status_code == 400 and "This field is required." in empty.content.decode()
    assert Comment.objects.count() == 1


def test_browser_thread_on_a_model_version_shows_on_the_model_page(owner, member, outsider, production):
    model = models_services.model_create(actor=owner, department=production, name="Quality predictor")
    ModelVersion.objects.create(model=model, number=1, flavor="sklearn", task="classification", artifact_sha256="a" * 64)
    latest = ModelVersion.objects.create(model=model, number=2, flavor="sklearn", task="classification", artifact_sha256="b" * 64)
    target = {"object_type": "models_repo.modelversion", "object_id": str(latest.pk)}
    response = browser(member).post("/comments/new/", {**target, "body": "v2 drops the night shift rows? @oscar-owner"})
    assert response.status_code == 302, response.content
    page = browser(owner).get(f"/models/{model.pk}/").content.decode()
    assert f"Discussion and activity: {latest}" in page and "v2 drops the night shift rows?" in page
    assert browser(outsider).get(f"/models/{model.pk}/").status_code == 404
    assert Comment.objects.get().object_id == str(latest.pk)


def test_browser_anonymous_and_outsider(outsider, dataset):
    target = {"object_type": "datalake.dataset", "object_id": str(dataset.pk)}
    for url in ("/comments/new/", "/watch/"):
        anonymous = browser().post(url, {**target, "body": "x"})
        assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
        assert browser(outsider).post(url, {**target, "body": "x"}).status_code == 404
    assert not Comment.objects.exists() and not Watch.objects.exists()


# --- watching ------------------------------------------------------------------------------------


def test_watchers_hear_of_new_versions_and_failed_checks(
    owner, member, viewer, outsider, quality, dataset, django_capture_on_commit_callbacks
):
    services.watch(actor=viewer, obj=dataset)
    share_grant(actor=owner, obj=dataset, department=quality)
    services.watch(actor=outsider, obj=dataset)
    services.watch(actor=outsider, obj=dataset)  # twice is once
    assert Watch.objects.count() == 2
    datalake_services.dataset_update(
        actor=member, dataset=dataset, checks=[{"type": "range", "column": "temp", "max": 70.0, "blocking": False}]
    )
    with django_capture_on_commit_callbacks(execute=True):
        upload = datalake_services.dataset_upload(actor=member, dataset=dataset, stream=_new_rows(), filename="s.csv")
        datalake_services.version_ingest(upload.pk)
    [told] = _notices(viewer)
    assert told.startswith("New version v2 of Sensors (4 rows). Failed checks: temp:"), told
    assert _notices(outsider) == [told]
    assert not _notices(member)  # not watching

    datalake_services.dataset_update(
        actor=member, dataset=dataset, checks=[{"type": "range", "column": "temp", "max": 70.0, "blocking": True}]
    )
    Notice.objects.all().delete()
    services.unwatch(actor=outsider, obj=dataset)
    with django_capture_on_commit_callbacks(execute=True):
        upload = datalake_services.dataset_upload(actor=member, dataset=dataset, stream=_new_rows(), filename="s.csv")
        datalake_services.version_ingest(upload.pk)
    [refused] = _notices(viewer)
    assert refused.startswith("A new version of Sensors was refused by a quality check:"), refused
    assert not _notices(outsider)


def test_a_watcher_who_lost_access_hears_nothing(owner, member, outsider, quality, dataset, django_capture_on_commit_callbacks):
    share = share_grant(actor=owner, obj=dataset, department=quality)
    services.watch(actor=outsider, obj=dataset)
    from lepton.services import share_revoke

    share_revoke(actor=owner, share=share)
    with django_capture_on_commit_callbacks(execute=True):
        upload = datalake_services.dataset_upload(actor=member, dataset=dataset, stream=_new_rows(), filename="s.csv")
        datalake_services.version_ingest(upload.pk)
    assert not _notices(outsider)


def test_watchers_hear_of_promotions(owner, member, production, django_capture_on_commit_callbacks):
    model = models_services.model_create(actor=owner, department=production, name="Quality predictor")
    version = ModelVersion.objects.create(model=model, number=1, flavor="sklearn", task="classification",
                                          artifact_sha256="a" * 64)  # fmt: skip
    response = api(member).post("/api/v1/watches/", {"object_type": "models_repo.registeredmodel", "object_id": str(model.pk)},
                                format="json")  # fmt: skip
    assert response.status_code == 201 and response.json()["object_type"] == "models_repo.registeredmodel"
    with django_capture_on_commit_callbacks(execute=True):
        models_services.alias_set(actor=owner, model=model, alias="staging", version=version)
    assert _notices(member) == ["Quality predictor: staging now points at v1."]
    assert not _notices(owner)  # who moved it is not told


def test_api_and_browser_watch_and_unwatch(member, outsider, dataset):
    target = {"object_type": "datalake.dataset", "object_id": str(dataset.pk)}
    assert api(member).post("/api/v1/watches/", target, format="json").status_code == 201
    assert [w["object_id"] for w in api(member).get("/api/v1/watches/").json()["results"]] == [str(dataset.pk)]
    assert api(outsider).get("/api/v1/watches/").json()["count"] == 0
    assert api(outsider).post("/api/v1/watches/", target, format="json").status_code == 404
    assert api(member).post("/api/v1/watches/unwatch/", target, format="json").status_code == 204
    assert not Watch.objects.exists()
    assert browser(member).post("/watch/", target).status_code == 302
    assert "data-watching" in browser(member).get(f"/data/{dataset.pk}/").content.decode()
    assert browser(member).post("/watch/", {**target, "watch": "0"}).status_code == 302
    assert not Watch.objects.exists()
    assert set(AuditEvent.objects.filter(action__startswith="watch.").values_list("action", flat=True)) == {
        "watch.add",
        "watch.remove",
    }


# --- activity ------------------------------------------------------------------------------------


def test_the_object_page_shows_its_activity(owner, member, dataset):
    services.comment_add(actor=member, obj=dataset, body="first")
    page = browser(owner).get(f"/data/{dataset.pk}/").content.decode()
    assert "comment.add" in page and "dataset.publish" in page


def test_the_department_feed(owner, member, outsider, production, dataset):
    services.comment_add(actor=member, obj=dataset, body="first")
    page = browser(member).get("/departments/production/activity/", {"action": "comment."})
    assert page.status_code == 200 and "comment.add" in page.content.decode()
    assert "dataset.publish" not in page.content.decode()
    assert "dataset.publish" in browser(member).get("/departments/production/activity/").content.decode()
    assert browser(outsider).get("/departments/production/activity/").status_code == 404
    anonymous = browser().get("/departments/production/activity/")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]


def test_notices_page_and_mark_read(owner, member, dataset):
    services.comment_add(actor=member, obj=dataset, body="@oscar-owner look")
    page = browser(owner).get("/notices/").content.decode()
    assert "mia-member mentioned you" in page and 'id="unread-notices">1<' in page
    assert browser(owner).post("/notices/read/").status_code == 302
    assert not Notice.objects.filter(read_at__isnull=True).exists()
    anonymous = browser().get("/notices/")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert "mia-member mentioned you" not in browser(member).get("/notices/").content.decode()


def test_a_version_ingested_by_a_real_worker_tells_the_watchers(member, viewer, production, celery_worker, dispatcher):
    from tests.conftest import wait_for, wait_for_job

    dataset = datalake_services.dataset_create(actor=member, department=production, name="Worker sensors")
    services.watch(actor=viewer, obj=dataset)
    version = datalake_services.dataset_upload(actor=member, dataset=dataset, stream=io.BytesIO(CSV), filename="s.csv")
    assert wait_for_job(version.job, timeout=60).status == "succeeded"
    # Told after the worker's publishing transaction committed.
    wait_for(lambda: Notice.objects.filter(user=viewer).exists(), timeout=10, what="the watcher's notice")
    assert _notices(viewer) == ["New version v1 of Worker sensors (3 rows)."]

"""Discoverable models and shop problems (datasets had it already): maintainers mark them from the
shares panel or the API; other departments find them on /access/discover/ (metadata only) and ask
for access. Anonymous and outsider cases; a member may not change discoverability."""

import pytest

from lepton import policy
from lepton.collab import services
from lepton.collab.models import AccessRequest
from lepton.models import AuditEvent
from models_repo import services as models_services
from scheduling import services as scheduling_services
from scheduling.engine.generate import generate
from tests.lepton.collab_helpers import api, browser, published_dataset


@pytest.fixture
def model(owner, production):
    return models_services.model_create(actor=owner, department=production, name="Scrap predictor", description="Predicts scrap")


@pytest.fixture
def problem(owner, production):
    return scheduling_services.problem_create(
        actor=owner, department=production, name="Press shop", instance=generate(3, 2, seed=1)
    )


def test_browser_panel_makes_a_model_discoverable_and_others_find_it(owner, outsider, model):
    target = {"object_type": "models_repo.registeredmodel", "object_id": str(model.pk)}
    assert "Scrap predictor" not in browser(outsider).get("/access/discover/").content.decode()
    response = browser(owner).post("/shares/discoverable/", {**target, "discoverable": "1"})
    assert response.status_code == 302 and response["Location"] == f"/models/{model.pk}/#shares"
    model.refresh_from_db()
    assert model.discoverable and AuditEvent.objects.filter(action="model.update", changes__discoverable=[False, True]).exists()
    assert "data-discoverable" in browser(owner).get(f"/models/{model.pk}/").content.decode()
    page = browser(outsider).get("/access/discover/").content.decode()
    assert "Scrap predictor" in page and f"/access/request/models_repo.registeredmodel/{model.pk}/" in page
    assert "Scrap predictor" not in browser(owner).get("/access/discover/").content.decode()  # their own
    ask = browser(outsider).post(
        f"/access/request/models_repo.registeredmodel/{model.pk}/", {"department": "quality", "level": "use", "purpose": "p"}
    )
    assert ask.status_code == 302 and AccessRequest.objects.get().object_repr == "production/scrap-predictor"
    assert browser(owner).post("/shares/discoverable/", {**target, "discoverable": "0"}).status_code == 302
    assert "Scrap predictor" not in browser(outsider).get("/access/discover/").content.decode()


def test_api_makes_a_problem_discoverable_and_lists_it(owner, outsider, problem):
    body = {"object_type": "scheduling.shopproblem", "object_id": str(problem.pk), "discoverable": True}
    assert api(owner).post("/api/v1/shares/discoverable/", body, format="json").status_code == 204
    listed = api(outsider).get("/api/v1/access-requests/discoverable/").json()
    assert listed == [{"object_type": "scheduling.shopproblem", "object_id": str(problem.pk), "name": "Press shop",
                       "description": problem.description, "department": "production"}]  # fmt: skip
    created = api(outsider).post(
        "/api/v1/access-requests/",
        {"object_type": "scheduling.shopproblem", "object_id": str(problem.pk), "level": "use", "purpose": "p"},
        format="json",
    )
    assert created.status_code == 201
    services.access_request_approve(actor=owner, request=AccessRequest.objects.get())
    assert policy.can(outsider, "use", problem)
    assert api(outsider).get("/api/v1/access-requests/discoverable/").json() == []  # seen now: nothing to discover


def test_the_discover_list_searches_and_includes_datasets(member, outsider, production, model, owner):
    published_dataset(member, production, name="Line yields", discoverable=True)
    services.discoverable_set(actor=owner, obj=model, discoverable=True)
    names = [r["name"] for r in api(outsider).get("/api/v1/access-requests/discoverable/").json()]
    assert sorted(names) == ["Line yields", "Scrap predictor"]
    assert [r["name"] for r in api(outsider).get("/api/v1/access-requests/discoverable/", {"q": "scrap"}).json()] == [
        "Scrap predictor"
    ]


def test_only_maintainers_change_discoverability(member, outsider, model, problem):
    for object_type, obj in (("models_repo.registeredmodel", model), ("scheduling.shopproblem", problem)):
        body = {"object_type": object_type, "object_id": str(obj.pk), "discoverable": True}
        assert api(member).post("/api/v1/shares/discoverable/", body, format="json").status_code == 403
        assert api(outsider).post("/api/v1/shares/discoverable/", body, format="json").status_code == 404
        assert browser(member).post("/shares/discoverable/", {**body, "discoverable": "1"}).status_code == 403
        assert browser(outsider).post("/shares/discoverable/", {**body, "discoverable": "1"}).status_code == 404
        obj.refresh_from_db()
        assert not obj.discoverable


def test_anonymous(model):
    body = {"object_type": "models_repo.registeredmodel", "object_id": str(model.pk), "discoverable": True}
    assert api().post("/api/v1/shares/discoverable/", body, format="json").status_code == 401
    assert api().get("/api/v1/access-requests/discoverable/").status_code == 401
    for method, url in (("get", "/access/discover/"), ("post", "/shares/discoverable/")):
        response = getattr(browser(), method)(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    model.refresh_from_db()
    assert not model.discoverable

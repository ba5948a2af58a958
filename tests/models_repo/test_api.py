"""The model-repository API: every endpoint's anonymous and outsider cases, the registry through HTTP."""

from rest_framework.test import APIClient

from models_repo import services
from models_repo.models import ModelAlias, PromotionRequest, RegisteredModel


def api(user=None):
    client = APIClient()
    if user:
        client.force_authenticate(user)
    return client


def _endpoints(predictor, promotion, run_id="00000000-0000-0000-0000-000000000000"):
    m, p = predictor.pk, promotion.pk
    return [
        ("get", "/api/v1/runs/"),
        ("post", "/api/v1/runs/"),
        ("get", f"/api/v1/runs/{run_id}/"),
        ("post", f"/api/v1/runs/{run_id}/rerun/"),
        ("post", f"/api/v1/runs/{run_id}/cancel/"),
        ("get", "/api/v1/models/"),
        ("post", "/api/v1/models/"),
        ("get", f"/api/v1/models/{m}/"),
        ("patch", f"/api/v1/models/{m}/"),
        ("get", f"/api/v1/models/{m}/versions/"),
        ("get", f"/api/v1/models/{m}/aliases/"),
        ("put", f"/api/v1/models/{m}/aliases/staging/"),
        ("delete", f"/api/v1/models/{m}/aliases/staging/"),
        ("post", f"/api/v1/models/{m}/rollback/"),
        ("post", f"/api/v1/models/{m}/archive/"),
        ("post", f"/api/v1/models/{m}/versions/1/archive/"),
        ("get", f"/api/v1/models/{m}/compare/?versions=1,2"),
        ("post", f"/api/v1/models/{m}/batch-predictions/"),
        ("get", "/api/v1/promotions/"),
        ("post", "/api/v1/promotions/"),
        ("get", f"/api/v1/promotions/{p}/"),
        ("post", f"/api/v1/promotions/{p}/approve/"),
        ("post", f"/api/v1/promotions/{p}/reject/"),
    ]


def test_anonymous_gets_401_everywhere(owner, predictor, v1):
    promotion = services.promotion_request(actor=owner, version=v1)
    for method, path in _endpoints(predictor, promotion):
        response = getattr(api(), method)(path, {}, format="json")
        assert response.status_code == 401, (method, path)
        assert response.json()["error"] == "not_authenticated"


def test_an_outsider_sees_nothing_and_changes_nothing(owner, outsider, predictor, v1):
    promotion = services.promotion_request(actor=owner, version=v1)
    client = api(outsider)
    for method, path in _endpoints(predictor, promotion):
        response = getattr(client, method)(path, {"version": 1, "note": "x"}, format="json")
        if path.endswith("/runs/") or path.endswith("/models/") or path.endswith("/promotions/"):
            if method == "get":
                assert response.json()["results"] == [], path
            else:
                assert response.status_code == 400, (method, path, response.json())
        else:
            assert response.status_code == 404, (method, path, response.status_code)
    assert RegisteredModel.objects.count() == 1 and not ModelAlias.objects.exists()
    assert PromotionRequest.objects.get().status == "pending"


def test_register_alias_promote_approve_and_rollback_over_http(owner, checker, member, production, predictor, v1):
    created = api(owner).post("/api/v1/models/", {"department": "production", "name": "Demand forecaster"}, format="json")
    assert created.status_code == 201 and created.json()["slug"] == "demand-forecaster"
    assert api(member).post("/api/v1/models/", {"department": "production", "name": "x"}, format="json").status_code == 403

    staged = api(owner).put(f"/api/v1/models/{predictor.pk}/aliases/staging/", {"version": 1, "reason": "try"}, format="json")
    assert staged.status_code == 200 and staged.json()["version"] == 1
    refused = api(owner).put(f"/api/v1/models/{predictor.pk}/aliases/production/", {"version": 1}, format="json")
    assert refused.status_code == 400 and refused.json()["error"] == "guarded_alias"
    missing = api(owner).put(f"/api/v1/models/{predictor.pk}/aliases/staging/", {"version": 9}, format="json")
    assert missing.status_code == 400 and "version" in missing.json()["fields"]

    request = api(member).post("/api/v1/promotions/", {"model": str(predictor.pk), "version": 1, "reason": "good"}, format="json")
    assert request.status_code == 201 and request.json()["status"] == "pending", request.json()
    inbox = api(checker).get("/api/v1/promotions/?status=pending").json()["results"]
    assert [r["id"] for r in inbox] == [request.json()["id"]]
    assert api(member).post(f"/api/v1/promotions/{request.json()['id']}/approve/", {}, format="json").status_code == 403
    approved = api(checker).post(f"/api/v1/promotions/{request.json()['id']}/approve/", {"note": "ok"}, format="json")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    model = api(member).get(f"/api/v1/models/{predictor.pk}/").json()
    assert model["aliases"] == {"production": 1, "staging": 1}
    history = api(member).get(f"/api/v1/models/{predictor.pk}/aliases/").json()["history"]
    assert [(h["alias"], h["from_version"], h["to_version"]) for h in history][:1] == [("production", None, 1)]
    nothing = api(checker).post(f"/api/v1/models/{predictor.pk}/rollback/", {}, format="json")
    assert nothing.status_code == 409 and nothing.json()["error"] == "nothing_to_roll_back"


def test_a_bad_training_request_names_the_field(member, predictor):
    response = api(member).post("/api/v1/runs/", {"spec": {"task": "classification"}}, format="json")
    assert response.status_code == 400 and "dataset_version" in response.json()["fields"]
    unknown = api(member).post(
        "/api/v1/runs/", {"dataset_version": "00000000-0000-0000-0000-000000000000", "spec": {}}, format="json"
    )
    assert unknown.status_code == 404

"""'As of' queries: which version held a model alias on a date (API and model page), and who
could see a dataset on a date (membership and share periods kept by the services)."""

import datetime

import pytest
from django.utils import timezone

from datalake import services as datalake_services
from lepton import history, services
from lepton.errors import Invalid
from lepton.models import Membership, MembershipPeriod, Role, SharePeriod
from models_repo import services as models_services
from models_repo.models import AliasEvent, ModelVersion
from tests.factories import DepartmentFactory, UserFactory

DAY = datetime.timedelta(days=1)


@pytest.fixture
def model_history(owner, production):
    """production: v1 from 10 days ago, v2 from 5 days ago, removed 2 days ago."""
    model = models_services.model_create(actor=owner, department=production, name="Predictor")
    v1, v2 = (
        ModelVersion.objects.create(model=model, number=n, flavor="sklearn", task="classification", artifact_sha256="a" * 64)
        for n in (1, 2)
    )
    now = timezone.now()
    AliasEvent.objects.create(model=model, alias="production", to_version=v1, actor=owner, created_at=now - 10 * DAY)
    AliasEvent.objects.create(model=model, alias="production", from_version=v1, to_version=v2, created_at=now - 5 * DAY)
    AliasEvent.objects.create(model=model, alias="production", from_version=v2, to_version=None, created_at=now - 2 * DAY)
    return model


def _day(delta_days):
    return (timezone.localdate() - datetime.timedelta(days=delta_days)).isoformat()


def test_aliases_api_answers_as_of_a_date(client, member, model_history):
    client.force_login(member)
    url = f"/api/v1/models/{model_history.pk}/aliases/"
    assert client.get(url, {"at": _day(12)}).json()["aliases"] == []
    at_v1 = client.get(url, {"at": _day(7)}).json()["aliases"]
    assert [(a["alias"], a["version"], a["by"]) for a in at_v1] == [("production", 1, "oscar-owner")]
    assert [a["version"] for a in client.get(url, {"at": _day(3)}).json()["aliases"]] == [2]
    assert client.get(url, {"at": _day(0)}).json()["aliases"] == []
    # Without ?at the endpoint answers as before: current aliases and the history.
    assert set(client.get(url).json()) == {"aliases", "history"}


def test_aliases_api_refuses_a_bad_date(client, member, model_history):
    client.force_login(member)
    response = client.get(f"/api/v1/models/{model_history.pk}/aliases/", {"at": "yesterday"})
    assert response.status_code == 400 and "YYYY-MM-DD" in response.json()["fields"]["at"][0]


def test_aliases_as_of_anonymous_and_outsider(client, outsider, model_history):
    url = f"/api/v1/models/{model_history.pk}/aliases/?at={_day(7)}"
    assert client.get(url).status_code == 401
    client.force_login(outsider)
    assert client.get(url).status_code == 404


def test_model_page_shows_aliases_as_of_a_date(client, member, model_history):
    client.force_login(member)
    page = client.get(f"/models/{model_history.pk}/", {"at": _day(7)}).content.decode()
    assert 'id="as-of-result"' in page and "production → v1" in page
    bad = client.get(f"/models/{model_history.pk}/", {"at": "31/12/2026"}).content.decode()
    assert "YYYY-MM-DD" in bad


def test_parse_at():
    end_of_day = history.parse_at("2026-05-01")
    assert end_of_day.date() == datetime.date(2026, 5, 1) and end_of_day.hour == 23
    assert history.parse_at("2026-05-01T08:30").hour == 8
    with pytest.raises(Invalid):
        history.parse_at("2026-13-45")


@pytest.fixture
def plant(staff):
    """A department made by the services, so every membership has its periods."""
    boss = UserFactory(username="pat-plant-admin")
    department = services.department_create(actor=staff, slug="plant", name="Plant", admin=boss)
    return department, boss


def _backdate(days):
    then = timezone.now() - days * DAY
    MembershipPeriod.objects.update(started_at=then)
    SharePeriod.objects.update(started_at=then)


def test_membership_services_keep_periods(staff, plant):
    department, boss = plant
    worker = UserFactory(username="wes-worker")
    membership = services.membership_add(actor=boss, department=department, user=worker, role=Role.VIEWER)
    services.membership_change_role(actor=boss, membership=membership, role=Role.MEMBER)
    periods = list(MembershipPeriod.objects.filter(user=worker).order_by("started_at", "id"))
    assert [(p.role, p.ended_at is None) for p in periods] == [("viewer", False), ("member", True)]
    services.membership_remove(actor=boss, membership=membership)
    assert not MembershipPeriod.objects.filter(user=worker, ended_at__isnull=True).exists()


def test_who_could_see_a_dataset_over_time(staff, plant, quality, outsider):
    department, boss = plant
    worker = UserFactory(username="wes-worker")
    membership = services.membership_add(actor=boss, department=department, user=worker, role=Role.MEMBER)
    dataset = datalake_services.dataset_create(actor=boss, department=department, name="Sensors")
    _backdate(10)
    # Olga's membership was made by a factory (no period): it counts from its creation.
    Membership.objects.filter(user=outsider).update(created_at=timezone.now() - 20 * DAY)
    share = services.share_grant(actor=boss, obj=dataset, department=quality, level="view")
    SharePeriod.objects.update(started_at=timezone.now() - 5 * DAY)
    ten_days_ago_plus = timezone.now() - 8 * DAY
    names = {r["user"].username for r in history.who_could_see(dataset, ten_days_ago_plus)}
    assert names == {"pat-plant-admin", "wes-worker"}
    now_rows = {r["user"].username: r["via"] for r in history.who_could_see(dataset, timezone.now())}
    assert now_rows["olga-outsider"].startswith("share") and now_rows["wes-worker"] == "member of the owning department"
    services.share_revoke(actor=boss, share=share)
    services.membership_remove(actor=boss, membership=membership)
    after = {r["user"].username for r in history.who_could_see(dataset, timezone.now() + DAY)}
    assert after == {"pat-plant-admin"}
    # The past is unchanged by the removals.
    assert "olga-outsider" in {r["user"].username for r in history.who_could_see(dataset, timezone.now() - DAY)}


def test_an_expired_share_grants_nothing_after_its_expiry(staff, plant, quality, outsider):
    department, boss = plant
    dataset = datalake_services.dataset_create(actor=boss, department=department, name="Sensors")
    services.share_grant(actor=boss, obj=dataset, department=quality, expires_at=timezone.now() + 3 * DAY)
    assert "olga-outsider" in {r["user"].username for r in history.who_could_see(dataset, timezone.now() + DAY)}
    assert "olga-outsider" not in {r["user"].username for r in history.who_could_see(dataset, timezone.now() + 4 * DAY)}


def test_access_page(client, staff, plant, quality, outsider):
    department, boss = plant
    dataset = datalake_services.dataset_create(actor=boss, department=department, name="Sensors")
    services.share_grant(actor=boss, obj=dataset, department=quality)
    client.force_login(boss)
    url = "/audit/access/"
    page = client.get(url, {"object": f"datalake.dataset:{dataset.pk}", "at": timezone.localdate().isoformat()})
    assert page.status_code == 200
    body = page.content.decode()
    assert "olga-outsider" in body and "pat-plant-admin" in body
    bad = client.get(url, {"object": f"datalake.dataset:{dataset.pk}", "at": "not-a-date"})
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.content.decode()
    unknown = client.get(url, {"object": "nothing:1"})
    assert unknown.status_code == 400 and "app.model:id" in unknown.content.decode()


def test_access_page_anonymous_outsider_and_plain_member(client, plant, outsider):
    department, boss = plant
    dataset = datalake_services.dataset_create(actor=boss, department=department, name="Sensors")
    url = f"/audit/access/?object=datalake.dataset:{dataset.pk}"
    response = client.get(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    member = UserFactory(username="mo-member")
    services.membership_add(actor=boss, department=department, user=member, role=Role.MEMBER)
    client.force_login(member)
    assert client.get(url).status_code == 404


def test_backfill_migration_opens_periods_for_existing_rows(db):
    """0003's backfill gives each existing membership and share an open period from its creation."""
    from importlib import import_module

    from django.apps import apps as global_apps

    from lepton.models import Membership

    backfill = import_module("lepton.migrations.0003_access_history").backfill
    department = DepartmentFactory(slug="old")
    person = UserFactory(username="old-timer")
    created = timezone.now() - 100 * DAY
    Membership.objects.create(user=person, department=department, role=Role.MEMBER, created_at=created)
    MembershipPeriod.objects.all().delete()
    backfill(global_apps, None)
    period = MembershipPeriod.objects.get(user=person)
    assert period.started_at == created and period.ended_at is None

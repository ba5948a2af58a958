"""The interface language is kept per person: chosen once with the switcher, it follows them to any device they
sign in on; dates in the chosen language's formats."""

import pytest
from django.conf import settings
from django.test import Client

from datalake import services as datalake_services
from lepton.models import AuditEvent, Profile


def _sign_in(client: Client, user) -> None:
    response = client.post("/accounts/login/", {"username": user.username, "password": "password"})
    assert response.status_code == 302, response.content.decode()[:500]


def test_the_chosen_language_follows_the_person_to_another_device(client, member):
    client.force_login(member)
    response = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/jobs/"})
    assert response.status_code == 302 and response["Location"] == "/jobs/"
    assert Profile.objects.get(user=member).language == "zh-hans"
    event = AuditEvent.objects.get(action="profile.language")
    assert event.actor == member and event.changes == {"language": ["", "zh-hans"]}
    assert client.get("/jobs/")["Content-Language"] == "zh-hans"

    # Another device: no cookie, a browser that asks for English.
    laptop = Client(HTTP_ACCEPT_LANGUAGE="en")
    assert "Log in" in laptop.get("/accounts/login/").content.decode()
    _sign_in(laptop, member)
    home = laptop.get("/")
    assert home["Content-Language"] == "zh-hans"
    assert "作业" in home.content.decode() and ">Jobs<" not in home.content.decode()
    assert home.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    # After signing out, the sign-in page keeps the person's language (the cookie was set to match).
    laptop.post("/accounts/logout/")
    assert laptop.get("/accounts/login/")["Content-Language"] == "zh-hans"

    # Switching back to English on the laptop is kept too.
    _sign_in(laptop, member)
    laptop.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert Profile.objects.get(user=member).language == "en"
    assert laptop.get("/")["Content-Language"] == "en"


def test_an_unknown_language_is_refused_and_changes_nothing(client, member):
    client.force_login(member)
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    events = AuditEvent.objects.count()
    response = client.post("/i18n/setlang/", {"language": "klingon", "next": "/"}, follow=True)
    assert "未知的语言" in response.content.decode()
    assert Profile.objects.get(user=member).language == "zh-hans"
    assert AuditEvent.objects.count() == events


def test_an_anonymous_choice_is_only_a_cookie(client, db):
    response = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/accounts/login/"})
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    assert not Profile.objects.exists()
    assert "登录" in client.get("/accounts/login/").content.decode()


@pytest.mark.parametrize(("language", "month_marker", "ago"), [("zh-hans", "年", "分钟"), ("en", ",", "minutes")])
def test_dates_follow_the_language(client, member, production, language, month_marker, ago):
    datalake_services.dataset_create(actor=member, department=production, name="Inspections")
    client.force_login(member)
    client.post("/i18n/setlang/", {"language": language, "next": "/"})
    page = client.get("/").content.decode()
    # The department's activity: "0 minutes" ago, and the full date in the language's own format on hover.
    assert f"0\xa0{ago}" in page, page[page.find("<time") : page.find("<time") + 300]
    start = page.find("<time")
    assert month_marker in page[start : page.find("</time>", start)]


def test_a_job_reports_its_fixed_steps_in_the_language_of_who_asked(member, owner, production):
    """The runner runs a job in its requester's kept language; an engine's step name marked with
    gettext_noop (no Django in the engine) is stored translated."""
    from django.utils import translation

    from lepton.jobs import runner
    from lepton.jobs.models import Job
    from lepton.services import profile_set_language
    from models_repo.engine.errors import gettext_noop

    profile_set_language(actor=member, language="zh-hans")
    asked = Job.objects.create(kind="tests.noop", department=production, requested_by=member, status="running", attempts=1)
    other = Job.objects.create(kind="tests.noop", department=production, requested_by=owner, status="running", attempts=1)
    assert runner.job_language(asked) == "zh-hans" and runner.job_language(other) == settings.LANGUAGE_CODE
    for job in (asked, other):
        with translation.override(runner.job_language(job)):
            runner.JobContext(job, 1, 60).progress(98, gettext_noop("Writing the model"))
    asked.refresh_from_db()
    other.refresh_from_db()
    assert asked.progress_message == "正在保存模型" and other.progress_message == "Writing the model"


def test_the_platform_writes_a_jobs_lines_and_reasons_in_the_language_of_who_asked(member, owner, production):
    """The job's own lines (queued, started, succeeded), the dispatcher's waiting reason and the
    reaper's verdict are written in the requester's language; another person's job in theirs."""
    from datetime import timedelta

    from django.utils import timezone

    from lepton.jobs import runner
    from lepton.jobs.dispatcher import dispatch, reap
    from lepton.jobs.models import Job
    from lepton.jobs.services import job_submit
    from lepton.services import profile_set_language
    from tests.lepton.test_jobs import _beat

    profile_set_language(actor=member, language="zh-hans")
    job = job_submit(actor=member, department=production, kind="tests.noop")
    assert runner.run(job.pk, hostname="w1@host") == "succeeded"
    lines = list(job.log_lines.order_by("id").values_list("message", flat=True))
    assert lines == ["由 mia-member 加入队列，优先级 5。", "已在 w1@host 上开始（第 1 次尝试，共 3 次）。", "已成功。"], lines

    waiting = job_submit(actor=member, department=production, kind="tests.gpu")
    english = job_submit(actor=owner, department=production, kind="tests.gpu")
    _beat(queues=["cpu"], concurrency=4)
    dispatch()
    waiting.refresh_from_db()
    english.refresh_from_db()
    assert waiting.wait_reason == "正在等待 GPU 工作节点：当前没有在线节点。"
    assert english.wait_reason == "Waiting for a GPU worker: none is online."

    old = timezone.now() - timedelta(minutes=10)
    stale = Job.objects.create(
        kind="tests.noop", department=production, requested_by=member, status="running", attempts=1, max_attempts=1,
        started_at=old, heartbeat_at=old, worker="gone@host",
    )  # fmt: skip
    assert reap()["failed"] == [stale.pk]
    stale.refresh_from_db()
    assert stale.error_message.startswith("工作节点 gone@host 已停止响应") and "没有剩余尝试次数" in stale.error_message

"""Monitoring's jobs write their log lines in the language of who asked (the runner runs them in it)."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone, translation

from lepton.jobs.registry import JobError
from monitoring import jobkinds, services
from tests.monitoring.conftest import inputs, log_inputs

CJK = re.compile(r"[\u4e00-\u9fff]")


class Context:
    """What a handler reports, kept (lepton.jobs.runner.JobContext's progress and log)."""

    def __init__(self):
        self.lines: list[tuple[str, str]] = []
        self.steps: list[str] = []

    def progress(self, percent, message=""):
        self.steps.append(message)

    def log(self, message, level="info"):
        self.lines.append((level, message))


def run_in(language: str, handler, params: dict) -> Context:
    ctx = Context()
    with translation.override(language):
        handler(ctx, params)
    return ctx


def test_a_drift_job_logs_its_comparison_in_chinese(deployed, drift_settings):
    end = services.window_end_for(timezone.now())
    log_inputs(deployed, inputs(300, seed=21), at=end - timedelta(minutes=30))
    params = {"version": str(deployed.pk), "window_end": end.isoformat()}
    english = run_in("en", jobkinds._drift, params)
    chinese = run_in("zh-hans", jobkinds._drift, params)
    assert english.lines == [("info", "300 sampled rows compared: Stable 3")]
    assert chinese.lines == [("info", "已比较 300 行采样数据：稳定 3")]
    assert all(CJK.search(step) for step in chinese.steps) and chinese.steps != english.steps


def test_a_drift_job_without_a_reference_says_why_in_chinese(monkeypatch):
    monkeypatch.setattr(services, "drift_compute", lambda *args, **kwargs: {"status": "unavailable", "reason": "uploaded"})
    params = {"version": "00000000-0000-0000-0000-000000000000", "window_end": timezone.now().isoformat()}
    (level, line), *_more = run_in("zh-hans", jobkinds._drift, params).lines
    assert level == "warning" and line.startswith("没有漂移参考：") and CJK.search(line[7:]) and "uploaded" not in line, line


def test_a_drift_job_for_a_deleted_version_fails_in_chinese(db):
    params = {"version": "00000000-0000-0000-0000-000000000000", "window_end": timezone.now().isoformat()}
    with pytest.raises(JobError) as caught:
        run_in("zh-hans", jobkinds._drift, params)
    assert str(caught.value) == "该模型版本已被删除。"


def test_the_alert_jobs_log_what_they_did_in_chinese(db):
    english = run_in("en", jobkinds._alert_webhooks, {}).lines + run_in("en", jobkinds._alert_emails, {"alerts": []}).lines
    chinese = (
        run_in("zh-hans", jobkinds._alert_webhooks, {}).lines + run_in("zh-hans", jobkinds._alert_emails, {"alerts": []}).lines
    )
    assert english == [("info", "Webhooks: 0 delivered, 0 to retry, 0 failed."), ("info", "0 e-mail messages sent")]
    assert chinese == [("info", "Webhook：0 个已送达，0 个待重试，0 个失败。"), ("info", "已发送 0 封电子邮件")]

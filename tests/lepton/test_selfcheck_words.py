"""The platform self-check reports its rounds in the language of who started it (lepton.jobkinds)."""

from lepton.jobs import runner
from lepton.jobs.models import JobLogLine
from lepton.jobs.services import job_submit
from lepton.services import profile_set_language


def test_a_self_check_started_in_chinese_reports_its_rounds_in_chinese(member, production):
    profile_set_language(actor=member, language="zh-hans")
    job = job_submit(actor=member, department=production, kind="lepton.selfcheck", params={"steps": 2, "pause_seconds": 0})
    assert runner.run(job.pk) == "succeeded"
    job.refresh_from_db()
    assert job.progress_message == "第 2 轮（共 2 轮）：数据库和存储均已响应。"
    lines = list(JobLogLine.objects.filter(job=job).values_list("message", flat=True))
    assert any(line.startswith("存储 ") and line.endswith("响应了 2 轮。") for line in lines), lines

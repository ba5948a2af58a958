"""Journey 5: a platform admin sets a department's quota in the Django admin (a bad value is refused
and changes nothing), then watches fair share on the Jobs page: Production's jobs wait at its limit
of one while Quality's run beside them, and everything finishes."""

from itertools import pairwise

from lepton.jobs.models import Job
from lepton.jobs.services import job_submit
from lepton.models import Department
from tests.browser.journeys.conftest import login, shot
from tests.browser.test_smoke import pytestmark  # noqa: F401  (the browser marks)

SLEEP = {"steps": 8, "step_seconds": 0.3}  # 2.4 s a job: long enough to see them wait


def test_admin_sets_a_quota_and_sees_fair_share_on_the_jobs_page(
    live_server, browser_page, staff, member, outsider, production, quality, celery_worker, dispatcher
):
    from playwright.sync_api import expect

    page, base = browser_page, live_server.url
    login(page, base, staff, "/admin/lepton/department/")
    page.click("#result_list a:text-is('production')")
    limit = page.locator("#id_max_concurrent_jobs")
    expect(limit).to_have_value("4")

    limit.fill("0")
    page.click("input[name=_save]")
    expect(page.locator(".errornote")).to_be_visible()
    expect(page.locator(".field-max_concurrent_jobs .errorlist")).to_contain_text("greater than or equal to 1")
    production.refresh_from_db()
    assert production.max_concurrent_jobs == 4

    page.locator("#id_max_concurrent_jobs").fill("1")
    shot(page, "j5-01-admin-quota")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("changed successfully")
    assert Department.objects.get(slug="production").max_concurrent_jobs == 1

    # Both departments send work; Production's three jobs were queued first.
    ours = [job_submit(actor=member, department=production, kind="tests.sleep", params=SLEEP) for _ in range(3)]
    theirs = [job_submit(actor=outsider, department=quality, kind="tests.sleep", params=SLEEP) for _ in range(2)]

    page.goto(f"{base}/jobs/")
    panel = page.locator("#fair-share")
    row = panel.locator("[data-fair-share='production']")
    expect(row.locator("[data-active]")).to_contain_text("1 of 1")
    expect(row.locator("[data-waiting]")).not_to_have_text("0")
    expect(page.locator("#job-rows")).to_contain_text("Production is at its limit of 1 concurrent jobs.")
    expect(panel.locator("[data-fair-share='quality'] [data-active]")).to_contain_text("of 4")
    shot(page, "j5-02-fair-share")

    # The page follows by itself until every job has run.
    page.evaluate("window.__stayed = true")
    expect(page.locator("#job-rows")).to_have_attribute("data-polling", "false", timeout=60_000)
    expect(row.locator("[data-waiting]")).to_have_text("0", timeout=10_000)
    expect(row.locator("[data-active]")).to_contain_text("0 of 1")
    expect(panel).to_have_attribute("data-polling", "false")  # nothing in flight: the panel stops asking
    assert page.evaluate("window.__stayed === true")
    shot(page, "j5-03-all-done")

    jobs = {j.pk: j for j in Job.objects.all()}
    assert all(j.status == "succeeded" for j in jobs.values()), [(j.kind, j.status, j.error_message) for j in jobs.values()]
    spans = sorted((jobs[j.pk].started_at, jobs[j.pk].finished_at) for j in ours)
    assert all(earlier[1] <= later[0] for earlier, later in pairwise(spans)), "Production ran two jobs at once"
    # Quality's jobs, queued after Production's, did not wait behind all of them.
    assert min(jobs[j.pk].started_at for j in theirs) < spans[-1][0], (spans, [jobs[j.pk].started_at for j in theirs])

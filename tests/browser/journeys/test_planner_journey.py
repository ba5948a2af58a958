"""Journey 3: a production planner uploads a Taillard file, runs Q-learning beside the dispatching
rules and CP-SAT, reads the Gantt chart and the comparison, then checks how the schedule holds up
under machine breakdowns: refused on the file (no machine has an MTBF), so the planner copies the
problem in the table editor, gives the machines an MTBF and MTTR, and runs the robustness check."""

from lepton.jobs.models import Job
from scheduling.models import ScheduleRun, ShopProblem
from tests.browser.journeys.conftest import login, shot
from tests.browser.test_scheduling import TAILLARD
from tests.browser.test_smoke import pytestmark  # noqa: F401  (the browser marks)
from tests.conftest import wait_for


def test_planner_compares_methods_on_a_gantt_chart_and_checks_robustness(
    live_server, browser_page, member, production, celery_worker, dispatcher, tmp_path
):
    from playwright.sync_api import expect

    page, base = browser_page, live_server.url
    login(page, base, member, "/scheduling/")
    expect(page.locator("h1")).to_have_text("Scheduling")

    upload = tmp_path / "cell7.tai"
    upload.write_text(TAILLARD)
    page.click("text=Add a problem from a file")
    page.fill("#id_name", "Cell 7")
    page.set_input_files("#id_file", str(upload))
    page.select_option("#id_format", "taillard")
    page.click("button:has-text('Add the problem')")
    expect(page.locator("h1")).to_have_text("Cell 7")
    problem = ShopProblem.objects.get()

    # Q-learning with every rule and CP-SAT beside it; the run page follows the job, then draws the Gantt chart.
    page.select_option("#id_method", "qlearning")
    page.fill("#id_time_limit", "1")
    page.check("#id_compare")
    page.click("section[aria-labelledby=run-title] button[type=submit]")
    expect(page.locator("#run-live")).to_have_attribute("data-run-status", "succeeded", timeout=60_000)
    expect(page.locator("[data-plotly-figure='fig-gantt'] svg.main-svg").first).to_be_visible()
    expect(page.locator("[data-plotly-figure='fig-gantt'] .bars path").first).to_be_attached()
    makespan = int(page.locator("[data-makespan]").inner_text())
    expect(page.locator("#run-cancel button")).to_have_count(0)  # the finished run offers no Cancel
    shot(page, "j3-01-gantt")

    def statuses():
        return sorted(ScheduleRun.objects.filter(problem=problem).values_list("method", "status", "error_message"))

    try:
        wait_for(lambda: [s for _m, s, _e in statuses()] == ["succeeded"] * 8, timeout=90, interval=0.5, what="8 runs")
    except AssertionError as timeout:
        jobs = list(Job.objects.values_list("kind", "status", "released_at", "started_at", "wait_reason", "attempts"))
        raise AssertionError(f"the comparison's runs: {statuses()}; jobs: {jobs}") from timeout
    page.click("text=← Cell 7")
    table = page.locator("[data-comparison]")
    for method in ("Q-learning", "CP-SAT (exact reference)", "Most work remaining", "Shortest processing time"):
        expect(table).to_contain_text(method)
    cpsat = ScheduleRun.objects.get(problem=problem, method="cpsat")
    assert cpsat.makespan <= makespan  # CP-SAT is the exact reference on four jobs
    shot(page, "j3-02-comparison")

    # Robustness on the file as uploaded: refused with the reason, nothing queued.
    runs_before = ScheduleRun.objects.count()
    page.fill("#id_time_limit", "1")
    page.uncheck("#id_compare")
    page.fill("#id_replications", "20")
    page.click("section[aria-labelledby=run-title] button[type=submit]")
    expect(page.locator("section[aria-labelledby=run-title]")).to_contain_text("No machine of this problem has an MTBF")
    assert ScheduleRun.objects.count() == runs_before

    # Copy it in the table editor and give every machine an MTBF and an MTTR.
    page.click("text=Copy and edit")
    expect(page.locator("h1")).to_have_text("Copy and edit")
    page.fill("#id_name", "Cell 7 with breakdowns")
    for row in range(3):
        page.fill(f"[name=machines-{row}-mtbf]", "40")
        page.fill(f"[name=machines-{row}-mttr]", "4")
    page.click("button[name=save]")
    expect(page.locator("h1")).to_have_text("Cell 7 with breakdowns")
    copy = ShopProblem.objects.get(name="Cell 7 with breakdowns")
    assert all(m["mtbf"] == 40 and m["mttr"] == 4 for m in copy.machines), copy.machines

    page.select_option("#id_method", "qlearning")
    page.fill("#id_time_limit", "1")
    page.fill("#id_replications", "20")
    page.click("section[aria-labelledby=run-title] button[type=submit]")
    expect(page.locator("#run-live")).to_have_attribute("data-run-status", "succeeded", timeout=60_000)
    expect(page.locator("[data-plotly-figure='fig-robustness'] svg.main-svg").first).to_be_visible()
    page.locator("[data-plotly-figure='fig-robustness']").scroll_into_view_if_needed()
    shot(page, "j3-03-robustness")
    run = ScheduleRun.objects.get(problem=copy)
    summary = run.info["robustness"]
    assert summary["replications"] == 20, summary

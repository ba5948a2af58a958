"""Scheduling journey in a real Chromium: upload a Taillard file, run Q-learning with the rules and CP-SAT
for comparison, watch the run finish without reloading, see the Gantt chart and the comparison table."""

from scheduling.models import ScheduleRun, ShopProblem
from tests.browser.conftest import SHOTS
from tests.browser.test_smoke import pytestmark  # noqa: F401  (the browser marks)
from tests.conftest import wait_for

TAILLARD = """Nb of jobs, Nb of Machines, Time seed, Machine seed, Upper bound, Lower bound
4 3 0 0 0 0
Times
5 8 3
6 2 7
4 4 4
9 3 5
Machines
1 2 3
2 3 1
3 1 2
1 3 2
"""


def test_planner_uploads_a_taillard_file_and_compares_methods_on_a_gantt_chart(
    live_server, browser_page, member, production, celery_worker, dispatcher, tmp_path
):
    from playwright.sync_api import expect

    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/?next=/scheduling/")
    page.fill("input[name=username]", member.username)
    page.fill("input[name=password]", "password")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Scheduling")
    expect(page.locator("[data-empty]")).to_contain_text("No shop problem in Production yet")

    upload = tmp_path / "small.tai"
    upload.write_text(TAILLARD)
    page.click("text=Add a problem from a file")
    page.fill("#id_name", "Cell 7")
    page.set_input_files("#id_file", str(upload))
    page.select_option("#id_format", "taillard")
    page.click("button:has-text('Add the problem')")
    expect(page.locator("h1")).to_have_text("Cell 7")
    expect(page.locator(".messages")).to_contain_text("added")
    problem = ShopProblem.objects.get()
    assert (problem.n_jobs, problem.n_machines, problem.source_format) == (4, 3, "taillard")

    page.select_option("#id_method", "qlearning")
    page.fill("#id_time_limit", "2")
    page.check("#id_compare")
    page.click("section[aria-labelledby=run-title] button[type=submit]")
    # The run page polls until the job is done, then shows the figures without a reload.
    expect(page.locator("#run-live")).to_have_attribute("data-run-status", "succeeded", timeout=60_000)
    expect(page.locator("[data-plotly-figure='fig-gantt'] svg.main-svg").first).to_be_visible()
    expect(page.locator("[data-plotly-figure='fig-learning']")).to_be_visible()
    makespan = int(page.locator("[data-makespan]").inner_text())
    page.screenshot(path=str(SHOTS / "30-schedule-run.png"), full_page=True)

    wait_for(
        lambda: ScheduleRun.objects.filter(problem=problem, status="succeeded").count() == 8,
        timeout=90, interval=0.5, what="the eight runs of the comparison",
    )  # fmt: skip
    page.click("text=← Cell 7")
    table = page.locator("[data-comparison]")
    for method in ("Q-learning", "CP-SAT (exact reference)", "Most work remaining", "Shortest processing time"):
        expect(table).to_contain_text(method)
    rules = ScheduleRun.objects.filter(problem=problem, method__in=["fifo", "spt", "lpt", "mwkr", "mor", "lor"])
    assert makespan <= min(r.makespan for r in rules)
    page.screenshot(path=str(SHOTS / "31-problem-comparison.png"), full_page=True)


def test_planner_enters_a_problem_in_the_table_editor(live_server, browser_page, member, production):
    """Two machines and two jobs typed into the editor's tables (a row added and one removed in the
    page by static/js/scheduling-editor.js, one operation with an alternative machine), saved, and
    shown on the problem's page."""
    from playwright.sync_api import expect

    page = browser_page
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/accounts/login/?next=/scheduling/")
    page.fill("input[name=username]", member.username)
    page.fill("input[name=password]", "password")
    page.click("button[type=submit]")
    page.click("text=New problem (table editor)")
    expect(page.locator("h1")).to_have_text("New problem")

    page.fill("#id_name", "Cell 8")
    page.fill("[name=machines-0-name]", "lathe")
    page.fill("[name=machines-1-name]", "mill")
    page.fill("[name=machines-1-mtbf]", "50")
    page.fill("[name=machines-1-mttr]", "5")
    page.fill("[name=jobs-0-name]", "A")
    page.fill("[name=jobs-0-due]", "12")
    page.fill("[name=jobs-1-name]", "B")
    operations = page.locator("tbody[data-rows=operations] tr")
    expect(operations).to_have_count(3)
    page.click("button[name=add][value=operations]")
    page.click("button[name=add][value=operations]")
    expect(operations).to_have_count(5)
    expect(page.locator("[name=operations-4-job]")).to_be_focused()
    page.fill("[name=operations-4-job]", "B")
    page.fill("[name=operations-4-machine]", "drill")
    operations.nth(4).locator("button[name=remove]").click()  # taken out in the page, not sent
    expect(operations).to_have_count(4)
    routes = [("A", "lathe", "3"), ("A", "mill", "2"), ("B", "mill", "4"), ("B", "lathe", "1")]
    for row, (job, machine, duration) in enumerate(routes):
        page.fill(f"[name=operations-{row}-job]", job)
        page.fill(f"[name=operations-{row}-machine]", machine)
        page.fill(f"[name=operations-{row}-duration]", duration)
    page.focus("[name=operations-1-duration]")  # A's second operation may also run on the lathe: Tab, then type it
    page.keyboard.press("Tab")
    page.keyboard.type("lathe: 5")
    expect(page.locator("[name=operations-1-alternatives]")).to_have_value("lathe: 5")
    page.screenshot(path=str(SHOTS / "32-problem-editor.png"), full_page=True)
    page.click("button[name=save]")

    expect(page.locator("h1")).to_have_text("Cell 8")
    expect(page.locator(".messages")).to_contain_text("saved")
    expect(page.locator("p.mono").first).to_contain_text("2 jobs × 2 machines · 4 operations")
    problem = ShopProblem.objects.get(name="Cell 8")
    assert problem.source == "form" and problem.jobs[1]["operations"] == [[[1, 4]], [[0, 1]]]
    assert problem.flexible and problem.jobs[0]["operations"] == [[[0, 3]], [[1, 2], [0, 5]]]
    assert problem.machines[1] == {"name": "mill", "mtbf": 50.0, "mttr": 5.0} and problem.jobs[0]["due"] == 12
    expect(page.locator("text=Copy and edit")).to_be_visible()
    assert errors == []

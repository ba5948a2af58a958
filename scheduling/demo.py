"""Production's demo shop (added by `manage.py load_demo`): machining cell B, 15 orders on 10 machines.

Orders have due dates and weights, machines an MTBF and MTTR. The planner queues a comparison
(Q-learning, CP-SAT and the makespan rules): the worker that `make run` starts finishes it within
a minute, so the problem page shows a finished comparison and Gantt charts.
"""

from django.contrib.auth import get_user_model

from lepton.models import Department
from scheduling import services
from scheduling.engine.generate import generate
from scheduling.engine.rules import MAKESPAN_RULES
from scheduling.models import ProblemSource, ShopProblem

SLUG = "machining-cell-b"
MACHINES = [
    "CNC-1 车床",
    "CNC-2 车床",
    "Mill-1 铣床",
    "Mill-2 铣床",
    "Drill 钻床",
    "Grind 磨床",
    "Hone 珩磨",
    "Heat 热处理",
    "Wash 清洗",
    "QC 检验",
]
ORDERS = [f"PO-{2401 + k}" for k in range(15)]
TIME_LIMIT = 10  # seconds for Q-learning and CP-SAT each


def demo_shop():
    """The demo's shop as an engine Instance (deterministic)."""
    return generate(15, 10, seed=20240301, due_factor=2.2, mtbf=900, mttr=45, names=(ORDERS, MACHINES))


def load_demo(*, created: list[str]) -> None:
    department = Department.objects.filter(slug="production").first()
    planner = get_user_model().objects.filter(username="planner").first()
    if department is None or planner is None or ShopProblem.objects.filter(department=department, slug=SLUG).exists():
        return
    problem = services.problem_create(
        actor=planner, department=department, name="Machining cell B", slug=SLUG, instance=demo_shop(),
        source=ProblemSource.DEMO,
        description="15 purchase orders through turning, milling, drilling, grinding, honing, heat treatment, "
        "washing and inspection; due dates and weights from the order book, MTBF/MTTR from maintenance records.",
    )  # fmt: skip
    for method in ("qlearning", "cpsat", *MAKESPAN_RULES):
        services.run_start(actor=planner, problem=problem, method=method, time_limit=TIME_LIMIT, seed=1)
    created.append(f"shop problem production/{SLUG} with a comparison of {2 + len(MAKESPAN_RULES)} methods queued")

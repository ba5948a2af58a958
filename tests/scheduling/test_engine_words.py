"""The scheduling engine's own words — progress, refusals, notes on a run — reach a Chinese reader in Chinese.

The engine does not import Django: it marks each text (phrases: gettext_noop, ngettext, phrase) and the
services put it in the reader's language (lepton.i18n.translated) where it is reported or stored.
"""

import ast
import json
from pathlib import Path

import pytest
from django.utils import translation

from lepton.i18n import translated
from lepton.jobs import runner
from lepton.jobs.models import Job as JobRow
from lepton.jobs.models import JobLogLine
from lepton.services import profile_set_language
from scheduling import services
from scheduling.engine import cpsat_process, family, improve, qlearning, robustness, solve
from scheduling.engine.instance import Instance, Job, Machine, Operation, Phrase, gettext_noop, phrase
from scheduling.engine.rules import dispatch
from scheduling.engine.schedule import Schedule, ScheduledOp, ScheduleError, validate
from scheduling.models import ScheduleRun
from tests.scheduling.test_engine import public
from tests.words import CJK, assert_chinese, untranslated

ENGINE = Path(solve.__file__).parent
MARKERS = ("gettext_noop", "ngettext", "phrase")
# Their own test checks the readers' refusals (test_formats.test_every_refusal_..._is_marked_for_translation).
READERS = ("formats.py", "instance.py", "table.py")


def chinese(value) -> str:
    with translation.override("zh-hans"):
        return translated(value)


# --- every text the engine words for a person is marked --------------------------------------------


def _marked_names(tree: ast.AST) -> set[str]:
    """Names bound only to a marked text (a gettext_noop / ngettext / phrase call) in the module."""
    marked, other = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    (marked if _is_marked_call(node.value) else other).add(target.id)
    return marked - other


def _is_marked_call(node) -> bool:
    return isinstance(node, ast.Call) and getattr(node.func, "id", None) in MARKERS


def _marked(node, names: set[str]) -> bool:
    return _is_marked_call(node) or (isinstance(node, ast.Name) and node.id in names)


def _unmarked_words(path: Path) -> list[str]:
    """The places in `path` where a progress message, a raised message or a schedule's problem is not marked."""
    tree = ast.parse(path.read_text())
    names = _marked_names(tree)
    # schedule.validate's problem(template, **params) makes the phrase; its callers are checked instead.
    relays = {
        id(call)
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef) and function.name == "problem"
        for call in ast.walk(function)
        if isinstance(call, ast.Call)
        and call.args
        and isinstance(call.args[0], ast.Name)
        and call.args[0].id in {a.arg for a in function.args.args}
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or id(node) in relays:
            continue
        called = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
        if called == "progress" and len(node.args) >= 2:
            message = node.args[1]
            # cpsat_process's parent reports the Phrase its child sent through the pipe.
            relayed = isinstance(message, ast.Call) and getattr(message.func, "id", None) == "_from_json"
            if not (_marked(message, names) or relayed):
                found.append(f"{path.name}:{node.lineno} progress")
        elif called == "problem" and node.args and not _marked(node.args[0], names):
            found.append(f"{path.name}:{node.lineno} problem")
        elif called == "phrase" and node.args and not _marked(node.args[0], names):
            found.append(f"{path.name}:{node.lineno} phrase of an unmarked template")
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
            if getattr(node.exc.func, "id", None) == "ScheduleError":  # its problems: checked as problem(...) above
                continue
            if not _marked(node.exc.args[0], names):
                found.append(f"{path.name}:{node.lineno} raise {getattr(node.exc.func, 'id', '?')}")
    return found


def test_every_progress_message_and_refusal_of_the_engine_is_marked_for_translation():
    # An f-string or a bare literal would reach a Chinese reader in English.
    unmarked = [place for path in sorted(ENGINE.glob("*.py")) if path.name not in READERS for place in _unmarked_words(path)]
    assert not unmarked


def test_the_check_finds_an_unmarked_message(tmp_path):
    # The check above, on what it must refuse.
    source = tmp_path / "sample.py"
    source.write_text(
        "def run(progress, n):\n"
        "    progress(0.5, f'episode {n}')\n"
        "    message = f'{n} is wrong'\n"
        "    raise ValueError(message)\n"
        "def later(n):\n"
        "    raise FamilyError(f'{n} is a pair', 'jobs')\n"
    )
    assert [place.split(" ", 1)[1] for place in _unmarked_words(source)] == ["progress", "raise ValueError", "raise FamilyError"]


def test_every_marked_text_of_the_engine_is_translated():
    keys = []
    for path in sorted(ENGINE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if _is_marked_call(node) and node.func.id != "phrase" and all(isinstance(a, ast.Constant) for a in node.args[:2]):
                keys.append((node.args[0].value, node.args[1].value if node.func.id == "ngettext" else None))
    assert len(keys) > 50
    assert not untranslated(keys), "makemessages -l zh_Hans and translate them"


# --- refusals ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: family.Family.from_dict({"jobs": [1, 5]}), "jobs"),
        (lambda: family.Family.from_dict({"machines": [3]}), "machines"),
        (lambda: family.Family.from_dict({"instances": 0}), "instances"),
        (lambda: family.Family.from_dict({"held_out": 10_000}), "held_out"),
        (lambda: family.check_budget(0.0, None), "seconds"),
        (lambda: family.check_budget(10.0, 0), "episodes"),
    ],
    ids=["jobs-range", "machines-pair", "instances", "held-out", "seconds", "episodes"],
)
def test_a_family_refusal_is_worded_in_chinese(build, field):
    with pytest.raises(family.FamilyError) as caught:
        build()
    assert caught.value.field == field
    text = assert_chinese(caught.value.message)
    assert services.engine_error_text(caught.value) == str(caught.value)  # English where English is active
    with translation.override("zh-hans"):
        assert services.engine_error_text(caught.value) == text


def _policy_json(**change) -> str:
    policy = qlearning.Policy(features=qlearning.FAMILY_FEATURES, table={(0, 0, 0): [0.0] * len(qlearning.ACTIONS)})
    return json.dumps({**json.loads(policy.to_json()), **change})


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda: family.read("[1, 2]"), "不是调度策略"),
        (lambda: family.read(_policy_json(features="progress3,queue4")), "状态特征"),
        (lambda: family.read(_policy_json(table=[[[0, 0], [0.0]]])), "布局不符"),
        (lambda: family.read(_policy_json(trained_on={"scheme": "sideways"})), "sideways"),
        (lambda: qlearning.Policy.from_json(_policy_json(features="progress9")), "状态特征"),
        (lambda: solve.solve(public("ft06"), "annealing", time_limit=1, seed=0), "annealing"),
        (lambda: robustness.evaluate(public("ft06"), dispatch(public("ft06"), "spt"), replications=3, seed=0), "MTBF"),
        (lambda: robustness.evaluate(public("ft06"), dispatch(public("ft06"), "spt"), replications=0, seed=0), "1 到 200"),
        (lambda: dispatch(public("ft06"), "slowest"), "slowest"),
        (lambda: qlearning.solve(public("ft06"), time_limit=0), "大于 0 秒"),
    ],
    ids=[
        "not-json-object",
        "features",
        "layout",
        "scheme",
        "qlearning-features",
        "method",
        "mtbf",
        "replications",
        "rule",
        "time",
    ],
)
def test_an_engine_refusal_is_worded_in_chinese(build, words):
    with pytest.raises((ValueError, RuntimeError)) as caught:
        build()
    with translation.override("zh-hans"):
        text = services.engine_error_text(caught.value)
    assert words in text and CJK.search(text) and "%(" not in text and text != str(caught.value), text


def test_a_broken_schedule_is_explained_in_chinese():
    shop = public("ft06")
    good = dispatch(shop, "spt")
    broken = Schedule([*good.operations[1:], ScheduledOp(99, 0, 0, 0, 1)])
    with pytest.raises(ScheduleError) as caught:
        validate(shop, broken)
    assert "(and 1 more)" in str(caught.value) and all(isinstance(p, Phrase) for p in caught.value.problems)
    with translation.override("zh-hans"):
        text = services.engine_error_text(caught.value)
    assert text.startswith("作业 99 没有工序 0") and "另有 1 个问题" in text, text


# --- progress ----------------------------------------------------------------------------------------


def test_learning_and_improving_report_their_progress_in_chinese():
    seen = []
    result = qlearning.solve(
        public("ft06"), time_limit=30, seed=1, episodes=30, improve_iterations=200, progress=lambda f, m: seen.append(m)
    )
    assert any("episode" in m for m in seen) and any("improvement" in m for m in seen), seen
    texts = [assert_chinese(m) for m in seen]
    first = seen[0].params
    assert texts[0] == f"第 1 回合，完工时间 {first['makespan']}，最佳 {first['best']}"
    assert_chinese(result.info["kept"])  # the phase that gave the schedule, shown on the run's page


def test_a_family_training_reports_its_progress_in_chinese():
    seen = []
    chosen = family.Family(jobs=(3, 4), machines=(2, 3), instances=2, held_out=1)
    family.train(chosen, seconds=60, episodes=3, seed=0, progress=lambda f, m: seen.append(m))
    assert str(seen[0]).startswith("1 episode on 2 shops, best training gap") and str(seen[1]).startswith("2 episodes")
    assert chinese(seen[-1]).startswith("在 2 个车间上训练了 3 个回合，最佳训练差距"), chinese(seen[-1])
    assert all(assert_chinese(m) for m in seen)


def test_cpsat_progress_crosses_its_process_in_chinese():
    seen = []
    result = cpsat_process.solve(public("ft06"), time_limit=20, seed=0, progress=lambda f, m: seen.append(m))
    assert result.status == "OPTIMAL" and str(seen[-1]).startswith("OPTIMAL: makespan 55, bound 55, ")
    assert chinese(seen[-1]).startswith("最优：完工时间 55，界 55，"), chinese(seen[-1])
    assert all(assert_chinese(m) for m in seen)


def test_a_phrase_inside_a_phrase_is_translated_whole():
    kept = phrase(gettext_noop("the improvement phase (after %(kept)s)"), kept=phrase(gettext_noop("rule %(rule)s"), rule="spt"))
    assert str(kept) == "the improvement phase (after rule spt)"
    assert chinese(kept) == "改进阶段（在 规则 spt 之后）"


def test_the_flexible_shop_note_of_the_improvement_phase_is_marked():
    shop = Instance(jobs=(Job("A", (Operation(((0, 3), (1, 4))),)),), machines=(Machine("M0"), Machine("M1")))
    _schedule, info = improve.improve(shop, Schedule([]), time_limit=1)
    assert "柔性车间" in assert_chinese(info["skipped"])


# --- a real run, asked for by a person who reads Chinese -------------------------------------------


@pytest.fixture
def chinese_member(member):
    profile_set_language(actor=member, language="zh-hans")
    return member


@pytest.fixture
def chinese_owner(owner):
    profile_set_language(actor=owner, language="zh-hans")
    return owner


@pytest.fixture
def shop_problem(member, production):
    return services.problem_create(actor=member, department=production, name="Press shop", instance=public("ft06"))


def test_a_q_learning_run_asked_in_chinese_reports_and_stores_its_words_in_chinese(chinese_member, shop_problem, monkeypatch):
    reported = []
    progress = runner.JobContext.progress

    def recording(ctx, percent, message=""):  # what each report stores for the job's page
        progress(ctx, percent, message)
        reported.append(JobRow.objects.values_list("progress_message", flat=True).get(pk=ctx.job.pk))

    monkeypatch.setattr(runner.JobContext, "progress", recording)
    run = services.run_start(actor=chinese_member, problem=shop_problem, method="qlearning", time_limit=1.0, seed=3)
    assert runner.run(run.job_id) == "succeeded"
    run.refresh_from_db()
    run.job.refresh_from_db()
    assert run.status == "succeeded" and reported
    for message in reported:
        assert CJK.search(message) and "%(" not in message and "episode" not in message and "makespan" not in message, message
    assert run.job.progress_message in reported
    assert CJK.search(run.info["kept"]) and "rule" not in run.info["kept"], run.info["kept"]
    logged = list(JobLogLine.objects.filter(job=run.job).values_list("message", flat=True))
    assert f"Q 学习：完工时间 {run.makespan}" in logged, logged


def test_a_failed_run_asked_in_chinese_says_why_in_chinese(chinese_member, shop_problem, monkeypatch):
    def nothing(*args, **kwargs):
        message = gettext_noop("The method '%(method)s' found no schedule within %(seconds)s seconds.")
        raise solve.NoScheduleFound(phrase(message, method="cpsat", seconds="1"))

    monkeypatch.setattr(solve, "solve", nothing)
    run = services.run_start(actor=chinese_member, problem=shop_problem, method="cpsat", time_limit=1.0)
    assert runner.run(run.job_id) == "failed"
    run = ScheduleRun.objects.get(pk=run.pk)
    assert run.status == "failed"
    assert run.error_message == "运行失败（NoScheduleFound：方法“cpsat”在 1 秒内未找到排程。）。", run.error_message


def test_a_policy_training_asked_in_chinese_reports_its_episodes_in_chinese(chinese_owner, production, monkeypatch):
    from scheduling import policies

    reported = []
    progress = runner.JobContext.progress

    def recording(ctx, percent, message=""):  # what each report stores for the job's page
        progress(ctx, percent, message)
        reported.append(JobRow.objects.values_list("progress_message", flat=True).get(pk=ctx.job.pk))

    monkeypatch.setattr(runner.JobContext, "progress", recording)
    spec = {"jobs": [3, 4], "machines": [2, 3], "instances": 2, "held_out": 1, "seconds": 60, "episodes": 4, "seed": 0}
    run = policies.policy_train_start(actor=chinese_owner, department=production, spec=spec, model_name="Press policy")
    assert runner.run(run.job_id) == "succeeded"
    episodes = [m for m in reported if "回合" in m]
    assert episodes and episodes[-1].startswith("在 2 个车间上训练了 4 个回合，最佳训练差距"), reported
    assert all(CJK.search(m) and "episode" not in m for m in reported), reported

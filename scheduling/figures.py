"""Plotly figures of a schedule run (plain dicts for json_script; static/js/lepton.js draws them).

The Gantt chart is a horizontal bar chart: one row per machine, one bar per operation (its
length is the duration, its base the start), one colour per job; breakdowns are grey bars
under them and runs a breakdown cut short are hatched.

No Django import: every builder takes `_`, the translation function of the reader's language (the views pass
django.utils.translation.gettext; the default leaves the English). Writing `_("…")` keeps the words in the
message catalogue (makemessages finds them).
"""

from __future__ import annotations

PALETTE = (
    "#2f4aa8", "#d9822b", "#3c9d5d", "#b83b5e", "#7a5cc7", "#2a9cad", "#c9a227", "#8c564b", "#e377c2", "#5f6b7a",
    "#17becf", "#bcbd22", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#6b4f2a", "#f0a0b0", "#4a6f8a",
)  # fmt: skip
GREY = "#9aa3b5"


def _untranslated(message: str) -> str:
    return message


def _layout(title: str, height: int, **more) -> dict:
    return {
        "title": {"text": title, "font": {"size": 13}},
        "height": height,
        "margin": {"t": 40, "l": 110, "r": 10, "b": 40},
        **more,
    }


def gantt(
    machines: list[str], jobs: list[str], operations: list[tuple], downtimes=(), interrupted=(), *, _=_untranslated
) -> dict:
    """Machines as rows, a bar per (job, op, machine, start, end), a colour per job; breakdowns shaded."""
    rows = list(reversed(machines))  # the first machine on top
    traces = []
    if downtimes:
        traces.append(
            {
                "type": "bar", "orientation": "h", "name": _("breakdown"), "marker": {"color": GREY, "opacity": 0.45},
                "base": [s for _m, s, _e in downtimes], "x": [e - s for _m, s, e in downtimes],
                "y": [machines[m] for m, _s, _e in downtimes],
                "hovertemplate": _("breakdown") + " %{base}–%{customdata}<extra></extra>",
                "customdata": [e for _m, _s, e in downtimes],
            }
        )  # fmt: skip
    if interrupted:
        traces.append(
            {
                "type": "bar", "orientation": "h", "name": _("cut short"),
                "marker": {"color": "rgba(0,0,0,0)", "line": {"color": "#b83b5e", "width": 1}, "pattern": {"shape": "/"}},
                "base": [o[3] for o in interrupted], "x": [o[4] - o[3] for o in interrupted],
                "y": [machines[o[2]] for o in interrupted],
                "customdata": [[jobs[o[0]], o[1]] for o in interrupted],
                "hovertemplate": "%{customdata[0]} · %{customdata[1]}: " + _("lost to a breakdown") + "<extra></extra>",
            }
        )  # fmt: skip
    by_job: dict[int, list[tuple]] = {}
    for o in operations:
        by_job.setdefault(o[0], []).append(o)
    for job, ops in sorted(by_job.items()):
        traces.append(
            {
                "type": "bar", "orientation": "h", "name": jobs[job], "legendgroup": jobs[job],
                "marker": {"color": PALETTE[job % len(PALETTE)], "line": {"color": "#ffffff", "width": 1}},
                "base": [o[3] for o in ops], "x": [o[4] - o[3] for o in ops], "y": [machines[o[2]] for o in ops],
                "customdata": [[o[1], o[3], o[4]] for o in ops],
                "hovertemplate": f"{jobs[job]}" + " · %{customdata[0]}: %{customdata[1]}–%{customdata[2]}<extra></extra>",
            }
        )  # fmt: skip
    height = max(220, 60 + 28 * len(machines))
    layout = _layout(
        _("Gantt chart"),
        height,
        barmode="overlay",
        xaxis={"title": {"text": _("time")}, "rangemode": "tozero"},
        yaxis={"categoryorder": "array", "categoryarray": rows, "type": "category"},
        legend={"orientation": "h", "y": -0.15},
        showlegend=len(jobs) <= 30,
    )
    return {"id": "fig-gantt", "figure": {"data": traces, "layout": layout}}


def utilisation(machines: list[str], values: list[float], *, _=_untranslated) -> dict:
    data = [{"type": "bar", "x": machines, "y": [round(100 * v, 1) for v in values], "marker": {"color": PALETTE[0]}}]
    # xgettext:no-python-format
    layout = _layout(_("Utilisation (% of the makespan)"), 260, yaxis={"range": [0, 100]})
    layout["margin"]["l"] = 50
    return {"id": "fig-utilisation", "figure": {"data": data, "layout": layout}}


def tardiness(jobs: list[str], values: list[int], *, _=_untranslated) -> dict:
    data = [{"type": "bar", "x": jobs, "y": values, "marker": {"color": PALETTE[1]}}]
    layout = _layout(_("Tardiness per job"), 260)
    layout["margin"]["l"] = 50
    return {"id": "fig-tardiness", "figure": {"data": data, "layout": layout}}


def learning_curve(curve: list, best_rule: int | None, *, _=_untranslated) -> dict:
    """Q-learning: each sampled episode's makespan and the best so far, against the best fixed rule."""
    x = [c[0] for c in curve]
    data = [
        {"type": "scatter", "mode": "markers", "name": _("episode"), "x": x, "y": [c[1] for c in curve],
         "marker": {"size": 4, "color": GREY}},
        {"type": "scatter", "mode": "lines", "name": _("best so far"), "x": x, "y": [c[2] for c in curve],
         "line": {"color": PALETTE[0]}},
    ]  # fmt: skip
    if best_rule is not None and x:
        data.append(
            {"type": "scatter", "mode": "lines", "name": _("best fixed rule"), "x": [x[0], x[-1]],
             "y": [best_rule, best_rule], "line": {"color": PALETTE[1], "dash": "dash"}}
        )  # fmt: skip
    layout = _layout(_("Q-learning: makespan by episode"), 280, xaxis={"title": {"text": _("episode")}})
    layout["margin"]["l"] = 60
    return {"id": "fig-learning", "figure": {"data": data, "layout": layout}}


def robustness(summary: dict, *, _=_untranslated) -> dict:
    """Makespans over the replications of breakdowns, one box per reaction, the plan as a line."""
    names = [("right_shift", _("right shift")),
             ("redispatch_rule", _("re-dispatch (%(rule)s)") % {"rule": summary["best_rule"]}),
             ("redispatch_policy", _("re-dispatch (learnt policy)")), ("replan", _("re-plan at breakdowns"))]  # fmt: skip
    data = [
        {"type": "box", "name": label, "y": summary[key]["makespans"], "boxmean": True, "marker": {"color": PALETTE[k]}}
        for k, (key, label) in enumerate(names)
        if key in summary
    ]
    layout = _layout(
        _("Makespan under breakdowns (%(n)s replications)") % {"n": summary["replications"]},
        300,
        shapes=[
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": summary["plan"],
                "y1": summary["plan"],
                "line": {"color": GREY, "dash": "dot"},
            }
        ],  # fmt: skip
        showlegend=False,
    )
    layout["margin"]["l"] = 60
    return {"id": "fig-robustness", "figure": {"data": data, "layout": layout}}


def run_figures(problem, run, *, _=_untranslated) -> list[dict]:
    """The figures of a finished run: Gantt, utilisation, tardiness (where jobs have due dates), learning curve."""
    from scheduling.engine.schedule import Schedule, ScheduledOp
    from scheduling.engine.schedule import figures as numbers
    from scheduling.services import instance_of

    machines = [m["name"] for m in problem.machines]
    jobs = [j["name"] for j in problem.jobs]
    operations = list(run.operations.values_list("job", "op", "machine", "start", "end"))
    out = [gantt(machines, jobs, operations, run.downtimes, run.interrupted, _=_), utilisation(machines, run.utilisation, _=_)]
    if any(j.get("due") is not None for j in problem.jobs):
        schedule = Schedule([ScheduledOp(*o) for o in operations])
        out.append(tardiness(jobs, numbers(instance_of(problem), schedule).tardiness, _=_))
    if run.info.get("robustness"):
        out.append(robustness(run.info["robustness"], _=_))
    if run.info.get("curve"):
        out.append(learning_curve(run.info["curve"], run.info.get("best_rule"), _=_))
    return out

"""Plotly figures of a training run (plain dicts for json_script; static/js/lepton.js draws them).

No Django import: the builders take `_`, the translation function of the reader's language (the views pass
django.utils.translation.gettext; the default leaves the English); `_("…")` keeps the words in the catalogue.
"""

from __future__ import annotations

BLUE, ORANGE, GREY = "#2f4aa8", "#d9822b", "#9aa3b5"


def _untranslated(message: str) -> str:
    return message


def _figure(fid: str, title: str, data: list, layout: dict | None = None) -> dict:
    return {
        "id": fid,
        "figure": {
            "data": data,
            "layout": {
                "title": {"text": title, "font": {"size": 13}},
                "height": 280,
                "margin": {"t": 40, "l": 50, "r": 10, "b": 40},
                **(layout or {}),
            },
        },
    }


def _confusion_axes(_) -> dict:
    return {"xaxis": {"title": {"text": _("predicted")}}, "yaxis": {"title": {"text": _("actual")}, "autorange": "reversed"}}


def run_figures(run, *, _=_untranslated) -> list[dict]:
    """Per-epoch loss, confusion matrix, ROC, PR, residuals, learning curve and importance, where recorded."""
    curves = run.curves or {}
    figures = []
    epochs = run.epochs or curves.get("epochs") or []
    if epochs:
        x = [e.get("epoch", i + 1) for i, e in enumerate(epochs)]
        keys = [k for k in epochs[-1] if k != "epoch" and isinstance(epochs[-1][k], int | float)]
        data = [{"type": "scatter", "mode": "lines+markers", "name": k, "x": x, "y": [e.get(k) for e in epochs]} for k in keys]
        figures.append(_figure("fig-epochs", _("Epochs"), data, {"xaxis": {"title": {"text": _("epoch")}}}))
    episodes = curves.get("episodes") or []
    if episodes:  # a scheduling policy (scheduling.policies): its gap on the training shops as it learnt
        figures.append(
            _figure(
                "fig-episodes", _("Mean gap to the best rule on the training shops"),
                [{"type": "scatter", "mode": "lines+markers", "name": _("gap"), "x": [e["episodes"] for e in episodes],
                  "y": [e["training_gap"] for e in episodes], "line": {"color": BLUE}}],
                {"xaxis": {"title": {"text": _("episodes")}}, "yaxis": {"tickformat": ".1%"}},
            )
        )  # fmt: skip
    matrix = curves.get("confusion_matrix")
    if matrix and matrix.get("matrix"):
        labels = [str(label) for label in matrix.get("labels", [])]
        figures.append(
            _figure(
                "fig-confusion",
                _("Confusion matrix (holdout)"),
                [{"type": "heatmap", "z": matrix["matrix"], "x": labels, "y": labels, "colorscale": "Blues", "showscale": False,
                  "text": matrix["matrix"], "texttemplate": "%{text}"}],
                _confusion_axes(_),
            )
        )  # fmt: skip
    roc = curves.get("roc")
    if roc and roc.get("fpr"):
        figures.append(
            _figure(
                "fig-roc",
                "ROC",
                [
                    {
                        "type": "scatter",
                        "mode": "lines",
                        "name": "ROC",
                        "x": roc["fpr"],
                        "y": roc["tpr"],
                        "line": {"color": BLUE},
                    },
                    {
                        "type": "scatter",
                        "mode": "lines",
                        "name": _("chance"),
                        "x": [0, 1],
                        "y": [0, 1],
                        "line": {"color": GREY, "dash": "dot"},
                    },
                ],
                {"xaxis": {"title": {"text": _("false positive rate")}}, "yaxis": {"title": {"text": _("true positive rate")}}},
            )
        )
    pr = curves.get("pr")
    if pr and pr.get("recall"):
        figures.append(
            _figure(
                "fig-pr",
                _("Precision–recall"),
                [{"type": "scatter", "mode": "lines", "x": pr["recall"], "y": pr["precision"], "line": {"color": ORANGE}}],
                {"xaxis": {"title": {"text": _("recall")}}, "yaxis": {"title": {"text": _("precision")}}},
            )
        )
    residuals = curves.get("residuals")
    if residuals and residuals.get("predicted"):
        errors = residuals.get("residual", residuals.get("residuals"))
        figures.append(
            _figure(
                "fig-residuals",
                _("Residuals (holdout)"),
                [{"type": "scatter", "mode": "markers", "x": residuals["predicted"], "y": errors,
                  "marker": {"color": BLUE, "size": 5, "opacity": 0.6}}],
                {"xaxis": {"title": {"text": _("predicted")}},
                 "yaxis": {"title": {"text": _("actual − predicted")}}},
            )
        )  # fmt: skip
    learning = curves.get("learning")
    if learning and learning.get("train_sizes"):
        data = [
            {"type": "scatter", "mode": "lines+markers", "name": name, "x": learning["train_sizes"], "y": learning[key],
             "error_y": {"type": "data", "array": [s or 0 for s in learning.get(std) or []]}}
            for name, key, std in ((_("training"), "train_scores", "train_std"),
                                   (_("cross-validation"), "test_scores", "test_std"))
            if learning.get(key)
        ]  # fmt: skip
        layout = {"xaxis": {"title": {"text": _("training rows")}}, "yaxis": {"title": {"text": learning.get("scoring", "")}}}
        figures.append(_figure("fig-learning", _("Learning curve"), data, layout))
    if run.importance:
        top = run.importance[:15][::-1]
        figures.append(
            _figure(
                "fig-importance",
                _("Permutation importance (holdout)"),
                [{"type": "bar", "orientation": "h", "x": [i.get("mean") for i in top], "y": [str(i.get("feature")) for i in top],
                  "error_x": {"type": "data", "array": [i.get("std", 0) for i in top]}, "marker": {"color": BLUE}}],
                {"height": max(220, 24 * len(top) + 80), "margin": {"l": 140, "t": 40, "r": 10, "b": 40}},
            )
        )  # fmt: skip
    return figures


COMPARE_COLOURS = (BLUE, ORANGE, "#2b9a66", "#a8326e")


def compare_figures(versions, *, _=_untranslated) -> list[dict]:
    """ROC and PR curves of several versions overlaid, and their confusion matrices side by side."""
    figures = []
    named = [(f"v{v.number}", (v.run.curves if v.run else {}) or {}, COMPARE_COLOURS[i % 4]) for i, v in enumerate(versions)]
    axes = {"fpr": _("false positive rate"), "tpr": _("true positive rate"), "recall": _("recall"), "precision": _("precision")}
    for fid, title, key, x, y in (("cmp-roc", _("ROC (holdout)"), "roc", "fpr", "tpr"),
                                  ("cmp-pr", _("Precision–recall (holdout)"), "pr", "recall", "precision")):  # fmt: skip
        data = [
            {
                "type": "scatter",
                "mode": "lines",
                "name": name,
                "x": curves[key][x],
                "y": curves[key][y],
                "line": {"color": colour},
            }
            for name, curves, colour in named
            if curves.get(key) and curves[key].get(x)
        ]
        if len(data) > 1:
            figures.append(
                _figure(fid, title, data, {"xaxis": {"title": {"text": axes[x]}}, "yaxis": {"title": {"text": axes[y]}}})
            )
    for name, curves, _colour in named:
        matrix = curves.get("confusion_matrix")
        if matrix and matrix.get("matrix"):
            labels = [str(label) for label in matrix.get("labels", [])]
            figures.append(
                _figure(
                    f"cmp-confusion-{name}",
                    _("%(version)s: confusion matrix") % {"version": name},
                    [{"type": "heatmap", "z": matrix["matrix"], "x": labels, "y": labels, "colorscale": "Blues",
                      "showscale": False, "text": matrix["matrix"], "texttemplate": "%{text}"}],
                    _confusion_axes(_),
                )
            )  # fmt: skip
    importance = [
        (name, (v.run.importance if v.run else []) or [], colour) for (name, _c, colour), v in zip(named, versions, strict=True)
    ]
    if sum(1 for _n, items, _c in importance if items) > 1:
        features = []
        for _n, items, _c in importance:
            features += [i["feature"] for i in items[:10] if i["feature"] not in features]
        data = [
            {"type": "bar", "orientation": "h", "name": name, "marker": {"color": colour},
             "y": [str(f) for f in features],
             "x": [next((i["mean"] for i in items if i["feature"] == f), None) for f in features]}
            for name, items, colour in importance if items
        ]  # fmt: skip
        figures.append(
            _figure(
                "cmp-importance", _("Permutation importance"), data, {"barmode": "group", "height": max(260, 40 * len(features))}
            )
        )
    return figures

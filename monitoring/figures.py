"""Plotly figures of the dashboards and of input drift (plain dicts for json_script; static/js/lepton.js draws them).

Pure: no Django import. Titles and labels come in already translated; each builder returns
`{"id": ..., "figure": {...}}` as the other parts' figure builders do.
"""

from __future__ import annotations

from collections.abc import Sequence

PALETTE = ("#2f4aa8", "#d9822b", "#3c9d5d", "#b83b5e", "#7a5cc7", "#2a9cad", "#c9a227", "#5f6b7a")
GREEN, AMBER, RED, GREY = "#3c9d5d", "#c9a227", "#b83b5e", "#9aa3b5"


def _figure(fid: str, title: str, data: list, layout: dict | None = None, height: int = 280) -> dict:
    return {
        "id": fid,
        "figure": {
            "data": data,
            "layout": {
                "title": {"text": title, "font": {"size": 13}},
                "height": height,
                "margin": {"t": 40, "l": 60, "r": 10, "b": 40},
                "legend": {"orientation": "h", "y": -0.2},
                **(layout or {}),
            },
        },
    }


def time_series(
    fid: str,
    title: str,
    x: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    bars: bool = False,
    stacked: bool = False,
    y_title: str = "",
    y_format: str = "",
) -> dict:
    """One line (or bar) per (name, values) over the shared x (ISO times); None values are gaps."""
    data = []
    for k, (name, values) in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        if bars:
            data.append({"type": "bar", "name": name, "x": list(x), "y": list(values), "marker": {"color": colour}})
        else:
            data.append(
                {"type": "scatter", "mode": "lines+markers", "name": name, "x": list(x), "y": list(values),
                 "line": {"color": colour}, "connectgaps": False}
            )  # fmt: skip
    layout = {"xaxis": {"type": "date"}, "yaxis": {"title": {"text": y_title}, "rangemode": "tozero"}}
    if y_format:
        layout["yaxis"]["tickformat"] = y_format
    if bars and stacked:
        layout["barmode"] = "stack"
    return _figure(fid, title, data, layout)


def usage_bars(fid: str, title: str, names: Sequence[str], used: Sequence[float], limits: Sequence[float], unit: str) -> dict:
    """Horizontal bars of each name's use as a share of its limit, coloured green / amber (≥ 80 %) / red (≥ 100 %)."""
    shares = [(u / limit if limit else (1.0 if u else 0.0)) for u, limit in zip(used, limits, strict=True)]
    colours = [RED if s >= 1 else AMBER if s >= 0.8 else GREEN for s in shares]
    text = [f"{u:,.0f} / {limit:,.0f} {unit}" for u, limit in zip(used, limits, strict=True)]
    data = [
        {"type": "bar", "orientation": "h", "y": list(names), "x": shares, "text": text, "textposition": "auto",
         "marker": {"color": colours}, "hovertemplate": "%{y}: %{text}<extra></extra>"}
    ]  # fmt: skip
    layout = {"xaxis": {"tickformat": ".0%", "rangemode": "tozero"}, "margin": {"t": 40, "l": 140, "r": 10, "b": 40}}
    return _figure(fid, title, data, layout, height=max(160, 60 + 36 * len(names)))


def bars(fid: str, title: str, names: Sequence[str], values: Sequence[float], *, y_title: str = "", y_format: str = "") -> dict:
    data = [{"type": "bar", "x": list(names), "y": list(values), "marker": {"color": PALETTE[0]}}]
    layout = {"yaxis": {"title": {"text": y_title}, "rangemode": "tozero"}}
    if y_format:
        layout["yaxis"]["tickformat"] = y_format
    return _figure(fid, title, data, layout)


def histogram(fid: str, title: str, edges: Sequence[float], counts: Sequence[int], *, x_title: str = "") -> dict:
    """Bars between consecutive edges (len(edges) == len(counts) + 1), as a profile stores them."""
    mids = [(a + b) / 2 for a, b in zip(edges, edges[1:], strict=False)]
    widths = [b - a for a, b in zip(edges, edges[1:], strict=False)]
    data = [{"type": "bar", "x": mids, "y": list(counts), "width": widths, "marker": {"color": PALETTE[0]}}]
    return _figure(fid, title, data, {"xaxis": {"title": {"text": x_title}}, "bargap": 0.02}, height=220)


def percentile(counts: Sequence[int], bounds: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) of values counted in buckets (counts[k]: values ≤ bounds[k] and above bounds[k-1];
    the last count is above the last bound). Linear inside a bucket; the open last bucket answers its lower
    bound. None without values."""
    total = sum(counts)
    if not total:
        return None
    rank = q * total
    seen = 0
    for k, n in enumerate(counts):
        if n and seen + n >= rank:
            if k >= len(bounds):
                return float(bounds[-1])
            low = bounds[k - 1] if k else 0.0
            return low + (bounds[k] - low) * max(0.0, rank - seen) / n
        seen += n
    return float(bounds[-1])


def distribution(fid: str, title: str, outputs: dict, *, x_title: str = "", y_title: str = "") -> dict | None:
    """Bars of a prediction distribution ({"kind": "classes" | "numbers", "counts": {key: n}}); None when empty.

    Classes are ordered by count (most frequent first), numbers by value (their keys are numbers
    written with two significant digits, as PredictionRollup.outputs keeps them).
    """
    counts = (outputs or {}).get("counts") or {}
    if not counts:
        return None
    if outputs.get("kind") == "numbers":
        items = sorted(counts.items(), key=lambda item: _as_number(item[0]))
        x = [_as_number(k) for k, _n in items]
        xaxis = {"title": {"text": x_title}, "type": "linear"}
    else:
        items = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        x = [k for k, _n in items]
        xaxis = {"title": {"text": x_title}, "type": "category"}
    data = [{"type": "bar", "x": x, "y": [n for _k, n in items], "marker": {"color": PALETTE[1]}}]
    return _figure(fid, title, data, {"xaxis": xaxis, "yaxis": {"title": {"text": y_title}, "rangemode": "tozero"}})


def _as_number(key: str) -> float:
    try:
        return float(key)
    except ValueError:
        return float("nan")


def performance(fid: str, title: str, x: Sequence[str], perf: dict, names: dict) -> dict | None:
    """Real performance per bucket: accuracy (classification) or MAE and RMSE (regression); None without feedback.

    `perf` is monitoring.selectors' {kind, accuracy, mae, rmse, rows}; `names` the translated
    series names {"accuracy", "mae", "rmse", "rows"}. The rows scored are drawn as light bars
    on a second axis, so a point made of one row is told from one made of thousands.
    """
    kind = perf.get("kind")
    if kind not in ("classification", "regression") or not any(perf.get("rows") or []):
        return None
    if kind == "classification":
        figure = time_series(fid, title, x, [(names["accuracy"], perf["accuracy"])], y_format=".0%")
        figure["figure"]["layout"]["yaxis"]["range"] = [0, 1]
    else:
        figure = time_series(fid, title, x, [(names["mae"], perf["mae"]), (names["rmse"], perf["rmse"])])
    figure["figure"]["data"].append(
        {"type": "bar", "name": names["rows"], "x": list(x), "y": list(perf["rows"]), "yaxis": "y2",
         "marker": {"color": GREY}, "opacity": 0.35}
    )  # fmt: skip
    figure["figure"]["layout"]["yaxis2"] = {"overlaying": "y", "side": "right", "rangemode": "tozero", "showgrid": False}
    return figure


# --- input drift ---------------------------------------------------------------------------

DRIFT_COLOURS = {"stable": "#2e8540", "moderate": "#d9822b", "significant": "#c0392b"}
# Lines drawn over time at most (the features with the largest latest PSI), so the chart stays legible.
MAX_LINES = 8


def _thresholds(moderate: float, significant: float) -> list[dict]:
    return [
        {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": value, "y1": value,
         "line": {"color": DRIFT_COLOURS[name], "dash": "dash", "width": 1}}
        for name, value in (("moderate", moderate), ("significant", significant))
    ]  # fmt: skip


def _drift_figure(fid: str, title: str, data: list, layout: dict) -> dict:
    return _figure(fid, title, data, {"margin": {"t": 40, "l": 50, "r": 10, "b": 80}, **layout}, height=300)


def psi_bars(
    features: list[dict], *, moderate: float, significant: float, title: str = "PSI per feature", fid: str = "fig-drift-psi"
) -> dict | None:
    """One bar per feature with a PSI, coloured by its status, the two thresholds dashed; None without any."""
    rows = [f for f in features if f.get("psi") is not None]
    if not rows:
        return None
    data = [
        {
            "type": "bar",
            "x": [f["feature"] for f in rows],
            "y": [f["psi"] for f in rows],
            "marker": {"color": [DRIFT_COLOURS.get(f.get("status", ""), GREY) for f in rows]},
            "text": [f.get("status_label") or f.get("status", "") for f in rows],
            "hovertemplate": "%{x}: PSI %{y:.3f} (%{text})<extra></extra>",
            "textposition": "none",
        }
    ]
    top = max(max(f["psi"] for f in rows), significant) * 1.1
    layout = {"shapes": _thresholds(moderate, significant), "yaxis": {"title": {"text": "PSI"}, "range": [0, top]}}
    return _drift_figure(fid, title, data, layout)


def psi_over_time(
    history: dict[str, list[dict]],
    *,
    moderate: float,
    significant: float,
    title: str = "PSI over time",
    fid: str = "fig-drift-history",
) -> dict | None:
    """PSI per window end, one line per feature (the MAX_LINES largest at the last window); None without points.

    `history` is {feature: [{window_end (datetime or ISO text), psi (None: a gap)}]}, oldest first.
    """
    series = {name: points for name, points in history.items() if any(p.get("psi") is not None for p in points)}
    if not series:
        return None

    def last_psi(points: list[dict]) -> float:
        known = [p["psi"] for p in points if p.get("psi") is not None]
        return known[-1] if known else 0.0

    chosen = sorted(series, key=lambda name: (-last_psi(series[name]), name))[:MAX_LINES]
    data = []
    for name in chosen:
        points = series[name]
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": name,
                "x": [_iso(p["window_end"]) for p in points],
                "y": [p.get("psi") for p in points],
            }
        )
    layout = {"shapes": _thresholds(moderate, significant), "yaxis": {"title": {"text": "PSI"}, "rangemode": "tozero"}}
    return _drift_figure(fid, title, data, layout)


def _iso(value) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)

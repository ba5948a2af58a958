"""Plotly figures of input drift (plain dicts for json_script; static/js/lepton.js draws them).

No Django: the caller passes the rows (monitoring.selectors.model_drift's) and the words.
"""

from __future__ import annotations

COLOURS = {"stable": "#2e8540", "moderate": "#d9822b", "significant": "#c0392b"}
GREY = "#9aa3b5"
# Lines drawn over time at most (the features with the largest latest PSI), so the chart stays legible.
MAX_LINES = 8


def _thresholds(moderate: float, significant: float) -> list[dict]:
    return [
        {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": value, "y1": value,
         "line": {"color": COLOURS[name], "dash": "dash", "width": 1}}
        for name, value in (("moderate", moderate), ("significant", significant))
    ]  # fmt: skip


def _figure(fid: str, title: str, data: list, layout: dict) -> dict:
    return {
        "id": fid,
        "figure": {
            "data": data,
            "layout": {
                "title": {"text": title, "font": {"size": 13}},
                "height": 300,
                "margin": {"t": 40, "l": 50, "r": 10, "b": 80},
                **layout,
            },
        },
    }


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
            "marker": {"color": [COLOURS.get(f.get("status", ""), GREY) for f in rows]},
            "text": [f.get("status_label") or f.get("status", "") for f in rows],
            "hovertemplate": "%{x}: PSI %{y:.3f} (%{text})<extra></extra>",
            "textposition": "none",
        }
    ]
    top = max(max(f["psi"] for f in rows), significant) * 1.1
    layout = {"shapes": _thresholds(moderate, significant), "yaxis": {"title": {"text": "PSI"}, "range": [0, top]}}
    return _figure(fid, title, data, layout)


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
    return _figure(fid, title, data, layout)


def _iso(value) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)

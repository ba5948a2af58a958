"""The drift figures: plain dicts, bars coloured by status, thresholds drawn, lines bounded."""

from datetime import UTC, datetime, timedelta

from monitoring import figures


def test_psi_bars_colour_each_feature_by_its_status_and_draw_both_thresholds():
    features = [
        {"feature": "温度", "psi": 0.4, "status": "significant", "status_label": "Significant drift"},
        {"feature": "pressure", "psi": 0.12, "status": "moderate"},
        {"feature": "line", "psi": 0.01, "status": "stable"},
        {"feature": "when", "psi": None, "status": "skipped"},
    ]
    built = figures.psi_bars(features, moderate=0.1, significant=0.25, title="PSI")
    bar = built["figure"]["data"][0]
    assert bar["x"] == ["温度", "pressure", "line"] and bar["y"] == [0.4, 0.12, 0.01]
    assert bar["marker"]["color"] == [
        figures.DRIFT_COLOURS["significant"],
        figures.DRIFT_COLOURS["moderate"],
        figures.DRIFT_COLOURS["stable"],
    ]
    assert [s["y0"] for s in built["figure"]["layout"]["shapes"]] == [0.1, 0.25]
    assert built["figure"]["layout"]["yaxis"]["range"][1] >= 0.4
    assert built["id"] == "fig-drift-psi" and built["figure"]["layout"]["title"]["text"] == "PSI"


def test_psi_bars_without_any_psi_give_no_figure():
    assert figures.psi_bars([{"feature": "x", "psi": None, "status": "insufficient"}], moderate=0.1, significant=0.25) is None


def test_psi_over_time_draws_one_line_per_feature_and_keeps_the_largest():
    start = datetime(2025, 1, 1, tzinfo=UTC)
    history = {
        f"f{i}": [{"window_end": start + timedelta(hours=h), "psi": i / 100 + h / 1000} for h in range(3)] for i in range(12)
    }
    history["gap"] = [{"window_end": start, "psi": None}, {"window_end": start + timedelta(hours=1), "psi": 0.5}]
    history["empty"] = [{"window_end": start, "psi": None}]
    built = figures.psi_over_time(history, moderate=0.1, significant=0.25)
    lines = built["figure"]["data"]
    assert len(lines) == figures.MAX_LINES
    assert lines[0]["name"] == "gap" and lines[0]["y"] == [None, 0.5]
    assert [line["name"] for line in lines[1:]] == [f"f{i}" for i in range(11, 4, -1)]
    assert lines[1]["x"][0] == "2025-01-01T00:00:00+00:00"
    assert figures.psi_over_time({"empty": history["empty"]}, moderate=0.1, significant=0.25) is None

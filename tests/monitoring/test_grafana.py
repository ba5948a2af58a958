"""The sample Grafana dashboard in docs/grafana/: well formed, and every metric it queries is one /metrics exports."""

import json
import re
from pathlib import Path

from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "lepton.json"
METRIC = re.compile(r"\b((?:lepton|django)_[a-z0-9_]+)")
SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_created")


def _dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def _targets(dashboard: dict) -> list[dict]:
    return [target for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_dashboard_is_well_formed():
    dashboard = _dashboard()
    assert dashboard["uid"] and dashboard["title"] == "Lepton"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        place = panel["gridPos"]
        assert 0 <= place["x"] and place["x"] + place["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
    names = {variable["name"] for variable in dashboard["templating"]["list"]}
    assert {"datasource", "department"} <= names
    for target in _targets(dashboard):
        assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
        for variable in re.findall(r"\$(\w+)", target["expr"]):
            assert variable in names, target["expr"]


def test_every_queried_metric_is_exported(db):
    # One request first: django-prometheus creates its request metrics with its middleware.
    Client().get("/healthz")
    text = Client().get("/metrics").content.decode()
    exported = set()
    for family in text_string_to_metric_families(text):
        exported.add(family.name)
        exported.update(sample.name for sample in family.samples)
    queried = {name for target in _targets(_dashboard()) for name in METRIC.findall(target["expr"])}
    assert queried, "the dashboard queries no Lepton metric"

    def known(name: str) -> bool:
        if name in exported:
            return True
        return any(name.endswith(suffix) and name.removesuffix(suffix) in exported for suffix in SUFFIXES)

    missing = sorted(name for name in queried if not known(name))
    assert not missing, f"the Grafana dashboard queries metrics /metrics does not export: {missing}"

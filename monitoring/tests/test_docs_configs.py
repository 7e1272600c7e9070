"""The Prometheus configuration and Grafana dashboard in docs/monitoring/ stay usable: they
parse, and the scrape configuration covers every service of the fleet table."""

import json
from pathlib import Path

import yaml

from fedimpute_shared.fleet import FLEET

DOCS = Path(__file__).resolve().parents[2] / "docs" / "monitoring"


def test_prometheus_scrapes_every_fleet_service():
    config = yaml.safe_load((DOCS / "prometheus.yml").read_text())
    targets = {
        t
        for job in config["scrape_configs"]
        for group in job["static_configs"]
        for t in group["targets"]
    }
    assert targets == {f"{s.name}:{s.port}" for s in FLEET}
    for name in config["rule_files"]:
        rules = yaml.safe_load((DOCS / name).read_text())
        assert all(rule["expr"] for group in rules["groups"] for rule in group["rules"])


def test_grafana_dashboard_is_valid_json_with_queries():
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    assert dashboard["uid"] == "fedimpute-platform"
    assert all(
        panel["targets"] and all(t["expr"] for t in panel["targets"])
        for panel in dashboard["panels"]
    )

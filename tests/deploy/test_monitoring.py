"""The alert rules and the Grafana dashboard against PromQL and against the series the code exports.

Every expression is parsed by a PromQL parser (promql-parser, the Rust parser Prometheus-compatible
tools use); every `switchboard_*` series it selects must be one a real pod's `/metrics` exports (a
pod is started and scraped; a labelled family with no child yet counts by its declared name), with
label values the pod actually exposes where the expression names one exactly; `switchboard:*` names
must be recorded by a rule in the same file; anything else must be on the explicit allow-list of
kube-state-metrics and cAdvisor series.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import promql_parser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from telephony.app import create_app
from telephony.server import BackgroundServer
from tests.support.settings import make_settings

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
ALERTS = MONITORING / "alerts.yaml"
DASHBOARD = MONITORING / "switchboard-dashboard.json"

EXTERNAL = {
    "kube_pod_container_status_last_terminated_reason": "kube-state-metrics",
    "kube_pod_container_status_restarts_total": "kube-state-metrics",
    "kube_pod_status_ready": "kube-state-metrics",
    "kube_deployment_status_replicas_available": "kube-state-metrics",
    "container_oom_events_total": "cAdvisor (kubelet)",
}
"""Series from outside the pod the rules may use, and who exports them."""
TARGET_LABELS = {"namespace", "pod", "container", "instance", "job", "service", "endpoint", "node"}
"""Labels Prometheus attaches from the scrape target, not from the pod's own series."""
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created")}
_WORDS = re.compile(r"^[A-Za-z0-9_.]+(\|[A-Za-z0-9_.]+)*$")
_SEVERITIES = {"critical", "warning", "info"}


class Exported:
    """What a started pod's `/metrics` exports: sample names with their label sets, and declared families."""

    def __init__(self, text: str, declared: set[str]) -> None:
        self.samples: dict[str, list[dict[str, str]]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.samples.setdefault(sample.name, []).append(dict(sample.labels))
        self.names = set(self.samples) | declared

    def problems(self, name: str, matchers: list[Any]) -> list[str]:
        if name not in self.names:
            return [f"{name} is not exported by /metrics"]
        seen = self.samples.get(name)
        if not seen:
            return []  # a labelled family with no child yet: its labels cannot be checked here
        found = []
        for matcher in matchers:
            label, value, op = matcher.name, matcher.value, str(matcher.op)
            if label == "__name__" or label in TARGET_LABELS:
                continue
            values = {labels.get(label) for labels in seen}
            if values == {None}:
                found.append(f"{name} has no label {label!r}")
            elif op.endswith("Equal") and "Not" not in op and value not in values:
                found.append(f"{name}{{{label}={value!r}}} is never exported (have {sorted(map(str, values))})")
            elif op.endswith("Re") and "Not" not in op and _WORDS.match(value):
                missing = [v for v in value.split("|") if v not in values]
                if missing:
                    found.append(f"{name}{{{label}=~{value!r}}}: {missing} never exported")
        return found


@pytest.fixture(scope="module")
def exported() -> Exported:
    settings = make_settings()
    app = create_app(settings)
    with BackgroundServer(app, settings) as url:
        text = httpx.get(url + "/metrics").text
        registry = app.state.pod.metrics.registry
    declared = set()
    for family in registry.collect():
        declared.add(family.name)
        declared.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
    return Exported(text, declared)


def selectors(expr: str) -> list[tuple[str, list[Any]]]:
    """(metric name, label matchers) of every series `expr` selects."""
    found: list[tuple[str, list[Any]]] = []

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            matchers = list(node.matchers.matchers)
            name = node.name or next((m.value for m in matchers if m.name == "__name__"), None)
            assert name, f"a selector without a metric name in {expr!r}"
            found.append((name, matchers))
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def check(expr: str, exported: Exported, recorded: set[str]) -> list[str]:
    problems = []
    for name, matchers in selectors(expr):
        if name.startswith("switchboard_"):
            problems += exported.problems(name, matchers)
        elif name.startswith("switchboard:"):
            if name not in recorded:
                problems.append(f"{name} is not recorded by any rule")
        elif name not in EXTERNAL:
            problems.append(f"{name} is neither exported by the pod nor on the allow-list")
    return problems


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    assert document["apiVersion"] == "monitoring.coreos.com/v1" and document["kind"] == "PrometheusRule"
    return [rule for group in document["spec"]["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_every_rule_is_well_formed_and_parses() -> None:
    found = rules()
    alerts = [rule for rule in found if "alert" in rule]
    assert len(alerts) >= 10
    names = [rule.get("alert") or rule.get("record") for rule in found]
    assert len(names) == len(set(names)), "duplicate rule names"
    for rule in found:
        assert ("alert" in rule) != ("record" in rule), rule
        promql_parser.parse(rule["expr"])  # raises ValueError on bad PromQL
        if "alert" in rule:
            assert rule["labels"]["severity"] in _SEVERITIES, rule["alert"]
            assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
            if "for" in rule:
                promql_parser.parse_duration(rule["for"])


def test_the_rules_cover_what_on_call_needs_paged_for() -> None:
    exprs = {rule["alert"]: rule["expr"] for rule in rules() if "alert" in rule}
    text = "\n".join(exprs.values())
    for needed in (
        'reason="OOMKilled"',  # OOM kills, as kube-state-metrics sees them
        "container_oom_events_total",  # and cAdvisor
        'switchboard_memory_guard_state="hard"',
        "switchboard_calls_shed_total",
        "kube_pod_status_ready",  # readiness flapping
        "switchboard:turn_slow_ratio:rate1h",  # the latency SLO's burn rate
        'kind="speech_unavailable"',  # speech outages
    ):
        assert needed in text, needed


def test_every_rule_names_only_series_that_exist(exported: Exported) -> None:
    found = rules()
    recorded = {rule["record"] for rule in found if "record" in rule}
    problems = [
        f"{rule.get('alert') or rule['record']}: {p}" for rule in found for p in check(rule["expr"], exported, recorded)
    ]
    assert problems == []


def test_every_dashboard_query_parses_and_names_only_series_that_exist(exported: Exported) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)) and dashboard["uid"] == "switchboard"
    queries = dashboard_exprs()
    assert len(queries) >= 20
    problems = [f"{title}: {p}" for title, expr in queries for p in check(expr, exported, set())]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            metric = re.fullmatch(r"label_values\((\w+), *\w+\)", variable["definition"])
            assert metric is not None, variable["definition"]
            problems += check(metric.group(1), exported, set())
    assert problems == []


def test_a_series_the_pod_does_not_export_is_caught(exported: Exported) -> None:
    # The check itself, on names and label values that do not exist, and on an unknown outside series.
    assert check("rate(switchboard_calls_dropped_total[5m])", exported, set()) == [
        "switchboard_calls_dropped_total is not exported by /metrics"
    ]
    assert check('switchboard_memory_guard_state{switchboard_memory_guard_state="melting"}', exported, set())
    assert check('sum(rate(switchboard_engine_failures_total{kind=~"speech_failed|gpu_fire"}[5m]))', exported, set())
    assert check("switchboard:nothing:rate5m", exported, set()) == [
        "switchboard:nothing:rate5m is not recorded by any rule"
    ]
    assert check("node_load1", exported, set()) == ["node_load1 is neither exported by the pod nor on the allow-list"]
    with pytest.raises(ValueError):
        promql_parser.parse("sum(rate(switchboard_calls_shed_total[5m])")

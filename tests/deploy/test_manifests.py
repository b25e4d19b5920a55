"""The deployment files against Kubernetes' schemas and against the code they configure.

No cluster or Docker daemon runs here: every manifest is validated offline against the schemas
kubernetes-validate carries for `K8S_VERSION` (strict: unknown fields are errors), and then checked
for what a schema cannot know: the variables it sets are settings, the probe and preStop paths
are routes, the memory limit is the guard's, the grace period outlasts a call.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from starlette.routing import Route

from agents.config import AgentConfig
from telephony.app import create_app
from telephony.cli.main import _parser
from telephony.pod_health.metrics import Metrics
from telephony.settings import Settings
from tests.support.settings import make_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
K8S_VERSION = "1.33"
NOT_OBJECTS = {"kustomization.yaml", "prometheus-adapter-values.yaml"}
"""YAML files there that are not Kubernetes objects (kustomize's own file; Helm values)."""


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifests() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        if path.name not in NOT_OBJECTS:
            found += [(f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc) for doc in documents(path)]
    return found


OBJECTS = manifests()


def objects(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in OBJECTS if doc["kind"] == kind}


def containers() -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, container)
        for name, deployment in objects("Deployment").items()
        for container in deployment["spec"]["template"]["spec"]["containers"]
    ]


def config_map_env() -> dict[str, str]:
    return objects("ConfigMap")["switchboard-config"]["data"]


CALL_POD = objects("Deployment")["switchboard"]
CALL_CONTAINER = CALL_POD["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize(("name", "doc"), OBJECTS, ids=[name for name, _ in OBJECTS])
def test_every_manifest_is_valid_for_kubernetes(name: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_kustomization_lists_every_manifest_but_the_example_secret() -> None:
    [kustomization] = documents(KUBERNETES / "kustomization.yaml")
    listed = set(kustomization["resources"])
    present = {p.name for p in KUBERNETES.glob("*.yaml")} - NOT_OBJECTS - {"secret.example.yaml"}
    assert listed == present
    [image] = kustomization["images"]
    assert {c["image"] for _, c in containers() if c["name"] != "vllm"} == {image["name"]}


def switchboard_variables() -> list[str]:
    names = [key for key in config_map_env() if key.startswith("SWITCHBOARD_")]
    for _, container in containers():
        names += [e["name"] for e in container.get("env", []) if e["name"].startswith("SWITCHBOARD_")]
    compose = documents(DEPLOY / "compose.yaml")[0]
    for service in compose["services"].values():
        names += [k for k in service.get("environment", {}) if k.startswith("SWITCHBOARD_")]
    names += re.findall(r"ENV[^\n]*?\b(SWITCHBOARD_[A-Z_]+)=", (DEPLOY / "Dockerfile").read_text())
    names += re.findall(r"(SWITCHBOARD_[A-Z_]+)=", (DEPLOY / "Dockerfile").read_text())
    return names


def test_every_variable_the_deployment_sets_is_a_setting_and_valid() -> None:
    names = switchboard_variables()
    assert len(names) > 30
    unknown = sorted({n for n in names if n.removeprefix("SWITCHBOARD_").lower() not in Settings.model_fields})
    assert unknown == []
    # The values parse as the settings they name (the secrets are given, as the Secret would).
    values = {k.removeprefix("SWITCHBOARD_").lower(): v for k, v in config_map_env().items()}
    settings = Settings(twilio_auth_token="x", **values)  # type: ignore[arg-type]
    assert settings.stt_backend == settings.tts_backend == "remote"


def test_the_secret_supplies_every_key_the_pods_read() -> None:
    [secret] = documents(KUBERNETES / "secret.example.yaml")
    kubernetes_validate.validate(secret, K8S_VERSION, strict=True)
    for _, container in containers():
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
    keys = {e["name"] for e in CALL_CONTAINER["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert {"SWITCHBOARD_MONGODB_URI", "SWITCHBOARD_TWILIO_AUTH_TOKEN"} <= keys


def routes() -> dict[str, set[str]]:
    app = create_app(make_settings())
    return {r.path: set(r.methods or ()) for r in app.routes if isinstance(r, Route)}


def test_probes_and_the_prestop_hook_reach_the_guards_endpoints() -> None:
    paths = routes()
    port = int(config_map_env()["SWITCHBOARD_PORT"])
    [container_port] = CALL_CONTAINER["ports"]
    assert container_port["containerPort"] == port
    probes = {kind: CALL_CONTAINER[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == "/healthz"
    for probe in probes.values():
        assert "GET" in paths[probe["path"]] and probe["port"] == container_port["name"]
    # preStop: `switchboard drain`, a CLI command that POSTs /drain on the pod's own port.
    command = CALL_CONTAINER["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "switchboard"
    args = _parser().parse_args(command[1:])
    assert args.command == "drain"
    assert "POST" in paths["/drain"]
    assert args.url.endswith(":8000") or args.url.endswith(f":{port}")


def test_one_failed_readiness_probe_does_not_take_a_call_pod_out() -> None:
    """A database blip or a slow probe under load must not turn every pod unready at once; draining
    and a full pod still take effect within a few seconds (and the webhook refuses meanwhile)."""
    probe = CALL_CONTAINER["readinessProbe"]
    assert probe["failureThreshold"] > 1
    assert probe["failureThreshold"] * probe["periodSeconds"] <= 10
    timeout_s = float(config_map_env().get("SWITCHBOARD_READINESS_CHECK_TIMEOUT_SECONDS", 2.0))
    assert timeout_s < probe["timeoutSeconds"]  # /readyz answers (unready) before the kubelet gives up on it


def test_the_memory_limit_is_the_guards_budget_and_requested_whole() -> None:
    resources = CALL_CONTAINER["resources"]
    budget = Settings.model_fields["memory_limit_bytes"].default
    assert resources["limits"]["memory"] == "1Gi" == f"{budget // (1 << 30)}Gi"
    assert resources["requests"]["memory"] == resources["limits"]["memory"]  # never evicted for overcommit
    compose = documents(DEPLOY / "compose.yaml")[0]
    assert compose["services"]["switchboard"]["mem_limit"] == "1g"


def test_the_grace_period_outlasts_the_longest_call_and_the_drain() -> None:
    grace = CALL_POD["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    drain = float(
        config_map_env().get(
            "SWITCHBOARD_DRAIN_TIMEOUT_SECONDS", Settings.model_fields["drain_timeout_seconds"].default
        )
    )
    agents = AgentConfig.model_fields["max_call_seconds"].default
    configured = [
        a.get("max_call_seconds", agents)
        for a in yaml.safe_load(objects("ConfigMap")["switchboard-agents"]["data"]["agents.json"])
    ]
    assert grace > drain and grace > max([agents, *configured])
    compose = documents(DEPLOY / "compose.yaml")[0]
    assert int(compose["services"]["switchboard"]["stop_grace_period"].removesuffix("s")) == grace
    # The ingress lets a WebSocket sit idle longer than a call can last.
    annotations = objects("Ingress")["switchboard"]["metadata"]["annotations"]
    for key in ("nginx.ingress.kubernetes.io/proxy-read-timeout", "nginx.ingress.kubernetes.io/proxy-send-timeout"):
        assert int(annotations[key]) > max([agents, *configured])
    # A burst of handshakes is cut at the ingress, before uvicorn spends CPU on it (issue 15).
    assert 0 < int(annotations["nginx.ingress.kubernetes.io/limit-rps"]) <= 100


def test_services_select_their_pods_and_the_ingress_exposes_only_twilio() -> None:
    deployments = objects("Deployment")
    for name, service in objects("Service").items():
        selected = [
            d for d in deployments.values()
            if service["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]  # fmt: skip
        assert len(selected) == 1, name
        ports = {p["name"] for c in selected[0]["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports
    ingress = objects("Ingress")["switchboard"]
    [rule] = ingress["spec"]["rules"]
    assert [(p["path"], p["backend"]["service"]["name"]) for p in rule["http"]["paths"]] == [("/twilio", "switchboard")]
    assert all(path.startswith("/twilio") for path in routes() if path.startswith("/twilio"))
    pdb = objects("PodDisruptionBudget")["switchboard"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= CALL_POD["spec"]["template"]["metadata"]["labels"].items()


def test_the_pods_reach_the_speech_service_and_vllm_by_their_services() -> None:
    env = config_map_env()
    services = objects("Service")
    for variable, service in (("SWITCHBOARD_SPEECH_URL", "switchboard-speech"), ("SWITCHBOARD_LLM_BASE_URL", "vllm")):
        match = re.fullmatch(r"http://([a-z0-9-]+):(\d+)/v1", env[variable])
        assert match and match.group(1) == service
        assert int(match.group(2)) in {p["port"] for p in services[service]["spec"]["ports"]}
    speech = objects("Deployment")["switchboard-speech"]["spec"]["template"]["spec"]
    [container] = speech["containers"]
    assert container["args"] == ["speech"] and _parser().parse_args(container["args"]).command == "speech"
    speech_env = {e["name"]: e.get("value") for e in container["env"]}
    assert int(speech_env["SWITCHBOARD_SPEECH_PORT"]) == container["ports"][0]["containerPort"] == 8002
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1


def secret_ref(container: dict[str, Any], variable: str) -> str:
    """The Secret key `variable` is read from in `container` (fails if it is not read from one)."""
    [env] = [e for e in container["env"] if e["name"] == variable]
    return str(env["valueFrom"]["secretKeyRef"]["key"])


def test_the_speech_service_and_vllm_demand_the_keys_the_pods_send() -> None:
    """Neither model service is open to whatever else runs in the cluster: each checks a key from
    the Secret, and the call pods send that same key."""
    [speech] = objects("Deployment")["switchboard-speech"]["spec"]["template"]["spec"]["containers"]
    [vllm] = objects("Deployment")["vllm"]["spec"]["template"]["spec"]["containers"]
    speech_key = secret_ref(speech, "SWITCHBOARD_SPEECH_SERVER_API_KEYS")
    assert secret_ref(CALL_CONTAINER, "SWITCHBOARD_SPEECH_API_KEY") == speech_key
    assert "SWITCHBOARD_SPEECH_ALLOW_UNAUTHENTICATED" not in {e["name"] for e in speech["env"]}
    # vLLM: `--api-key` from the Secret (Kubernetes expands `$(VAR)` in args), the pods send it.
    assert "--api-key=$(VLLM_API_KEY)" in vllm["args"]
    assert secret_ref(vllm, "VLLM_API_KEY") == secret_ref(CALL_CONTAINER, "SWITCHBOARD_LLM_API_KEY")
    [ref] = [e["valueFrom"]["secretKeyRef"] for e in vllm["env"] if e["name"] == "VLLM_API_KEY"]
    assert not ref.get("optional", False)


def test_vllm_runs_with_tool_calling_and_prefix_caching() -> None:
    [container] = objects("Deployment")["vllm"]["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    model = next(a.split("=", 1)[1] for a in args if a.startswith("--model="))
    assert model == config_map_env()["SWITCHBOARD_LLM_MODEL"]
    assert "--enable-auto-tool-choice" in args and "--enable-prefix-caching" in args
    assert "--tool-call-parser=hermes" in args  # Qwen2.5's tool-call format
    compose = documents(DEPLOY / "compose.yaml")[0]["services"]["vllm"]["command"]
    assert {"--enable-auto-tool-choice", "--tool-call-parser=hermes", "--enable-prefix-caching"} <= set(compose)


def test_autoscaling_follows_active_calls_per_pod() -> None:
    hpa = objects("HorizontalPodAutoscaler")["switchboard"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "switchboard"}
    [metric] = hpa["metrics"]
    assert metric["type"] == "Pods" and metric["pods"]["metric"]["name"] == "switchboard_active_calls"
    target = int(metric["pods"]["target"]["averageValue"])
    assert 0 < target < int(config_map_env()["SWITCHBOARD_MAX_CONCURRENT_CALLS"])
    assert "switchboard_active_calls" in Metrics().registry._names_to_collectors  # the pod's metrics
    adapter = documents(KUBERNETES / "prometheus-adapter-values.yaml")[0]
    assert "switchboard_active_calls" in adapter["rules"]["custom"][0]["seriesQuery"]


def test_the_image_is_multi_stage_slim_and_non_root() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)(?: AS (\w+))?", dockerfile, re.MULTILINE)
    assert len(stages) >= 3 and stages[-1][1] == "runtime" and "slim" in stages[-1][0]
    runtime = dockerfile.split("AS runtime", 1)[1]
    assert re.search(r"^USER 10001", runtime, re.MULTILINE)
    assert "BAKE_MODELS" in dockerfile and 'ENTRYPOINT ["switchboard"]' in runtime
    for _, deployment in objects("Deployment").items():
        if deployment["metadata"]["name"] != "vllm":
            assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 10001
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text()
    for package in ("agents", "telephony", "tools", "db"):
        assert f"COPY {package} ./{package}" in dockerfile and f"!{package}/**" in ignore


def test_the_schema_check_is_live() -> None:
    """A misspelt field and a wrong type are caught: the validation above is not a no-op."""
    pdb = dict(objects("PodDisruptionBudget")["switchboard"])
    pdb["spec"] = {**pdb["spec"], "maxUnavailabel": 1}
    with pytest.raises(kubernetes_validate.ValidationError, match="maxUnavailabel"):
        kubernetes_validate.validate(pdb, K8S_VERSION, strict=True)


def test_the_drain_is_token_protected_in_the_manifests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind a sidecar proxy every in-mesh client reaches the pod from loopback: only the token,
    from the Secret (required: a pod without it does not start), lets the preStop hook drain."""
    [ref] = [e["valueFrom"]["secretKeyRef"] for e in CALL_CONTAINER["env"] if e["name"] == "SWITCHBOARD_DRAIN_TOKEN"]
    assert ref["key"] == "drain-token" and not ref.get("optional", False)
    [secret] = documents(KUBERNETES / "secret.example.yaml")
    assert secret["stringData"]["drain-token"]
    monkeypatch.setenv("SWITCHBOARD_DRAIN_TOKEN", "from-the-secret")
    command = CALL_CONTAINER["lifecycle"]["preStop"]["exec"]["command"]
    args = _parser().parse_args(command[1:])
    assert args.command == "drain" and args.token == "from-the-secret"  # the hook sends the container's token
    assert "POST" in routes()["/undrain"]

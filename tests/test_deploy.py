"""Checks of the deployment files that run here, without a Docker engine or a cluster.

- every JSON and YAML file under deploy/grafana, deploy/compose and deploy/k8s parses;
- deploy/compose/compose.yaml validates against the Compose Specification JSON schema
  (vendored: deploy/compose/compose-spec.json, Apache-2.0, compose-spec.LICENSE);
- every Kubernetes manifest validates against the Kubernetes JSON schemas shipped by the
  `kubernetes-validate` package (strict: unknown fields are errors);
- every metric name the Grafana dashboard queries exists in the worker's /metrics output;
- with the binaries installed: `amtool check-config`, `promtool check config --syntax-only`
  and `kubectl kustomize` on the compose / k8s files.

What none of this does: pull an image, build the Dockerfile, start the stack or apply the
manifests to a cluster (docs/OPERATIONS.md, "What was checked").
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from core.metrics import Metrics

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "territory-dashboard.json"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.30"
ALERTS = [
    "TerritoryImbalanceAboveBand",
    "TerritoryWorkerDown",
    "TerritoryConsumerLagGrowing",
    "TerritoryDeadLetterRateHigh",
    "TerritoryAlertSinkFailing",
    "TerritoryPlannerErrors",
    "TerritoryNotReady",
    "TerritoryStoreUnavailable",
]

NEEDS = "the deploy checks need the test extra 'kubernetes-validate' (it brings PyYAML and jsonschema)"


def _yaml():
    return pytest.importorskip("yaml", reason=NEEDS)


def _yaml_files() -> list[Path]:
    return sorted(
        p for d in ("grafana", "compose", "k8s") for p in (DEPLOY / d).rglob("*") if p.suffix in (".yml", ".yaml")
    )


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            exprs.append(target["expr"])
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if variable["type"] == "query":
            exprs.append(query["query"] if isinstance(query, dict) else query)
    return exprs


def _exposed_names() -> set[str]:
    """Every sample name the worker's registry exposes, also for labelled metrics that have no
    sample yet (their `# TYPE` line): counters as `_total` (+ `_created`), histograms as
    `_bucket`, `_sum`, `_count` (+ `_created`)."""
    text = generate_latest(Metrics.create().registry).decode()
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.add(name)
            if kind == "counter":
                names.add(name.removesuffix("_total") + "_created")
            elif kind in ("histogram", "summary"):
                names.update(f"{name}{s}" for s in ("_bucket", "_sum", "_count", "_created"))
        elif line and not line.startswith("#"):
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names


# --- parse -----------------------------------------------------------------------------


def test_every_json_file_parses():
    files = sorted(p for d in ("grafana", "compose", "k8s") for p in (DEPLOY / d).rglob("*.json"))
    assert DASHBOARD in files
    for path in files:
        json.loads(path.read_text())


def test_every_yaml_file_parses():
    yaml = _yaml()
    files = _yaml_files()
    assert COMPOSE in files and (K8S / "deployment.yaml") in files
    for path in files:
        docs = list(yaml.safe_load_all(path.read_text()))
        assert docs and all(isinstance(d, dict) for d in docs), path


# --- Grafana ---------------------------------------------------------------------------


def test_dashboard_is_grafana_10_with_a_prometheus_datasource_variable():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 38  # Grafana 10.0+
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]


def test_dashboard_covers_the_issue():
    text = DASHBOARD.read_text()
    for name in (
        "territory_territory_imbalance_ratio",
        "territory_rep_potential_share_ratio",
        "territory_rep_fair_share_ratio",
        "territory_rep_potential",
        "territory_detector_signals_total",
        "territory_rebalancer_proposals_total",
        "territory_store_proposals",
        "territory_rebalancer_solve_seconds_bucket",
        "territory_rebalancer_moves_sum",
        "territory_intake_events_total",
        "territory_intake_deadlettered_total",
        "territory_intake_lag_messages",
        "territory_intake_processing_seconds_bucket",
        "territory_alerts_deliveries_total",
        "territory_alerts_outbox_pending",
        "territory_worker_ready",
    ):
        assert name in text, name


def test_every_metric_the_dashboard_queries_exists_in_the_worker_metrics():
    exposed = _exposed_names()
    used = {name for expr in _dashboard_exprs() for name in re.findall(r"\bterritory_[a-z_]+", expr)}
    assert len(used) >= 20
    missing = sorted(used - exposed)
    assert not missing, f"the dashboard queries metrics the worker does not expose: {missing}"


def test_grafana_provisioning_points_at_the_dashboard():
    yaml = _yaml()
    provisioning = DEPLOY / "grafana" / "provisioning"
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    assert datasource["datasources"][0]["type"] == "prometheus"
    provider = yaml.safe_load((provisioning / "dashboards" / "territory.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    compose = yaml.safe_load(COMPOSE.read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert any(m.endswith(f"{path}/territory-dashboard.json:ro") for m in mounts)


# --- compose ---------------------------------------------------------------------------


def test_compose_validates_against_the_compose_specification():
    yaml = _yaml()
    jsonschema = pytest.importorskip("jsonschema", reason=NEEDS)
    schema = json.loads((DEPLOY / "compose" / "compose-spec.json").read_text())
    compose = yaml.safe_load(COMPOSE.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose)]
    assert not errors, errors


def test_compose_has_the_whole_stack():
    yaml = _yaml()
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:3.")
    assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft
    assert services["postgres"]["image"] == "postgres:16"
    for name in ("prometheus", "alertmanager", "grafana"):
        assert name in services
    workers = [s for n, s in services.items() if re.fullmatch(r"worker-\d", n)]
    assert len(workers) == 2
    for worker in workers:
        assert worker["command"] == ["territory", "worker"]
        env = worker["environment"]
        assert env["TERRITORY_DB_URL"].startswith("postgresql+psycopg://")
        assert env["TERRITORY_KAFKA_URL"] == "kafka://kafka:9092"
        assert (COMPOSE.parent / worker["build"]["context"] / worker["build"]["dockerfile"]).is_file()
    # Prometheus gets the project's rules (deploy/prometheus) and the compose scrape config.
    mounts = services["prometheus"]["volumes"]
    assert "../prometheus:/etc/prometheus/territory:ro" in mounts
    assert (COMPOSE.parent / "../prometheus/rules/territory.rules.yml").is_file()


def test_compose_workers_listen_on_their_container_network_without_sidecars():
    yaml = _yaml()
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    workers = {n: s for n, s in services.items() if re.fullmatch(r"worker-\d", n)}
    for name, worker in workers.items():
        assert worker["environment"]["TERRITORY_BIND_ADDRESS"] == "0.0.0.0", name
        assert worker["environment"]["TERRITORY_METRICS_PORT"] == "9464", name
        assert worker["environment"]["TERRITORY_WEB_PORT"] == "8088", name
    assert not [n for n, s in services.items() if "socat" in s.get("image", "") or "network_mode" in s]
    # Only worker-1's review page reaches the host, and only its loopback.
    assert workers["worker-1"]["ports"] == ["127.0.0.1:8088:8088"]
    assert "ports" not in workers["worker-2"]


def test_compose_prometheus_scrapes_the_workers_under_the_rules_job_name():
    yaml = _yaml()
    config = yaml.safe_load((DEPLOY / "compose" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = jobs["territory-worker"]["static_configs"][0]["targets"]
    assert targets == ["worker-1:9464", "worker-2:9464"]
    assert 'job="territory-worker"' in (DEPLOY / "prometheus" / "rules" / "territory.rules.yml").read_text()


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_alertmanager_config_passes_amtool():
    if not shutil.which("amtool"):
        pytest.skip("amtool is not installed (deploy/services/install.sh installs prometheus-alertmanager)")
    result = _run(["amtool", "check-config", "alertmanager.yml"], DEPLOY / "compose")
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_prometheus_config_passes_promtool():
    if not shutil.which("promtool"):
        pytest.skip("promtool is not installed (deploy/services/install.sh installs prometheus)")
    # --syntax-only: the rule files are paths inside the container.
    result = _run(["promtool", "check", "config", "--syntax-only", "prometheus.yml"], DEPLOY / "compose")
    assert result.returncode == 0, result.stdout + result.stderr


# --- Kubernetes ------------------------------------------------------------------------


def _k8s_resources() -> list[dict]:
    yaml = _yaml()
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    resources = []
    for name in kustomization["resources"]:
        resources.extend(d for d in yaml.safe_load_all((K8S / name).read_text()) if d)
    return resources


def test_kustomization_lists_every_manifest():
    yaml = _yaml()
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_k8s_manifests_validate_against_the_kubernetes_schemas():
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason=NEEDS)
    resources = _k8s_resources()
    kinds = sorted(r["kind"] for r in resources)
    assert kinds == ["ConfigMap", "Deployment", "PodDisruptionBudget", "Secret", "Service"]
    for resource in resources:
        try:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(
                f"{resource['kind']}/{resource['metadata']['name']}: {error.message} "
                f"at {'/'.join(map(str, error.path))}"
            )


def test_k8s_deployment_shape():
    resources = {r["kind"]: r for r in _k8s_resources()}
    deployment = resources["Deployment"]
    spec = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 2
    assert spec["securityContext"]["runAsNonRoot"] is True
    worker = next(c for c in spec["containers"] if c["name"] == "worker")
    assert worker["securityContext"]["readOnlyRootFilesystem"] is True
    assert {m["mountPath"] for m in worker["volumeMounts"]} >= {"/var/lib/territory", "/tmp"}
    assert {"requests", "limits"} <= set(worker["resources"])
    # No sidecar: the worker listens on the pod IP, so the kubelet's HTTP probes reach it.
    assert [c["name"] for c in spec["containers"]] == ["worker"]
    env = {e["name"]: e.get("value") for e in worker["env"]}
    assert env["TERRITORY_BIND_ADDRESS"] == "0.0.0.0"
    ports = {p["name"]: p["containerPort"] for p in worker["ports"]}
    assert ports == {"metrics": 9464, "web": 8088}
    probes = {kind: worker[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert {kind: (probe["path"], ports[probe["port"]]) for kind, probe in probes.items()} == {
        "startupProbe": ("/livez", 8088),
        "livenessProbe": ("/livez", 8088),
        "readinessProbe": ("/readyz", 8088),
    }
    assert deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == "9464"
    sources = {next(iter(s.values()))["name"] for s in worker["envFrom"]}
    assert sources == {resources["ConfigMap"]["metadata"]["name"], resources["Secret"]["metadata"]["name"]}
    secret = resources["Secret"]["stringData"]
    for key in (
        "TERRITORY_API_TOKEN",
        "TERRITORY_API_READ_TOKEN",
        "TERRITORY_WEBHOOK_SECRET",
        "TERRITORY_PSEUDONYM_KEY",
    ):
        assert secret[key] == "CHANGE-ME", key
    config = resources["ConfigMap"]["data"]
    assert all(key.startswith("TERRITORY_") for key in config)
    service_ports = {p["port"]: ports[p["targetPort"]] for p in resources["Service"]["spec"]["ports"]}
    assert service_ports == {9464: 9464, 8088: 8088}


def test_k8s_settings_are_real_settings():
    """Every TERRITORY_* key in the ConfigMap, Secret and compose file is a field of Settings."""
    yaml = _yaml()
    from core.settings import Settings

    known = {f"TERRITORY_{name.upper()}" for name in Settings.__dataclass_fields__}
    resources = {r["kind"]: r for r in _k8s_resources()}
    keys = set(resources["ConfigMap"]["data"]) | set(resources["Secret"]["stringData"])
    for container in resources["Deployment"]["spec"]["template"]["spec"]["containers"]:
        keys |= {e["name"] for e in container.get("env", []) if e["name"].startswith("TERRITORY_")}
    for name, service in yaml.safe_load(COMPOSE.read_text())["services"].items():
        keys |= {k for k in (service.get("environment") or {}) if k.startswith("TERRITORY_")}
    assert keys - known == set()


def test_kubectl_kustomize_builds_the_manifests():
    if not shutil.which("kubectl"):
        pytest.skip("kubectl is not installed")
    result = _run(["kubectl", "kustomize", "."], K8S)
    if result.returncode != 0 and "kustomize" in result.stderr and "unknown command" in result.stderr:
        pytest.skip("this kubectl has no kustomize")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\nkind: ") + result.stdout.startswith("kind: ") >= 5


# --- operations guide ------------------------------------------------------------------


def test_operations_guide_has_a_runbook_section_per_alert():
    guide = (ROOT / "docs" / "OPERATIONS.md").read_text()
    headings = set(re.findall(r"^## (\S+)\s*$", guide, flags=re.M))
    for alert in ALERTS:
        assert alert in headings, alert
    rules = DEPLOY / "prometheus" / "rules" / "territory.rules.yml"
    if rules.is_file():
        for alert in re.findall(r"alert:\s*(\w+)", rules.read_text()):
            assert alert in headings, f"{alert} is in the rules but has no runbook section"

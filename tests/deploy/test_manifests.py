"""Structural checks of the Kubernetes manifests in deploy/k8s, without a cluster or kubectl.

The files are read as YAML and checked for what a rollout depends on: probes, security context,
resources, the split of API and worker, selectors that select, topics that exist, and environment
variables that the settings classes really read. A last test renders the production overlay with
``kubectl kustomize`` when kubectl is installed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from functools import cache
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
import yaml

from crmkit.settings import KafkaSettings, ServiceSettings
from gateway.settings import GatewaySettings

REPO_ROOT = Path(__file__).resolve().parents[2]
K8S = REPO_ROOT / "deploy" / "k8s"
BASE = K8S / "base"
PRODUCTION = K8S / "overlays" / "production"
SERVICES = ("customer", "rating", "assignment", "visits", "notify")
IMAGE = "registry.example.internal/bank-crm/app"
IMAGE_TAG = "0.1.0"
PART_OF = "bank-crm"
COMPONENTS = {"api", "worker", "migrate"}
WORKLOAD_KINDS = {"Deployment", "Job"}

Manifest = dict[str, Any]


@cache
def _yaml_files() -> tuple[Path, ...]:
    return tuple(sorted([*K8S.rglob("*.yaml"), *K8S.rglob("*.yml")]))


def yaml_files() -> list[Path]:
    return list(_yaml_files())


def kustomizations() -> list[Path]:
    return [p for p in yaml_files() if p.name in {"kustomization.yaml", "kustomization.yml"}]


@cache
def _parsed(path: Path) -> tuple[Manifest, ...]:
    with path.open(encoding="utf-8") as handle:
        return tuple(doc for doc in yaml.safe_load_all(handle) if doc is not None)


def load(path: Path) -> list[Manifest]:
    """The documents of one file (a fresh copy: tests may not change what others read)."""
    return copy.deepcopy(list(_parsed(path)))


def objects(root: Path = K8S) -> list[Manifest]:
    """Every Kubernetes object under ``root`` (kustomization files excluded)."""
    found: list[Manifest] = []
    for path in yaml_files():
        if path.is_relative_to(root) and path not in kustomizations():
            found.extend(load(path))
    return found


def of_kind(kind: str, root: Path = K8S) -> list[Manifest]:
    return [doc for doc in objects(root) if doc.get("kind") == kind]


def by_name(kind: str, name: str) -> Manifest:
    matches = [doc for doc in of_kind(kind) if doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: Manifest) -> Iterator[Manifest]:
    spec = pod_spec(workload)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def env_of(container: Manifest) -> dict[str, Manifest]:
    return {item["name"]: item for item in container.get("env", [])}


def workloads() -> list[Manifest]:
    return [doc for doc in objects() if doc.get("kind") in WORKLOAD_KINDS]


def http_deployments() -> list[Manifest]:
    """Deployments that serve HTTP: every service API and the gateway."""
    return [
        d
        for d in of_kind("Deployment")
        if d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == "api"
    ]


def ids(docs: list[Manifest]) -> list[str]:
    return [f"{d['kind']}/{d['metadata']['name']}" for d in docs]


# -- files ---------------------------------------------------------------------------------


def test_manifest_tree_exists() -> None:
    assert (BASE / "kustomization.yaml").is_file()
    assert (PRODUCTION / "kustomization.yaml").is_file()
    assert (K8S / "README.md").is_file()


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_yaml_file_parses_into_kubernetes_objects(path: Path) -> None:
    docs = load(path)
    assert docs, f"{path} holds no document"
    for doc in docs:
        assert isinstance(doc, dict), f"{path}: a document is not a mapping"
        assert doc.get("apiVersion") and doc.get("kind"), f"{path}: apiVersion or kind missing"
        if doc["kind"] != "Kustomization":
            assert doc.get("metadata", {}).get("name"), f"{path}: {doc['kind']} without a name"


@pytest.mark.parametrize("path", kustomizations(), ids=lambda p: str(p.relative_to(K8S)))
def test_kustomization_references_exist(path: Path) -> None:
    (kustomization,) = load(path)
    folder = path.parent
    for entry in kustomization.get("resources", []):
        target = (folder / entry).resolve()
        if target.is_dir():
            assert (target / "kustomization.yaml").is_file(), f"{entry}: no kustomization.yaml"
        else:
            assert target.is_file(), f"{path}: resource {entry} does not exist"
    for patch in kustomization.get("patches", []):
        if "path" in patch:
            assert (folder / patch["path"]).is_file(), f"{path}: patch {patch['path']} missing"
    for patch in kustomization.get("patchesStrategicMerge", []):
        assert (folder / patch).is_file(), f"{path}: patch {patch} missing"


def test_every_manifest_file_is_listed_by_a_kustomization() -> None:
    listed: set[Path] = set()
    for path in kustomizations():
        (kustomization,) = load(path)
        for entry in kustomization.get("resources", []):
            listed.add((path.parent / entry).resolve())
        for patch in kustomization.get("patches", []):
            if "path" in patch:
                listed.add((path.parent / patch["path"]).resolve())
    unlisted = [
        str(p.relative_to(K8S))
        for p in yaml_files()
        if p not in kustomizations() and p.resolve() not in listed
    ]
    assert not unlisted, f"files no kustomization applies: {unlisted}"


# -- labels and selectors ------------------------------------------------------------------


@pytest.mark.parametrize("workload", workloads(), ids=ids(workloads()))
def test_workload_labels_are_consistent(workload: Manifest) -> None:
    pod_labels = workload["spec"]["template"]["metadata"]["labels"]
    for labels in (workload["metadata"]["labels"], pod_labels):
        assert labels["app.kubernetes.io/part-of"] == PART_OF
        assert labels["app.kubernetes.io/component"] in COMPONENTS
        assert labels["app.kubernetes.io/name"]
    assert workload["metadata"]["labels"] == pod_labels
    if workload["kind"] == "Deployment":
        selector = workload["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod_labels.items(), "selector does not select its own pods"


def test_every_service_selects_a_deployment() -> None:
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in of_kind("Deployment")]
    for service in of_kind("Service"):
        selector = service["spec"]["selector"]
        assert selector, f"Service {service['metadata']['name']} has no selector"
        assert any(selector.items() <= labels.items() for labels in pod_labels), (
            f"Service {service['metadata']['name']} selects no Deployment's pods"
        )


def test_service_target_ports_are_named_container_ports() -> None:
    for service in of_kind("Service"):
        selector = service["spec"]["selector"]
        (deployment,) = [
            d
            for d in of_kind("Deployment")
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        port_names = {p["name"] for c in containers(deployment) for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names


def test_every_pod_disruption_budget_selects_an_api_deployment() -> None:
    budgets = of_kind("PodDisruptionBudget")
    selected = set()
    for budget in budgets:
        selector = budget["spec"]["selector"]["matchLabels"]
        for deployment in http_deployments():
            if selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items():
                selected.add(deployment["metadata"]["name"])
    assert selected == {d["metadata"]["name"] for d in http_deployments()}
    for budget in budgets:
        # maxUnavailable lets a node drain even while a Deployment runs a single replica.
        assert "maxUnavailable" in budget["spec"] or "minAvailable" in budget["spec"]


# -- probes --------------------------------------------------------------------------------


@pytest.mark.parametrize("deployment", http_deployments(), ids=ids(http_deployments()))
def test_http_deployments_probe_healthz_and_readyz(deployment: Manifest) -> None:
    (container,) = pod_spec(deployment)["containers"]
    port_names = {p["name"] for p in container["ports"]}
    expected = {
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
        "startupProbe": "/healthz",
    }
    for probe, path in expected.items():
        assert probe in container, f"{probe} missing"
        http_get = container[probe]["httpGet"]
        assert http_get["path"] == path
        assert http_get["port"] in port_names or http_get["port"] == 8000


@pytest.mark.parametrize("service", SERVICES)
def test_worker_serves_only_metrics_and_is_scraped(service: str) -> None:
    worker = by_name("Deployment", f"{service}-worker")
    annotations = worker["spec"]["template"]["metadata"].get("annotations", {})
    assert annotations.get("prometheus.io/scrape") == "true"
    assert annotations.get("prometheus.io/port") == "9100"
    for container in containers(worker):
        assert [p["containerPort"] for p in container.get("ports", [])] == [9100]
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if probe in container:
                assert "httpGet" not in container[probe], f"{probe} is an HTTP probe"


# -- security and resources ----------------------------------------------------------------


@pytest.mark.parametrize("workload", workloads(), ids=ids(workloads()))
def test_containers_are_locked_down(workload: Manifest) -> None:
    spec = pod_spec(workload)
    pod_context = spec.get("securityContext", {})
    tmp_volumes = {
        v["name"] for v in spec.get("volumes", []) if "emptyDir" in v and v["name"] == "tmp"
    }
    assert spec.get("automountServiceAccountToken") is False
    for container in containers(workload):
        context = container.get("securityContext", {})
        assert context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is True
        assert context.get("readOnlyRootFilesystem") is True
        assert context.get("allowPrivilegeEscalation") is False
        assert context.get("privileged", False) is False
        assert "ALL" in context.get("capabilities", {}).get("drop", [])
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        assert mounts.get("/tmp") in tmp_volumes, "/tmp must be a writable emptyDir"


@pytest.mark.parametrize("workload", workloads(), ids=ids(workloads()))
def test_containers_set_resource_requests_and_limits(workload: Manifest) -> None:
    for container in containers(workload):
        resources = container.get("resources", {})
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources.get(bound, {})), f"{bound} incomplete"


@pytest.mark.parametrize("workload", workloads(), ids=ids(workloads()))
def test_containers_run_the_one_image(workload: Manifest) -> None:
    for container in containers(workload):
        # The tag comes from the kustomization's `images:`, never from the manifest.
        assert container["image"] == IMAGE


@pytest.mark.parametrize("folder", [BASE, PRODUCTION], ids=["base", "production"])
def test_kustomization_pins_the_image(folder: Path) -> None:
    (kustomization,) = load(folder / "kustomization.yaml")
    pins = {i["name"]: i for i in kustomization.get("images", [])}
    assert pins[IMAGE].get("newTag") == IMAGE_TAG or "digest" in pins[IMAGE]


# -- the split of API, worker and migration ------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_api_worker_and_migration(service: str) -> None:
    api = by_name("Deployment", f"{service}-api")
    worker = by_name("Deployment", f"{service}-worker")
    job = by_name("Job", f"{service}-migrate")
    by_name("Service", f"{service}-api")
    for workload, component in ((api, "api"), (worker, "worker"), (job, "migrate")):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == service
        assert labels["app.kubernetes.io/component"] == component


@pytest.mark.parametrize("service", SERVICES)
def test_api_runs_without_embedded_workers_or_migrations(service: str) -> None:
    prefix = f"CRM_{service.upper()}_"
    (container,) = pod_spec(by_name("Deployment", f"{service}-api"))["containers"]
    env = env_of(container)
    assert env[prefix + "EMBEDDED_WORKERS"]["value"] == "false"
    assert env[prefix + "RUN_MIGRATIONS_ON_START"]["value"] == "false"
    command = " ".join(container["command"] + container.get("args", []))
    assert f"services.{service}.app:create_app" in command
    assert "--factory" in command


@pytest.mark.parametrize("service", SERVICES)
def test_worker_runs_the_worker_module(service: str) -> None:
    worker = by_name("Deployment", f"{service}-worker")
    (container,) = pod_spec(worker)["containers"]
    command = container["command"] + container.get("args", [])
    assert command[-2:] == ["-m", f"services.{service}.worker"]
    assert env_of(container)[f"CRM_{service.upper()}_RUN_MIGRATIONS_ON_START"]["value"] == "false"
    assert pod_spec(worker)["terminationGracePeriodSeconds"] == 30


@pytest.mark.parametrize("service", SERVICES)
def test_migration_job_migrates_its_service(service: str) -> None:
    job = by_name("Job", f"{service}-migrate")
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    assert pod_spec(job)["restartPolicy"] in {"Never", "OnFailure"}
    (container,) = pod_spec(job)["containers"]
    command = " ".join(container["command"] + container.get("args", []))
    assert f"from services.{service}.app import build_runtime" in command
    assert "build_runtime().migrate()" in command


@pytest.mark.parametrize("service", SERVICES)
def test_database_url_comes_from_the_service_secret(service: str) -> None:
    name = f"CRM_{service.upper()}_DATABASE_URL"
    for workload in (
        by_name("Deployment", f"{service}-api"),
        by_name("Deployment", f"{service}-worker"),
        by_name("Job", f"{service}-migrate"),
    ):
        (container,) = pod_spec(workload)["containers"]
        ref = env_of(container)[name]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": f"crm-{service}-db", "key": "url"}


# -- shared configuration ------------------------------------------------------------------


def generated_config(folder: Path) -> dict[str, str]:
    (kustomization,) = load(folder / "kustomization.yaml")
    values: dict[str, str] = {}
    for generator in kustomization.get("configMapGenerator", []):
        if generator["name"] == "crm-config":
            for literal in generator.get("literals", []):
                key, _, value = literal.partition("=")
                values[key] = value
    return values


def test_every_workload_reads_the_shared_config() -> None:
    assert generated_config(BASE), "base generates no crm-config"
    for workload in workloads():
        for container in containers(workload):
            refs = [s["configMapRef"]["name"] for s in container.get("envFrom", [])]
            assert "crm-config" in refs


def test_production_points_at_the_strimzi_cluster() -> None:
    config = {**generated_config(BASE), **generated_config(PRODUCTION)}
    assert config["CRM_KAFKA_BOOTSTRAP_SERVERS"] == "crm-kafka-kafka-bootstrap.kafka:9092"
    assert config["CRM_KAFKA_NAMESPACE"] == "crm"
    assert config["CRM_KAFKA_TOPIC_PARTITIONS"] == "12"
    assert config["CRM_KAFKA_REPLICATION_FACTOR"] == "3"
    assert config["CRM_JWT_JWKS_URL"].startswith("https://")


def all_env_names() -> set[str]:
    names = set(generated_config(BASE)) | set(generated_config(PRODUCTION))
    for workload in workloads():
        for container in containers(workload):
            names |= set(env_of(container))
    return {n for n in names if n.startswith("CRM_")}


def _service_settings(service: str) -> type[ServiceSettings]:
    """The settings class of a service (its own fields beside the shared ones)."""
    module = import_module(f"services.{service}.settings")
    (cls,) = [
        c
        for c in vars(module).values()
        if isinstance(c, type) and issubclass(c, ServiceSettings) and c is not ServiceSettings
    ]
    return cls


def test_every_crm_variable_is_read_by_a_settings_class() -> None:
    service_fields = set(ServiceSettings.model_fields)
    unknown = []
    for name in sorted(all_env_names()):
        rest = name.removeprefix("CRM_").lower()
        head, _, tail = rest.partition("_")
        if head == "kafka":
            known = tail in KafkaSettings.model_fields
        elif head == "gateway":
            known = tail in GatewaySettings.model_fields
        elif head in SERVICES:
            known = tail in service_fields | set(_service_settings(head).model_fields)
        else:  # suite-wide: read by the services or the gateway (VAR_DIR by crmkit.settings)
            known = rest in service_fields | set(GatewaySettings.model_fields) | {"var_dir"}
        if not known:
            unknown.append(name)
    assert not unknown, f"variables no settings class reads: {unknown}"


# -- gateway -------------------------------------------------------------------------------


def test_gateway_forwards_to_every_service_api_without_dev_issuer() -> None:
    (container,) = pod_spec(by_name("Deployment", "gateway"))["containers"]
    env = env_of(container)
    assert env["CRM_GATEWAY_DEV_ISSUER_ENABLED"]["value"] == "false"
    service_names = {s["metadata"]["name"] for s in of_kind("Service")}
    for service in SERVICES:
        url = env[f"CRM_GATEWAY_UPSTREAM_{service.upper()}"]["value"]
        host = url.removeprefix("http://").split(":")[0].split(".")[0].rstrip("/")
        assert host == f"{service}-api" and host in service_names
    assert "gateway.app:create_app" in " ".join(container["command"])


def test_gateway_scales_on_cpu_and_has_no_fixed_replicas() -> None:
    deployment = by_name("Deployment", "gateway")
    assert "replicas" not in deployment["spec"], "the HorizontalPodAutoscaler owns replicas"
    (hpa,) = of_kind("HorizontalPodAutoscaler", BASE)
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "gateway")
    metrics = [m["resource"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
    assert "cpu" in metrics
    (container,) = pod_spec(deployment)["containers"]
    assert container["resources"]["requests"]["cpu"], "CPU utilisation needs a CPU request"


def test_ingress_routes_to_the_gateway_only() -> None:
    (ingress,) = of_kind("Ingress")
    backends = {
        (path["path"], path["backend"]["service"]["name"])
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert {name for _, name in backends} == {"gateway"}
    assert not {p for p, _ in backends} & {"/", "/metrics", "/healthz", "/readyz"}
    assert ingress["spec"]["tls"]


@pytest.mark.parametrize("deployment", http_deployments(), ids=ids(http_deployments()))
def test_http_pods_are_scraped_by_prometheus(deployment: Manifest) -> None:
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    (container,) = pod_spec(deployment)["containers"]
    ports = {str(p["containerPort"]) for p in container["ports"]}
    assert annotations["prometheus.io/port"] in ports


# -- production: Kafka topics and PostgreSQL -----------------------------------------------


def test_kafka_topics_cover_every_service_and_dead_letter_topic() -> None:
    topics = of_kind("KafkaTopic", PRODUCTION)
    names = {t["spec"].get("topicName", t["metadata"]["name"]) for t in topics}
    expected = {f"crm.{s}" for s in SERVICES} | {f"crm.dlq.{s}" for s in SERVICES}
    assert expected <= names, f"missing topics: {sorted(expected - names)}"
    for topic in topics:
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "crm-kafka"
        assert topic["metadata"]["namespace"] == "kafka"
        assert topic["spec"]["partitions"] == 12
        assert topic["spec"]["replicas"] == 3


def test_topic_names_match_the_suite_naming() -> None:
    kafka = KafkaSettings(namespace="crm")
    names = {
        t["spec"].get("topicName", t["metadata"]["name"]) for t in of_kind("KafkaTopic", PRODUCTION)
    }
    for service in SERVICES:
        assert kafka.topic(service) in names
        assert kafka.dead_letter_topic(service) in names


def test_postgres_cluster_has_a_database_and_role_per_service() -> None:
    (cluster,) = of_kind("Cluster", PRODUCTION)
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    roles = {r["name"] for r in cluster["spec"]["managed"]["roles"]}
    databases = {
        d["spec"]["name"]: d["spec"]["owner"]
        for d in of_kind("Database", PRODUCTION)
        if d["spec"]["cluster"]["name"] == cluster["metadata"]["name"]
    }
    assert set(SERVICES) <= roles
    assert databases == {s: s for s in SERVICES}

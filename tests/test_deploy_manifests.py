"""deploy/: every manifest valid against the Kubernetes schemas (offline, bundled by
kubernetes-validate), and the properties a payment service needs in production."""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path, PurePosixPath
from typing import Any

import kubernetes_validate
import pytest
import yaml

from service.config import ConfigError, Settings, load_settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
# The oldest Kubernetes these manifests promise to work on, and the newest the validator knows.
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.latest_version())
SECRET_FILES = {
    "STRIPE_SECRET_KEY_FILE",
    "STRIPE_WEBHOOK_SECRET_FILE",
    "DATABASE_URL_FILE",
    "DATABASE_MIGRATE_URL_FILE",
}
APP_UID = 10001  # the Dockerfile's appuser
# Anything shaped like a credential: never inline in a ConfigMap or a container's env.
SECRET_SHAPED = re.compile(r"(sk|rk)_(test|live)_|whsec_|postgres(ql)?://", re.IGNORECASE)
# Settings the service reads; cleared so that the runner's own environment cannot leak in.
SETTING_PREFIXES = (
    "STRIPE_",
    "DATABASE_URL",
    "DB_",
    "HOST",
    "PORT",
    "CHECKOUT_",
    "WEBHOOK_",
    "CORS_",
    "LOG_LEVEL",
    "WEB_CONCURRENCY",
    "METRICS_",
    "PROMETHEUS_MULTIPROC_DIR",
    "API_",
    "AUTH_",
    "RATE_LIMIT_",
    "TRUSTED_PROXIES",
    "BODY_TIMEOUT_SECONDS",
    "MAX_CONNECTIONS",
    "LOG_BUFFER_LINES",
)

Document = dict[str, Any]


def documents() -> list[tuple[str, Document]]:
    found: list[tuple[str, Document]] = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document:
                assert isinstance(document, dict), path.name
                found.append((path.name, document))
    return found


def by_kind(kind: str) -> Document:
    [document] = [d for _, d in documents() if d.get("kind") == kind]
    return document


def all_of_kind(kind: str) -> dict[str, Document]:
    return {d["metadata"]["name"]: d for _, d in documents() if d.get("kind") == kind}


APP_SECRET = "payment-service-secrets"
MIGRATE_SECRET = "payment-service-migrate-secrets"


def pod_spec(kind: str) -> Document:
    spec: Document = by_kind(kind)["spec"]["template"]["spec"]
    return spec


def only_container(kind: str) -> Document:
    [container] = pod_spec(kind)["containers"]
    assert isinstance(container, dict)
    return container


def test_deploy_has_the_expected_manifests() -> None:
    kinds = sorted(d["kind"] for _, d in documents())
    assert kinds == sorted(
        [
            "ConfigMap",
            "Deployment",
            "Job",
            "Kustomization",
            "NetworkPolicy",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "PrometheusRule",
            "Secret",
            "Secret",
            "Service",
        ]
    )


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(
    ("name", "document"),
    [
        pytest.param(name, doc, id=f"{name}:{doc['kind']}")
        for name, doc in documents()
        # PrometheusRule is the Prometheus Operator's own kind: promtool checks it instead
        # (tests/test_alerts.py).
        if doc.get("kind") not in ("Kustomization", "PrometheusRule")
    ],
)
def test_manifest_is_valid_kubernetes(name: str, document: Document, version: str) -> None:
    kubernetes_validate.validate(document, version, strict=True)


@pytest.mark.parametrize(
    "break_it",
    [
        pytest.param(lambda d: d["spec"].update(replicas="two"), id="wrong-type"),
        pytest.param(lambda d: d["spec"].update(replcas=2), id="unknown-field"),
        pytest.param(
            lambda d: d["spec"]["template"]["spec"]["containers"][0].pop("name"), id="missing"
        ),
    ],
)
def test_the_validator_rejects_a_broken_manifest(break_it: Any) -> None:
    """Guards against a validator that silently accepts everything."""
    broken = copy.deepcopy(by_kind("Deployment"))
    break_it(broken)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


def test_the_kustomization_lists_every_manifest_but_the_example_secret() -> None:
    """And but the alerts: a cluster without the Prometheus Operator refuses its kind."""
    kustomization = by_kind("Kustomization")
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk - {"secret.example.yaml", "alerts.yaml"}
    assert "secret.example.yaml" in on_disk


@pytest.mark.parametrize(
    ("kind", "secret_name"), [("Deployment", APP_SECRET), ("Job", MIGRATE_SECRET)]
)
def test_pods_run_locked_down_with_secrets_only_as_files(kind: str, secret_name: str) -> None:
    pod = pod_spec(kind)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == APP_UID
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    # 0400 secret files stay root-owned and unreadable by the app user unless fsGroup makes
    # them group-readable (0440) by a group the process is in.
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
    assert pod["automountServiceAccountToken"] is False
    container = only_container(kind)
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
    assert "memory" in container["resources"]["limits"]

    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    [secret_mount] = [m for m in mounts.values() if "secret" in volumes[m["name"]]]
    assert secret_mount["readOnly"] is True
    secret_volume = volumes[secret_mount["name"]]["secret"]
    assert secret_volume["defaultMode"] == 0o400
    assert secret_volume["secretName"] == secret_name

    secret_keys = set(all_of_kind("Secret")[secret_name]["stringData"])
    for variable in container.get("env", []):
        assert "valueFrom" not in variable, variable["name"]
        value = str(variable.get("value", ""))
        assert not SECRET_SHAPED.search(value), variable["name"]
        if variable["name"] in SECRET_FILES:
            path = PurePosixPath(value)
            assert path.parent == PurePosixPath(secret_mount["mountPath"])
            assert path.name in secret_keys
            if "items" in secret_volume:
                assert path.name in {item["path"] for item in secret_volume["items"]}
        else:
            assert not variable["name"].startswith(
                ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK", "DATABASE_URL")
            )


def test_the_configmap_holds_no_secret() -> None:
    config = by_kind("ConfigMap")["data"]
    for forbidden in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "DATABASE_URL"):
        assert not any(name.startswith(forbidden) for name in config)
    for name, value in config.items():
        assert isinstance(value, str), name  # ConfigMap data must be strings
        assert not SECRET_SHAPED.search(value), name


def test_the_example_secret_is_obviously_fake() -> None:
    assert "EXAMPLE" in (DEPLOY / "secret.example.yaml").read_text(encoding="utf-8")
    for secret in all_of_kind("Secret").values():
        for key, value in secret["stringData"].items():
            assert "REPLACE_ME" in value, key


def test_the_two_database_roles_are_two_secrets_and_verify_the_server() -> None:
    secrets = all_of_kind("Secret")
    assert set(secrets) == {APP_SECRET, MIGRATE_SECRET}
    app_url = secrets[APP_SECRET]["stringData"]["database-url"]
    owner_url = secrets[MIGRATE_SECRET]["stringData"]["database-migrate-url"]
    assert set(secrets[MIGRATE_SECRET]["stringData"]) == {"database-migrate-url"}
    assert app_url.split("@")[0] != owner_url.split("@")[0]  # two roles, two logins
    assert app_url.startswith("postgresql://payment_app:")
    for url in (app_url, owner_url):
        assert "sslmode=verify-full" in url
    assert by_kind("ConfigMap")["data"]["DB_APP_ROLE"] == "payment_app"


def test_only_the_http_port_is_open_and_metrics_only_to_the_monitoring_namespace() -> None:
    policies = all_of_kind("NetworkPolicy")
    deny = policies["payment-service-default-deny"]["spec"]
    assert deny["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "payment-service"}
    assert deny["policyTypes"] == ["Ingress"]
    assert "ingress" not in deny  # nothing may reach any of the service's pods...
    api = policies["payment-service-api"]["spec"]
    labels = by_kind("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert api["podSelector"]["matchLabels"].items() <= labels.items()
    ports = {p["name"]: p["containerPort"] for p in only_container("Deployment")["ports"]}
    open_to_all, monitoring = api["ingress"]
    # ...but the API pods' HTTP port, from anywhere,
    assert "from" not in open_to_all
    assert [ports[p["port"]] for p in open_to_all["ports"]] == [5003]
    # and their metrics port, from the monitoring namespace only.
    assert monitoring["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    metrics_port = int(by_kind("ConfigMap")["data"]["METRICS_PORT"])
    assert [ports[p["port"]] for p in monitoring["ports"]] == [metrics_port]
    assert "networkpolicy.yaml" in by_kind("Kustomization")["resources"]


def test_the_deployment_is_replicated_probed_and_drains() -> None:
    deployment = by_kind("Deployment")
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = pod_spec("Deployment")
    container = only_container("Deployment")
    assert container.get("args", ["serve"]) == ["serve"]
    # The serving pods never get the owner's URL.
    assert {e["name"] for e in container["env"]} & SECRET_FILES == SECRET_FILES - {
        "DATABASE_MIGRATE_URL_FILE"
    }
    assert {"configMapRef": {"name": by_kind("ConfigMap")["metadata"]["name"]}} in container[
        "envFrom"
    ]
    http_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    readiness, liveness = container["readinessProbe"], container["livenessProbe"]
    for probe in (readiness, liveness):
        assert probe["httpGet"]["path"] == "/health"
        assert http_ports.get(probe["httpGet"]["port"], probe["httpGet"]["port"]) == 5003
        assert probe["timeoutSeconds"] > 2  # /health answers within 2 s
    # Lenient liveness: a database blip makes pods unready long before it restarts them.
    assert liveness["failureThreshold"] * liveness["periodSeconds"] >= 60
    assert (
        liveness["failureThreshold"] * liveness["periodSeconds"]
        > readiness["failureThreshold"] * readiness["periodSeconds"]
    )
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] >= 30 + int(pre_stop[1])  # drain + preStop
    [spread] = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert (
        spread["labelSelector"]["matchLabels"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )


def test_the_pdb_keeps_one_pod_of_the_deployment() -> None:
    pdb = by_kind("PodDisruptionBudget")
    deployment = by_kind("Deployment")
    assert pdb["spec"]["minAvailable"] == 1
    assert (
        pdb["spec"]["selector"]["matchLabels"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    assert deployment["spec"]["replicas"] > pdb["spec"]["minAvailable"]


def test_the_migration_job_runs_migrate_with_only_the_database_secret() -> None:
    job = by_kind("Job")
    assert job["spec"]["backoffLimit"] >= 1
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    container = only_container("Job")
    assert container["image"] == only_container("Deployment")["image"]
    assert container["args"] == ["migrate"]
    assert "command" not in container  # the image's `python -m service` entrypoint
    assert {e["name"] for e in container["env"]} & SECRET_FILES == {"DATABASE_MIGRATE_URL_FILE"}


def test_the_service_reaches_the_deployments_http_port() -> None:
    service = by_kind("Service")
    deployment = by_kind("Deployment")
    assert service["spec"]["type"] == "ClusterIP"
    assert (
        service["spec"]["selector"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    container = only_container("Deployment")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    [http] = [p for p in service["spec"]["ports"] if p["port"] == 80]
    assert ports.get(http["targetPort"], http["targetPort"]) == 5003


def _environment_of(
    kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, overrides: dict[str, str]
) -> None:
    """The container's environment (ConfigMap + env) with its secret files written from the
    example Secret into tmp_path, as the kubelet would mount them."""
    for name in list(os.environ):
        if name.startswith(SETTING_PREFIXES):
            monkeypatch.delenv(name)
    for secret in all_of_kind("Secret").values():
        for key, value in secret["stringData"].items():
            path = tmp_path / key
            path.write_text(overrides.get(key, value) + "\n", encoding="utf-8")
            path.chmod(0o400)  # the kubelet's defaultMode; the service refuses looser
    container = only_container(kind)
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert source["configMapRef"]["name"] == by_kind("ConfigMap")["metadata"]["name"]
        environment.update(by_kind("ConfigMap")["data"])
    for variable in container.get("env", []):
        value = variable["value"]
        if variable["name"] in SECRET_FILES:
            value = str(tmp_path / PurePosixPath(value).name)
        environment[variable["name"]] = value
    environment.update((k, v) for k, v in overrides.items() if k.isupper())
    for name, value in environment.items():
        monkeypatch.setenv(name, value)


def _load(purpose: str, tmp_path: Path) -> Settings:
    return load_settings(env_file=tmp_path / "no.env", purpose=purpose)


def test_the_placeholders_are_refused_by_the_service(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Applied as shipped, the service refuses to start rather than run on fake values."""
    _environment_of("Deployment", monkeypatch, tmp_path, {})
    with pytest.raises(ConfigError) as refused:
        _load("serve", tmp_path)
    assert set(refused.value.problems) == {"STRIPE_PRODUCT_PRICE_ID", "STRIPE_SECRET_KEY_FILE"}


def test_the_configmap_and_secret_files_configure_the_service(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = {"stripe-secret-key": "sk_test_abc123", "STRIPE_PRODUCT_PRICE_ID": "price_1Abc"}
    _environment_of("Deployment", monkeypatch, tmp_path, real)
    settings = _load("serve", tmp_path)
    assert settings.port == 5003
    assert settings.stripe_secret_key == "sk_test_abc123"
    assert settings.stripe_webhook_secrets == ("whsec_REPLACE_ME",)
    assert settings.database_url.startswith("postgresql://")
    assert settings.metrics_port != settings.port
    assert settings.web_concurrency == 1 or settings.metrics_port is None


def test_the_migration_jobs_environment_configures_migrate(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _environment_of("Job", monkeypatch, tmp_path, {})
    settings = _load("migrate", tmp_path)
    assert settings.migrate_url.startswith("postgresql://payments_owner:")
    assert settings.db_app_role == "payment_app"

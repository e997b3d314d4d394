"""deploy/: every manifest valid against the Kubernetes schemas (offline, bundled by
kubernetes-validate), and the properties a payment service needs in production."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
KUBERNETES_VERSION = "1.30"
SECRET_FILES = {
    "STRIPE_SECRET_KEY_FILE",
    "STRIPE_WEBHOOK_SECRET_FILE",
    "DATABASE_URL_FILE",
}


def documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found.append((path.name, document))
    return found


def by_kind(kind: str) -> dict[str, Any]:
    [document] = [d for _, d in documents() if d.get("kind") == kind]
    return document


@pytest.mark.parametrize(
    ("name", "document"),
    [
        pytest.param(name, doc, id=f"{name}:{doc['kind']}")
        for name, doc in documents()
        if doc.get("kind") != "Kustomization"
    ],
)
def test_manifest_is_valid_kubernetes(name: str, document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_kustomization_lists_every_manifest_but_the_example_secret() -> None:
    kustomization = by_kind("Kustomization")
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk - {"secret.example.yaml"}


def _pod(kind: str) -> dict[str, Any]:
    spec: dict[str, Any] = by_kind(kind)["spec"]["template"]["spec"]
    return spec


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_pods_run_locked_down_with_secrets_only_as_files(kind: str) -> None:
    pod = _pod(kind)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["automountServiceAccountToken"] is False
    [container] = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert "memory" in container["resources"]["limits"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["secrets"]["readOnly"] is True
    secret_dir = mounts["secrets"]["mountPath"]
    [secret_volume] = [v for v in pod["volumes"] if v["name"] == "secrets"]
    assert secret_volume["secret"]["defaultMode"] == 0o400
    for variable in container.get("env", []):
        assert "valueFrom" not in variable
        if variable["name"].endswith("_FILE"):
            assert variable["value"].startswith(secret_dir + "/")
        assert (
            not variable["name"].startswith(("STRIPE_SECRET_KEY", "DATABASE_URL"))
            or variable["name"] in SECRET_FILES
        )


def test_the_deployment_is_replicated_probed_and_drains() -> None:
    deployment = by_kind("Deployment")
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = _pod("Deployment")
    [container] = pod["containers"]
    assert {e["name"] for e in container["env"]} >= SECRET_FILES
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health"
    assert (
        container["livenessProbe"]["failureThreshold"]
        > container["readinessProbe"]["failureThreshold"]
    )
    assert pod["terminationGracePeriodSeconds"] > 30 + 5  # drain + preStop
    config = by_kind("ConfigMap")["data"]
    for forbidden in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "DATABASE_URL"):
        assert forbidden not in config


def test_the_migration_job_runs_migrate_with_only_the_database_secret() -> None:
    [container] = _pod("Job")["containers"]
    assert container["args"] == ["migrate"]
    assert {e["name"] for e in container["env"]} & SECRET_FILES == {"DATABASE_URL_FILE"}


def test_the_service_reaches_the_deployments_http_port() -> None:
    service = by_kind("Service")
    deployment = by_kind("Deployment")
    assert (
        service["spec"]["selector"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    [container] = _pod("Deployment")["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    [http] = [p for p in service["spec"]["ports"] if p["name"] == "http"]
    assert http["targetPort"] in ports
    assert ports[http["targetPort"]] == 5003
    pdb = by_kind("PodDisruptionBudget")
    assert (
        pdb["spec"]["selector"]["matchLabels"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )

"""The MLflow tracking server: schema migration Job, Deployment and LoadBalancer Service."""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from infra.k8s.foundation import ARTIFACT_STORE_SECRET, AUTH_SECRET, DATABASE_SECRET
from infra.k8s.settings import WorkloadSettings, child_opts, container_security, pod_security, timeouts
from infra.naming import MLFLOW_SERVICE_ACCOUNT, component_type

SERVICE_NAME = "mlflow"
CONTAINER_PORT = 5000
SERVICE_PORT = 80
APP_LABELS = {"app.kubernetes.io/name": "mlflow-server"}


def tracking_uri(namespace: str) -> str:
    """In-cluster URL of the tracking server (the LoadBalancer Service's cluster IP)."""
    return f"http://{SERVICE_NAME}.{namespace}.svc.cluster.local:{SERVICE_PORT}"


def allowed_hosts(namespace: str, public_hosts: tuple[str, ...]) -> str:
    """MLFLOW_ALLOWED_HOSTS: every in-cluster name of the Service, localhost (probes), the public hosts."""
    names = [
        SERVICE_NAME,
        f"{SERVICE_NAME}.{namespace}",
        f"{SERVICE_NAME}.{namespace}.svc",
        f"{SERVICE_NAME}.{namespace}.svc.cluster.local",
    ]
    hosts = names + [f"{n}:{SERVICE_PORT}" for n in names] + ["localhost", f"localhost:{CONTAINER_PORT}"]
    return ",".join(hosts + [h for h in public_hosts if h not in hosts])


def secret_env(name: str, secret: str, key: str) -> dict:
    """An env var read from a Secret key."""
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def server_env(settings: WorkloadSettings) -> list[dict]:
    """Environment of the mlflow-server container (the entrypoint's contract)."""
    db = settings.database
    env = [
        {"name": "MLFLOW_DB_HOST", "value": db.host},
        {"name": "MLFLOW_DB_PORT", "value": pulumi.Output.from_input(db.port).apply(str)},
        {"name": "MLFLOW_DB_NAME", "value": db.name},
        {"name": "MLFLOW_DB_USER", "value": db.username},
        secret_env("MLFLOW_DB_PASSWORD", DATABASE_SECRET, "password"),
        {"name": "MLFLOW_DB_SSLMODE", "value": "require"},
        {"name": "MLFLOW_ARTIFACTS_DESTINATION", "value": settings.bucket.artifacts_destination},
    ]
    if settings.bucket.s3_endpoint_url is not None:
        env.append({"name": "MLFLOW_S3_ENDPOINT_URL", "value": settings.bucket.s3_endpoint_url})
    if settings.s3_credentials is not None:
        env += [
            secret_env("AWS_ACCESS_KEY_ID", ARTIFACT_STORE_SECRET, "AWS_ACCESS_KEY_ID"),
            secret_env("AWS_SECRET_ACCESS_KEY", ARTIFACT_STORE_SECRET, "AWS_SECRET_ACCESS_KEY"),
        ]
    env += [
        {"name": "MLFLOW_HOST", "value": "0.0.0.0"},
        {"name": "MLFLOW_PORT", "value": str(CONTAINER_PORT)},
        {"name": "MLFLOW_WORKERS", "value": str(settings.mlflow.workers)},
        {"name": "MLFLOW_ALLOWED_HOSTS", "value": allowed_hosts(settings.namespace, settings.mlflow.public_hosts)},
        {"name": "MLFLOW_AUTH", "value": "true" if settings.mlflow.auth else "false"},
        secret_env("MLFLOW_ADMIN_USERNAME", AUTH_SECRET, "username"),
        secret_env("MLFLOW_ADMIN_PASSWORD", AUTH_SECRET, "password"),
    ]
    return env


def _probe(path: str, **timing: int) -> dict:
    # Host: localhost, because kubelet would send the pod IP, which MLFLOW_ALLOWED_HOSTS does not list.
    return {
        "httpGet": {"path": path, "port": "http", "httpHeaders": [{"name": "Host", "value": "localhost"}]},
        **timing,
    }


class MlflowServer(pulumi.ComponentResource):
    """Migration Job (awaited) -> Deployment (awaited) -> LoadBalancer Service (awaited)."""

    def __init__(
        self,
        name: str,
        settings: WorkloadSettings,
        image_pull_secrets: list[dict],
        opts: Optional[pulumi.ResourceOptions] = None,
    ) -> None:
        super().__init__(component_type("k8s", MlflowServer), name, None, opts)
        ns = settings.namespace
        labels = {**settings.labels, **APP_LABELS}
        env = server_env(settings)
        volumes = [{"name": "tmp", "emptyDir": {}}]
        mounts = [{"name": "tmp", "mountPath": "/tmp"}]
        pod_common = {
            "serviceAccountName": MLFLOW_SERVICE_ACCOUNT,
            # The IRSA/Workload Identity token is projected by the cloud's webhook, not the API token.
            "automountServiceAccountToken": False,
            "securityContext": pod_security(),
            "imagePullSecrets": image_pull_secrets or None,
            "volumes": volumes,
        }
        timeout = timeouts(settings.rollout_timeout_seconds)

        # Auto-named, so a new image (a changed pod template) replaces the Job and migrates again.
        self.migration = k8s.batch.v1.Job(
            f"{name}-migrate",
            metadata={"namespace": ns, "labels": labels},
            spec={
                "backoffLimit": 3,
                "activeDeadlineSeconds": settings.rollout_timeout_seconds,
                "template": {
                    "metadata": {"labels": {**labels, "app.kubernetes.io/component": "migration"}},
                    "spec": {
                        **pod_common,
                        "restartPolicy": "Never",
                        "containers": [
                            {
                                "name": "migrate",
                                "image": settings.images.mlflow,
                                "command": ["mlflow-server-entrypoint", "migrate"],
                                "env": env,
                                "securityContext": container_security(),
                                "volumeMounts": mounts,
                                "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                                              "limits": {"cpu": "500m", "memory": "512Mi"}},
                            }
                        ],
                    },
                },
            },
            opts=child_opts(self, opts, custom_timeouts=timeout),
        )
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-server",
            metadata={"name": "mlflow-server", "namespace": ns, "labels": labels},
            spec={
                "replicas": 1,
                "selector": {"matchLabels": APP_LABELS},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        **pod_common,
                        "containers": [
                            {
                                "name": "mlflow-server",
                                "image": settings.images.mlflow,
                                "ports": [{"name": "http", "containerPort": CONTAINER_PORT}],
                                "env": env,
                                "startupProbe": _probe("/health", periodSeconds=5, failureThreshold=60),
                                "readinessProbe": _probe("/health", periodSeconds=10, timeoutSeconds=5),
                                "livenessProbe": _probe("/health", periodSeconds=20, timeoutSeconds=5,
                                                        failureThreshold=3),
                                "resources": {"requests": {"cpu": "250m", "memory": "512Mi"},
                                              "limits": {"cpu": "1", "memory": "1Gi"}},
                                "securityContext": container_security(),
                                "volumeMounts": mounts,
                            }
                        ],
                    },
                },
            },
            opts=child_opts(self, opts, depends_on=[self.migration], custom_timeouts=timeout),
        )
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata={"name": SERVICE_NAME, "namespace": ns, "labels": labels},
            spec={
                "type": "LoadBalancer",
                "selector": APP_LABELS,
                "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
                "loadBalancerSourceRanges": list(settings.mlflow.allowed_source_ranges),
            },
            opts=child_opts(self, opts, depends_on=[self.deployment], custom_timeouts=timeout),
        )
        self.tracking_uri = tracking_uri(ns)
        self.url = load_balancer_url(self.service, SERVICE_PORT)
        self.register_outputs({"url": self.url, "trackingUri": self.tracking_uri})


def load_balancer_url(service: k8s.core.v1.Service, port: int) -> pulumi.Output[str]:
    """http://<address> of a LoadBalancer Service (hostname on AWS/IBM, IP on GCP)."""

    def address(status) -> str:
        ingress = status.load_balancer.ingress[0]
        host = ingress.hostname or ingress.ip
        return f"http://{host}" if port == 80 else f"http://{host}:{port}"

    return service.status.apply(address)

"""Model serving: gunicorn Deployment loading models:/<name>@<alias>, behind a LoadBalancer."""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from infra.k8s.foundation import AUTH_SECRET, CLIENT_SERVICE_ACCOUNT
from infra.k8s.mlflow import load_balancer_url, secret_env
from infra.k8s.settings import WorkloadSettings, child_opts, container_security, pod_security, timeouts
from infra.naming import component_type

CONTAINER_PORT = 8080
SERVICE_PORT = 80
APP_LABELS = {"app.kubernetes.io/name": "serving"}


class ModelServing(pulumi.ComponentResource):
    """Deployment (awaited, readiness /readyz) and LoadBalancer Service (awaited)."""

    def __init__(
        self,
        name: str,
        settings: WorkloadSettings,
        tracking_uri: str,
        image_pull_secrets: list[dict],
        opts: Optional[pulumi.ResourceOptions] = None,
    ) -> None:
        super().__init__(component_type("k8s", ModelServing), name, None, opts)
        ns = settings.namespace
        labels = {**settings.labels, **APP_LABELS}
        timeout = timeouts(settings.rollout_timeout_seconds)
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata={"name": "serving", "namespace": ns, "labels": labels},
            spec={
                "replicas": settings.serving.replicas,
                "selector": {"matchLabels": APP_LABELS},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": CLIENT_SERVICE_ACCOUNT,
                        "automountServiceAccountToken": False,
                        "securityContext": pod_security(),
                        "imagePullSecrets": image_pull_secrets or None,
                        "containers": [
                            {
                                "name": "serving",
                                "image": settings.images.serving,
                                "ports": [{"name": "http", "containerPort": CONTAINER_PORT}],
                                "env": [
                                    {"name": "MLFLOW_TRACKING_URI", "value": tracking_uri},
                                    secret_env("MLFLOW_TRACKING_USERNAME", AUTH_SECRET, "username"),
                                    secret_env("MLFLOW_TRACKING_PASSWORD", AUTH_SECRET, "password"),
                                    {"name": "MODEL_NAME", "value": settings.mlflow.model_name},
                                    {"name": "MODEL_ALIAS", "value": settings.mlflow.model_alias},
                                    # The root filesystem is read-only; anything that writes under $HOME lands in /tmp.
                                    {"name": "HOME", "value": "/tmp"},
                                ],
                                "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"},
                                                   "periodSeconds": 10, "timeoutSeconds": 5},
                                "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"},
                                                  "initialDelaySeconds": 30, "periodSeconds": 20,
                                                  "timeoutSeconds": 5},
                                "resources": {"requests": {"cpu": "250m", "memory": "1Gi"},
                                              "limits": {"cpu": "1", "memory": "2Gi"}},
                                "securityContext": container_security(),
                                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                            }
                        ],
                        "volumes": [{"name": "tmp", "emptyDir": {}}],
                    },
                },
            },
            opts=child_opts(self, opts, custom_timeouts=timeout),
        )
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata={"name": "serving", "namespace": ns, "labels": labels},
            spec={
                "type": "LoadBalancer",
                "selector": APP_LABELS,
                "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
                "loadBalancerSourceRanges": list(settings.mlflow.allowed_source_ranges),
            },
            opts=child_opts(self, opts, depends_on=[self.deployment], custom_timeouts=timeout),
        )
        self.url = load_balancer_url(self.service, SERVICE_PORT)
        self.register_outputs({"url": self.url})

"""Namespace, Secrets and ServiceAccounts every workload builds on."""

from __future__ import annotations

import base64
import json
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.k8s.settings import WorkloadSettings, child_opts
from infra.naming import MLFLOW_SERVICE_ACCOUNT, component_type

DATABASE_SECRET = "mlflow-database"
AUTH_SECRET = "mlflow-auth"
ARTIFACT_STORE_SECRET = "mlflow-artifact-store"
PULL_SECRET = "registry-pull"
CLIENT_SERVICE_ACCOUNT = "mlflow-client"


def docker_config_json(server: str, username: str, password: str) -> str:
    """The .dockerconfigjson body of an image pull Secret."""
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    return json.dumps({"auths": {server: {"username": username, "password": password, "auth": auth}}})


class Foundation(pulumi.ComponentResource):
    """Namespace; database, auth, artifact-store and pull Secrets; the two ServiceAccounts."""

    def __init__(self, name: str, settings: WorkloadSettings, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(component_type("k8s", Foundation), name, None, opts)
        child = child_opts(self, opts)
        ns = settings.namespace
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata={"name": ns, "labels": dict(settings.labels)}, opts=child
        )
        in_ns = child_opts(self, opts, depends_on=[self.namespace])

        def meta(resource_name: str) -> dict:
            return {"name": resource_name, "namespace": ns, "labels": dict(settings.labels)}

        k8s.core.v1.Secret(
            f"{name}-database",
            metadata=meta(DATABASE_SECRET),
            type="Opaque",
            string_data={"password": settings.database.password},
            opts=in_ns,
        )
        self.admin_password = random.RandomPassword(f"{name}-mlflow-admin", length=24, special=False, opts=child)
        k8s.core.v1.Secret(
            f"{name}-auth",
            metadata=meta(AUTH_SECRET),
            type="Opaque",
            string_data={"username": settings.mlflow.admin_username, "password": self.admin_password.result},
            opts=in_ns,
        )
        if settings.s3_credentials is not None:
            k8s.core.v1.Secret(
                f"{name}-artifact-store",
                metadata=meta(ARTIFACT_STORE_SECRET),
                type="Opaque",
                string_data={
                    "AWS_ACCESS_KEY_ID": settings.s3_credentials.access_key_id,
                    "AWS_SECRET_ACCESS_KEY": settings.s3_credentials.secret_access_key,
                },
                opts=in_ns,
            )
        self.image_pull_secrets: list[dict] = []
        if settings.pull_credentials is not None:
            creds = settings.pull_credentials
            k8s.core.v1.Secret(
                f"{name}-registry-pull",
                metadata=meta(PULL_SECRET),
                type="kubernetes.io/dockerconfigjson",
                string_data={
                    ".dockerconfigjson": pulumi.Output.all(creds.server, creds.username, creds.password).apply(
                        lambda v: docker_config_json(*v)
                    )
                },
                opts=in_ns,
            )
            self.image_pull_secrets = [{"name": PULL_SECRET}]
        k8s.core.v1.ServiceAccount(
            f"{name}-mlflow-server",
            metadata={**meta(MLFLOW_SERVICE_ACCOUNT), "annotations": dict(settings.service_account_annotations)},
            automount_service_account_token=False,
            image_pull_secrets=self.image_pull_secrets or None,
            opts=in_ns,
        )
        k8s.core.v1.ServiceAccount(
            f"{name}-client",
            metadata=meta(CLIENT_SERVICE_ACCOUNT),
            automount_service_account_token=False,
            image_pull_secrets=self.image_pull_secrets or None,
            opts=in_ns,
        )
        self.register_outputs({"namespace": ns})

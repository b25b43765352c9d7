"""build(cfg): the one place that picks the cloud, then deploys the Kubernetes layer on it."""

from __future__ import annotations

import importlib

import pulumi

from infra import outputs
from infra.clouds.base import CloudOut
from infra.config import StackConfig
from infra.k8s.settings import Images, WorkloadSettings
from infra.k8s.workloads import deploy_workloads
from infra.naming import labels


def deploy_cloud(cfg: StackConfig) -> CloudOut:
    """Import only the chosen cloud's package (pulumi_ibm exists only where generated) and deploy it."""
    return importlib.import_module(f"infra.clouds.{cfg.cloud}").deploy(cfg)


def image_refs(cfg: StackConfig, registry_url: pulumi.Input[str]) -> Images:
    """Configured image references, or <registry>/<repository>:<imageTag> where a reference is empty."""

    def ref(configured: str, repository: str) -> pulumi.Input[str]:
        if configured:
            return configured
        return pulumi.Output.from_input(registry_url).apply(lambda url: f"{url}/{repository}:{cfg.images.tag}")

    return Images(
        mlflow=ref(cfg.images.mlflow, "mlflow-server"),
        trainer=ref(cfg.images.trainer, "trainer"),
        serving=ref(cfg.images.serving, "serving"),
    )


def workload_settings(cfg: StackConfig, cloud: CloudOut) -> WorkloadSettings:
    """The typed settings through which cloud differences reach the Kubernetes layer."""
    return WorkloadSettings(
        cloud=cfg.cloud,
        namespace=cfg.namespace,
        labels=labels(cfg),
        images=image_refs(cfg, cloud.registry.url),
        database=cloud.database,
        bucket=cloud.bucket,
        service_account_annotations=cloud.artifact_access.service_account_annotations,
        s3_credentials=cloud.artifact_access.s3_credentials,
        pull_credentials=cloud.registry.pull_credentials,
        mlflow=cfg.mlflow,
        training=cfg.training,
        serving=cfg.serving,
        rollout_timeout_seconds=cfg.rollout_timeout_seconds,
    )


def build(cfg: StackConfig) -> dict[str, pulumi.Input]:
    """Deploy the stack described by ``cfg``; returns the outputs keyed by infra.outputs constants."""
    cloud = deploy_cloud(cfg)
    if cfg.workloads:
        workloads = deploy_workloads(workload_settings(cfg, cloud), cloud.cluster.provider)
        mlflow_url, serving_url = workloads.mlflow_url, workloads.serving_url
        admin_password, training_job = workloads.admin_password, workloads.training_job
    else:
        # Same keys either way; empty until the workloads are deployed.
        mlflow_url = serving_url = training_job = ""
        admin_password = pulumi.Output.secret("")
    return {
        outputs.KUBECONFIG: cloud.cluster.kubeconfig,
        outputs.MLFLOW_URL: mlflow_url,
        outputs.SERVING_URL: serving_url,
        outputs.MLFLOW_ADMIN_USERNAME: cfg.mlflow.admin_username,
        outputs.MLFLOW_ADMIN_PASSWORD: admin_password,
        outputs.BUCKET_NAME: cloud.bucket.name,
        outputs.DATABASE_HOST: cloud.database.host,
        outputs.REGISTRY_URL: cloud.registry.url,
        outputs.CLOUD: cfg.cloud,
        outputs.NODE_INSTANCE_TYPE: cloud.cluster.node_instance_type,
        outputs.NODE_COUNT: cloud.cluster.node_count,
        outputs.KUBERNETES_VERSION: cloud.cluster.kubernetes_version,
        outputs.TRAINING_JOB: training_job,
    }

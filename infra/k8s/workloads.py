"""Deploys the whole Kubernetes layer onto one cluster through its explicit provider."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.k8s.foundation import Foundation
from infra.k8s.mlflow import MlflowServer
from infra.k8s.serving import ModelServing
from infra.k8s.settings import WorkloadSettings
from infra.k8s.training_job import TrainingJob


@dataclass(frozen=True)
class WorkloadsOut:
    """What the stack exports from the Kubernetes layer."""

    mlflow_url: pulumi.Output[str]
    serving_url: pulumi.Output[str]
    admin_password: pulumi.Output[str]
    training_job: str


def deploy_workloads(settings: WorkloadSettings, provider: k8s.Provider) -> WorkloadsOut:
    """Foundation, MLflow, the training Job (after MLflow is ready) and serving."""
    opts = pulumi.ResourceOptions(providers=[provider])
    foundation = Foundation("platform", settings, opts)
    after_foundation = pulumi.ResourceOptions(providers=[provider], depends_on=[foundation])
    mlflow = MlflowServer("mlflow", settings, foundation.image_pull_secrets, after_foundation)
    after_mlflow = pulumi.ResourceOptions(providers=[provider], depends_on=[foundation, mlflow])
    training = TrainingJob("training", settings, mlflow.tracking_uri, foundation.image_pull_secrets, after_mlflow)
    serving = ModelServing("serving", settings, mlflow.tracking_uri, foundation.image_pull_secrets, after_mlflow)
    return WorkloadsOut(
        mlflow_url=mlflow.url,
        serving_url=serving.url,
        admin_password=foundation.admin_password.result,
        training_job=training.name,
    )

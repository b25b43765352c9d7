"""Typed settings of the Kubernetes layer: the only way cloud differences reach it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import pulumi

from infra.clouds.base import BucketOut, DatabaseOut, RegistryCredentials, S3Credentials
from infra.config import MlflowConfig, ServingConfig, TrainingConfig


@dataclass(frozen=True)
class Images:
    """Resolved references of the three images."""

    mlflow: pulumi.Input[str]
    trainer: pulumi.Input[str]
    serving: pulumi.Input[str]


@dataclass(frozen=True)
class WorkloadSettings:
    """Everything the workloads need; cloud-specific only through the documented optional fields.

    Documented per-cloud differences: ``cloud`` (the trainer's CLOUD label),
    ``database.port``/``database.name``, ``bucket.artifacts_destination`` and
    ``bucket.s3_endpoint_url``, ``service_account_annotations`` (workload identity),
    ``s3_credentials`` (IBM HMAC key) and ``pull_credentials`` (IBM registry).
    """

    cloud: str
    namespace: str
    labels: Mapping[str, str]
    images: Images
    database: DatabaseOut
    bucket: BucketOut
    service_account_annotations: Mapping[str, pulumi.Input[str]]
    s3_credentials: Optional[S3Credentials]
    pull_credentials: Optional[RegistryCredentials]
    mlflow: MlflowConfig
    training: TrainingConfig
    serving: ServingConfig
    rollout_timeout_seconds: int


# Non-root user the three images must run as (any image that accepts an arbitrary UID works).
RUN_AS_USER = 10001


def pod_security() -> dict:
    """Pod securityContext shared by every workload: non-root, default seccomp."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "fsGroup": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security() -> dict:
    """Container securityContext: read-only root, no privilege escalation, no capabilities."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def timeouts(seconds: int) -> pulumi.CustomTimeouts:
    """Explicit await timeouts for create and update."""
    return pulumi.CustomTimeouts(create=f"{seconds}s", update=f"{seconds}s")


def child_opts(
    parent: pulumi.Resource,
    opts: Optional[pulumi.ResourceOptions],
    *,
    depends_on: Sequence[pulumi.Resource] = (),
    custom_timeouts: Optional[pulumi.CustomTimeouts] = None,
) -> pulumi.ResourceOptions:
    """Options of a component's child: parent, the component's own depends_on (children do not
    inherit it) plus ``depends_on``, and optional await timeouts."""
    inherited = [] if opts is None or opts.depends_on is None else opts.depends_on
    if not isinstance(inherited, (list, tuple)):
        inherited = [inherited]
    return pulumi.ResourceOptions(
        parent=parent, depends_on=[*inherited, *depends_on] or None, custom_timeouts=custom_timeouts
    )

"""The one interface every cloud implements: result types of its components.

Each cloud package (aws, gcp, ibm) has the components Network, Cluster,
Database, Bucket, Registry and ArtifactAccess with these results as their
``out`` attribute, and a ``deploy(cfg)`` that wires them into a CloudOut.
The Kubernetes layer sees only these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s


@dataclass(frozen=True)
class NetworkOut:
    """The private network: its id, the subnets the nodes use, and their CIDR."""

    network_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    node_cidr: pulumi.Input[str]


@dataclass(frozen=True)
class ClusterOut:
    """A ready cluster: the explicit Kubernetes provider and what the outputs report."""

    name: pulumi.Input[str]
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    kubernetes_version: str
    node_instance_type: str
    node_count: int


@dataclass(frozen=True)
class DatabaseOut:
    """Connection settings of the managed PostgreSQL; ``password`` is a secret Output."""

    host: pulumi.Input[str]
    port: pulumi.Input[int]
    name: pulumi.Input[str]
    username: pulumi.Input[str]
    password: pulumi.Output[str]


@dataclass(frozen=True)
class BucketOut:
    """The artifact bucket: name, MLflow artifacts destination, S3 endpoint where not AWS/GCP native."""

    name: pulumi.Input[str]
    artifacts_destination: pulumi.Input[str]
    s3_endpoint_url: Optional[pulumi.Input[str]] = None


@dataclass(frozen=True)
class RegistryCredentials:
    """Credentials a cluster needs to pull from the stack's registry (secret password)."""

    server: pulumi.Input[str]
    username: pulumi.Input[str]
    password: pulumi.Output[str]


@dataclass(frozen=True)
class RegistryOut:
    """The stack's image registry: URL prefix of the three images, pull credentials if the nodes lack them."""

    url: pulumi.Input[str]
    pull_credentials: Optional[RegistryCredentials] = None


@dataclass(frozen=True)
class S3Credentials:
    """An HMAC key pair for an S3-compatible API (both secret Outputs)."""

    access_key_id: pulumi.Output[str]
    secret_access_key: pulumi.Output[str]


@dataclass(frozen=True)
class ArtifactAccessOut:
    """How the MLflow server reaches the bucket: a ServiceAccount annotation or an HMAC key."""

    service_account_annotations: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    s3_credentials: Optional[S3Credentials] = None


@dataclass(frozen=True)
class CloudOut:
    """Everything one cloud hands to the Kubernetes layer and to the stack outputs."""

    network: NetworkOut
    cluster: ClusterOut
    database: DatabaseOut
    bucket: BucketOut
    registry: RegistryOut
    artifact_access: ArtifactAccessOut

"""GCP: VPC + Cloud NAT + GKE (Ubuntu nodes) + Cloud SQL PostgreSQL + GCS + Artifact Registry."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra.clouds.base import CloudOut
from infra.clouds.gcp.access import ArtifactAccess, ArtifactAccessArgs
from infra.clouds.gcp.bucket import Bucket, BucketArgs
from infra.clouds.gcp.cluster import Cluster, ClusterArgs
from infra.clouds.gcp.database import Database, DatabaseArgs
from infra.clouds.gcp.network import Network, NetworkArgs
from infra.clouds.gcp.registry import Registry, RegistryArgs
from infra.config import StackConfig
from infra.naming import MLFLOW_SERVICE_ACCOUNT, labels


def deploy(cfg: StackConfig) -> CloudOut:
    """Build the GCP side of the stack with one explicit, labelled provider."""
    provider = gcp.Provider("gcp", project=cfg.gcp_project, region=cfg.region, default_labels=labels(cfg))
    opts = pulumi.ResourceOptions(providers=[provider])
    prefix = cfg.name_prefix
    zone = cfg.zones[0]
    network = Network(prefix, NetworkArgs(region=cfg.region), opts)
    cluster = Cluster(prefix, ClusterArgs(cfg.cluster, cfg.gcp_project, zone, network.out), opts)
    database = Database(
        prefix,
        DatabaseArgs(cfg.database, cfg.region, zone, network.out.network_id, network.private_services),
        opts,
    )
    bucket = Bucket(prefix, BucketArgs(region=cfg.region), opts)
    registry = Registry(prefix, RegistryArgs(cfg.gcp_project, cfg.region, cluster.node_account.email), opts)
    access = ArtifactAccess(
        prefix,
        ArtifactAccessArgs(cfg.gcp_project, bucket.out.name, cfg.namespace, MLFLOW_SERVICE_ACCOUNT),
        opts,
    )
    return CloudOut(network.out, cluster.out, database.out, bucket.out, registry.out, access.out)

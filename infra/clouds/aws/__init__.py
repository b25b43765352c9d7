"""AWS: VPC + EKS (Ubuntu nodes) + RDS PostgreSQL + S3 + ECR, wired into a CloudOut."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.clouds.aws.access import ArtifactAccess, ArtifactAccessArgs
from infra.clouds.aws.bucket import Bucket
from infra.clouds.aws.cluster import Cluster, ClusterArgs
from infra.clouds.aws.database import Database, DatabaseArgs
from infra.clouds.aws.network import Network, NetworkArgs
from infra.clouds.aws.registry import Registry
from infra.clouds.base import CloudOut
from infra.config import StackConfig
from infra.naming import IMAGE_REPOSITORIES, MLFLOW_SERVICE_ACCOUNT, labels


def deploy(cfg: StackConfig) -> CloudOut:
    """Build the AWS side of the stack with one explicit, tagged provider."""
    provider = aws.Provider("aws", region=cfg.region, default_tags={"tags": labels(cfg)})
    opts = pulumi.ResourceOptions(providers=[provider])
    prefix = cfg.name_prefix
    network = Network(prefix, NetworkArgs(zones=cfg.zones, cluster_name=prefix), opts)
    cluster = Cluster(prefix, ClusterArgs(cfg.cluster, prefix, cfg.region, network.out), opts)
    database = Database(
        prefix,
        DatabaseArgs(
            config=cfg.database,
            vpc_id=network.out.network_id,
            subnet_ids=network.out.subnet_ids,
            zone=cfg.zones[0],
            client_security_group_id=cluster.security_group_id,
        ),
        opts,
    )
    bucket = Bucket(prefix, opts)
    registry = Registry(prefix, IMAGE_REPOSITORIES, opts)
    access = ArtifactAccess(
        prefix,
        ArtifactAccessArgs(
            oidc_provider_arn=cluster.oidc_provider.arn,
            oidc_issuer_host=cluster.oidc_issuer_host,
            bucket_arn=bucket.arn,
            namespace=cfg.namespace,
            service_account=MLFLOW_SERVICE_ACCOUNT,
        ),
        opts,
    )
    return CloudOut(network.out, cluster.out, database.out, bucket.out, registry.out, access.out)

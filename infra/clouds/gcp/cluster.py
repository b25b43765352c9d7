"""GCP cluster: zonal GKE with private Ubuntu nodes, Workload Identity, and a 3-node pool."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from infra.clouds import kubeconfig
from infra.clouds.base import ClusterOut, NetworkOut
from infra.clouds.gcp.network import PODS_RANGE, SERVICES_RANGE
from infra.config import ClusterConfig
from infra.naming import component_type

NODE_ROLES = (
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
)


@dataclass(frozen=True)
class ClusterArgs:
    """Cluster settings, project, zone and network."""

    config: ClusterConfig
    project: str
    zone: str
    network: NetworkOut


class Cluster(pulumi.ComponentResource):
    """Node service account, GKE control plane (default pool removed) and the node pool."""

    def __init__(self, name: str, args: ClusterArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(component_type("gcp", Cluster), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cfg = args.config
        # Nodes run as a minimal service account, not the project's default compute account.
        self.node_account = gcp.serviceaccount.Account(
            f"{name}-nodes", account_id=f"{name}-nodes", display_name="GKE nodes", opts=child
        )
        for role in NODE_ROLES:
            gcp.projects.IAMMember(
                f"{name}-nodes-{role.split('/')[1]}",
                project=args.project,
                role=role,
                member=self.node_account.email.apply(lambda e: f"serviceAccount:{e}"),
                opts=child,
            )
        self.gke = gcp.container.Cluster(
            f"{name}-gke",
            name=name,
            location=args.zone,
            network=args.network.network_id,
            subnetwork=args.network.subnet_ids[0],
            networking_mode="VPC_NATIVE",
            ip_allocation_policy={
                "cluster_secondary_range_name": PODS_RANGE,
                "services_secondary_range_name": SERVICES_RANGE,
            },
            # Private nodes reach the internet through Cloud NAT, the study's public gateway.
            private_cluster_config={
                "enable_private_nodes": True,
                "enable_private_endpoint": False,
                "master_ipv4_cidr_block": "172.16.0.32/28",
            },
            workload_identity_config={"workload_pool": f"{args.project}.svc.id.goog"},
            min_master_version=cfg.kubernetes_version,
            # A pinned version for a benchmark: no automatic channel upgrades.
            release_channel={"channel": "UNSPECIFIED"},
            remove_default_node_pool=True,
            initial_node_count=1,
            deletion_protection=False,
            opts=child,
        )
        self.node_pool = gcp.container.NodePool(
            f"{name}-nodes",
            cluster=self.gke.id,
            location=args.zone,
            node_count=cfg.node_count,
            version=self.gke.master_version,
            management={"auto_repair": True, "auto_upgrade": False},
            node_config={
                "machine_type": cfg.node_instance_type,
                "image_type": cfg.node_image,
                "disk_size_gb": cfg.node_disk_gb,
                "disk_type": "pd-balanced",
                "service_account": self.node_account.email,
                "oauth_scopes": ["https://www.googleapis.com/auth/cloud-platform"],
                "workload_metadata_config": {"mode": "GKE_METADATA"},
            },
            opts=child,
        )
        config = pulumi.Output.all(self.gke.name, self.gke.endpoint, self.gke.master_auth.cluster_ca_certificate).apply(
            lambda v: kubeconfig.render(
                v[0],
                f"https://{v[1]}",
                v[2],
                kubeconfig.exec_user("gke-gcloud-auth-plugin", [], {}),
            )
        )
        secret_config = pulumi.Output.secret(config)
        provider = k8s.Provider(
            f"{name}-k8s", kubeconfig=secret_config, opts=pulumi.ResourceOptions(parent=self, depends_on=[self.node_pool])
        )
        self.out = ClusterOut(
            name=self.gke.name,
            kubeconfig=secret_config,
            provider=provider,
            kubernetes_version=cfg.kubernetes_version,
            node_instance_type=cfg.node_instance_type,
            node_count=cfg.node_count,
        )
        self.register_outputs({"name": self.gke.name, "kubeconfig": secret_config})

"""IBM cluster: an IKS VPC cluster whose default pool is 3 Ubuntu workers of a 2-vCPU flavour."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_ibm as ibm
import pulumi_kubernetes as k8s

from infra.clouds import kubeconfig
from infra.clouds.base import ClusterOut, NetworkOut
from infra.config import ClusterConfig
from infra.naming import component_type


@dataclass(frozen=True)
class ClusterArgs:
    """Cluster settings, zone, network and resource group id."""

    config: ClusterConfig
    zone: str
    network: NetworkOut
    resource_group_id: pulumi.Input[str]


def _b64(pem: str) -> str:
    return base64.b64encode(pem.encode()).decode()


class Cluster(pulumi.ComponentResource):
    """ContainerVpcCluster (awaited until every worker is ready) and an admin-certificate kubeconfig."""

    def __init__(self, name: str, args: ClusterArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(component_type("ibm", Cluster), name, None, opts)
        cfg = args.config
        self.iks = ibm.ContainerVpcCluster(
            f"{name}-iks",
            name=name,
            vpc_id=args.network.network_id,
            flavor=cfg.node_instance_type,
            worker_count=cfg.node_count,
            operating_system=cfg.node_image,
            kube_version=cfg.kubernetes_version,
            zones=[{"name": args.zone, "subnet_id": args.network.subnet_ids[0]}],
            resource_group_id=args.resource_group_id,
            wait_till="IngressReady",
            disable_public_service_endpoint=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        access = ibm.get_container_cluster_config_output(
            cluster_name_id=self.iks.id,
            resource_group_id=args.resource_group_id,
            admin=True,
            download=False,
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        config = access.apply(
            lambda a: kubeconfig.render(
                name,
                a.host,
                _b64(a.ca_certificate),
                {"client-certificate-data": _b64(a.admin_certificate), "client-key-data": _b64(a.admin_key)},
            )
        )
        secret_config = pulumi.Output.secret(config)
        provider = k8s.Provider(f"{name}-k8s", kubeconfig=secret_config, opts=pulumi.ResourceOptions(parent=self))
        self.out = ClusterOut(
            name=self.iks.name,
            kubeconfig=secret_config,
            provider=provider,
            kubernetes_version=cfg.kubernetes_version,
            node_instance_type=cfg.node_instance_type,
            node_count=cfg.node_count,
        )
        self.register_outputs({"name": self.iks.name, "kubeconfig": secret_config})

"""AWS cluster: EKS with a managed node group of Canonical's Ubuntu EKS image.

Built from pulumi_aws primitives (not pulumi_eks) so every piece is visible to
the tests. Ubuntu comes through a launch template: EKS managed node groups only
offer Amazon Linux and Bottlerocket images of their own.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.clouds import kubeconfig
from infra.clouds.base import ClusterOut, NetworkOut
from infra.config import ClusterConfig
from infra.naming import component_type

CANONICAL_ACCOUNT = "099720109477"


@dataclass(frozen=True)
class ClusterArgs:
    """Cluster settings, its physical name, region and the network to run in."""

    config: ClusterConfig
    cluster_name: str
    region: str
    network: NetworkOut


def _assume_role(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


def bootstrap_user_data(cluster_name: str, endpoint: str, ca_data: str) -> str:
    """Launch-template user data (MIME multi-part, base64) joining a node to the cluster."""
    script = "\n".join(
        [
            "#!/bin/bash",
            "set -o errexit -o nounset -o pipefail",
            f"/etc/eks/bootstrap.sh {cluster_name} --apiserver-endpoint {endpoint} --b64-cluster-ca {ca_data}",
        ]
    )
    mime = "\n".join(
        [
            "MIME-Version: 1.0",
            'Content-Type: multipart/mixed; boundary="==BOUNDARY=="',
            "",
            "--==BOUNDARY==",
            'Content-Type: text/x-shellscript; charset="us-ascii"',
            "",
            script,
            "",
            "--==BOUNDARY==--",
            "",
        ]
    )
    return base64.b64encode(mime.encode()).decode()


class Cluster(pulumi.ComponentResource):
    """EKS control plane, IAM roles, OIDC provider, Ubuntu launch template and node group."""

    def __init__(self, name: str, args: ClusterArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(component_type("aws", Cluster), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cfg = args.config

        control_role = aws.iam.Role(f"{name}-control-plane", assume_role_policy=_assume_role("eks.amazonaws.com"), opts=child)
        control_policy = aws.iam.RolePolicyAttachment(
            f"{name}-control-plane",
            role=control_role.name,
            policy_arn="arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",
            opts=child,
        )
        self.eks = aws.eks.Cluster(
            f"{name}-eks",
            name=args.cluster_name,
            version=cfg.kubernetes_version,
            role_arn=control_role.arn,
            vpc_config={
                "subnet_ids": list(args.network.subnet_ids),
                "endpoint_public_access": True,
                "endpoint_private_access": True,
            },
            access_config={"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": True},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[control_policy]),
        )
        # EKS attaches this group to the control plane and to managed nodes; the database admits only it.
        self.security_group_id = self.eks.vpc_config.cluster_security_group_id
        issuer = self.eks.identities.apply(lambda ids: ids[0].oidcs[0].issuer)
        self.oidc_provider = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc", url=issuer, client_id_lists=["sts.amazonaws.com"], opts=child
        )
        self.oidc_issuer_host = issuer.apply(lambda url: url.removeprefix("https://"))

        node_role = aws.iam.Role(f"{name}-nodes", assume_role_policy=_assume_role("ec2.amazonaws.com"), opts=child)
        node_policies = [
            aws.iam.RolePolicyAttachment(
                f"{name}-nodes-{policy}",
                role=node_role.name,
                policy_arn=f"arn:aws:iam::aws:policy/{policy}",
                opts=child,
            )
            for policy in ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")
        ]
        ubuntu = aws.ec2.get_ami_output(
            owners=[CANONICAL_ACCOUNT],
            most_recent=True,
            filters=[
                {
                    "name": "name",
                    "values": [f"ubuntu-eks/k8s_{cfg.kubernetes_version}/images/*/ubuntu-*-{cfg.node_image}-amd64-server-*"],
                },
                {"name": "architecture", "values": ["x86_64"]},
            ],
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        user_data = pulumi.Output.all(self.eks.name, self.eks.endpoint, self.eks.certificate_authority.data).apply(
            lambda v: bootstrap_user_data(*v)
        )
        template = aws.ec2.LaunchTemplate(
            f"{name}-ubuntu",
            image_id=ubuntu.id,
            user_data=user_data,
            update_default_version=True,
            block_device_mappings=[
                {
                    "device_name": "/dev/sda1",
                    "ebs": {"volume_size": cfg.node_disk_gb, "volume_type": "gp3", "encrypted": "true",
                            "delete_on_termination": "true"},
                }
            ],
            # IMDSv2 with one hop: pods cannot borrow the node role; MLflow gets its own role (IRSA).
            metadata_options={"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1},
            opts=child,
        )
        self.node_group = aws.eks.NodeGroup(
            f"{name}-nodes",
            cluster_name=self.eks.name,
            node_role_arn=node_role.arn,
            # One subnet, one zone: the nodes sit together as in the study.
            subnet_ids=[args.network.subnet_ids[0]],
            instance_types=[cfg.node_instance_type],
            capacity_type="ON_DEMAND",
            ami_type="CUSTOM",
            scaling_config={"desired_size": cfg.node_count, "min_size": cfg.node_count, "max_size": cfg.node_count},
            launch_template={"id": template.id, "version": template.latest_version.apply(str)},
            opts=pulumi.ResourceOptions(parent=self, depends_on=node_policies),
        )

        config = pulumi.Output.all(self.eks.name, self.eks.endpoint, self.eks.certificate_authority.data).apply(
            lambda v: kubeconfig.render(
                v[0],
                v[1],
                v[2],
                kubeconfig.exec_user("aws", ["eks", "get-token", "--cluster-name", v[0], "--region", args.region]),
            )
        )
        secret_config = pulumi.Output.secret(config)
        provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=secret_config,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.node_group]),
        )
        self.out = ClusterOut(
            name=self.eks.name,
            kubeconfig=secret_config,
            provider=provider,
            kubernetes_version=cfg.kubernetes_version,
            node_instance_type=cfg.node_instance_type,
            node_count=cfg.node_count,
        )
        self.register_outputs({"name": self.eks.name, "kubeconfig": secret_config})

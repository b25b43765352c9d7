"""AWS network: a VPC with an internet gateway and one public subnet per zone.

The study ran on a single subnet. EKS's control plane and an RDS subnet group
both refuse fewer than two availability zones, so this network has exactly two
subnets; the node group itself uses only the first (one zone, like GCP/IBM).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws

from infra.clouds.base import NetworkOut
from infra.naming import component_type

VPC_CIDR = "10.0.0.0/16"


@dataclass(frozen=True)
class NetworkArgs:
    """Zones of the subnets and the EKS cluster name the subnets are tagged for."""

    zones: Sequence[str]
    cluster_name: str


class Network(pulumi.ComponentResource):
    """VPC, internet gateway, public route table and one /20 subnet per zone."""

    def __init__(self, name: str, args: NetworkArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(component_type("aws", Network), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=VPC_CIDR,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": f"{name}-vpc"},
            opts=child,
        )
        gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=self.vpc.id, opts=child)
        routes = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=self.vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": gateway.id}],
            opts=child,
        )
        self.subnets = []
        for index, zone in enumerate(args.zones):
            subnet = aws.ec2.Subnet(
                f"{name}-{zone}",
                vpc_id=self.vpc.id,
                cidr_block=f"10.0.{16 * index}.0/20",
                availability_zone=zone,
                # Nodes sit in public subnets behind the internet gateway (no NAT), as in the study.
                map_public_ip_on_launch=True,
                tags={
                    "Name": f"{name}-{zone}",
                    "kubernetes.io/role/elb": "1",
                    f"kubernetes.io/cluster/{args.cluster_name}": "shared",
                },
                opts=child,
            )
            aws.ec2.RouteTableAssociation(f"{name}-{zone}", subnet_id=subnet.id, route_table_id=routes.id, opts=child)
            self.subnets.append(subnet)

        self.out = NetworkOut(
            network_id=self.vpc.id,
            subnet_ids=[subnet.id for subnet in self.subnets],
            node_cidr=self.subnets[0].cidr_block,
        )
        self.register_outputs({"vpcId": self.vpc.id, "subnetIds": self.out.subnet_ids})

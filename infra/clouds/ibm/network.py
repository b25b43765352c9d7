"""IBM network: a VPC, one subnet and a public gateway (the study's layout)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_ibm as ibm

from infra.clouds.base import NetworkOut
from infra.naming import component_type


@dataclass(frozen=True)
class NetworkArgs:
    """Zone of the subnet and gateway, resource group id."""

    zone: str
    resource_group_id: pulumi.Input[str]


class Network(pulumi.ComponentResource):
    """VPC, public gateway and a 256-address subnet behind it."""

    def __init__(self, name: str, args: NetworkArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(component_type("ibm", Network), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.vpc = ibm.IsVpc(
            f"{name}-vpc", name=f"{name}-vpc", resource_group=args.resource_group_id,
            address_prefix_management="auto", opts=child,
        )
        gateway = ibm.IsPublicGateway(
            f"{name}-gateway", name=f"{name}-gateway", vpc=self.vpc.id, zone=args.zone,
            resource_group=args.resource_group_id, opts=child,
        )
        self.subnet = ibm.IsSubnet(
            f"{name}-nodes",
            name=f"{name}-nodes",
            vpc=self.vpc.id,
            zone=args.zone,
            total_ipv4_address_count=256,
            public_gateway=gateway.id,
            resource_group=args.resource_group_id,
            opts=child,
        )
        self.out = NetworkOut(network_id=self.vpc.id, subnet_ids=[self.subnet.id], node_cidr=self.subnet.ipv4_cidr_block)
        self.register_outputs({"vpcId": self.vpc.id, "subnetId": self.subnet.id})

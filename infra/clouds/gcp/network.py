"""GCP network: a custom-mode VPC with one subnet (pod/service secondary ranges), Cloud Router + NAT
as the public gateway, and the private-services peering Cloud SQL's private IP needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_gcp as gcp

from infra.clouds.base import NetworkOut
from infra.naming import component_type

NODE_CIDR = "10.10.0.0/20"
PODS_RANGE = "pods"
SERVICES_RANGE = "services"


@dataclass(frozen=True)
class NetworkArgs:
    """The region of the subnet, router and NAT."""

    region: str


class Network(pulumi.ComponentResource):
    """VPC, subnet, router, NAT, reserved peering range and service-networking connection."""

    def __init__(self, name: str, args: NetworkArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(component_type("gcp", Network), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.vpc = gcp.compute.Network(
            f"{name}-vpc", auto_create_subnetworks=False, routing_mode="REGIONAL", opts=child
        )
        self.subnet = gcp.compute.Subnetwork(
            f"{name}-nodes",
            network=self.vpc.id,
            region=args.region,
            ip_cidr_range=NODE_CIDR,
            private_ip_google_access=True,
            secondary_ip_ranges=[
                {"range_name": PODS_RANGE, "ip_cidr_range": "10.20.0.0/16"},
                {"range_name": SERVICES_RANGE, "ip_cidr_range": "10.30.0.0/20"},
            ],
            opts=child,
        )
        router = gcp.compute.Router(f"{name}-router", network=self.vpc.id, region=args.region, opts=child)
        gcp.compute.RouterNat(
            f"{name}-nat",
            router=router.name,
            region=args.region,
            nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
            opts=child,
        )
        peering_range = gcp.compute.GlobalAddress(
            f"{name}-private-services",
            purpose="VPC_PEERING",
            address_type="INTERNAL",
            prefix_length=16,
            network=self.vpc.id,
            opts=child,
        )
        self.private_services = gcp.servicenetworking.Connection(
            f"{name}-private-services",
            network=self.vpc.id,
            service="servicenetworking.googleapis.com",
            reserved_peering_ranges=[peering_range.name],
            # Deleting the peering while Cloud SQL's producer side still holds it fails; the
            # network's own deletion removes it, so destroy abandons it instead.
            deletion_policy="ABANDON",
            opts=child,
        )
        self.out = NetworkOut(network_id=self.vpc.id, subnet_ids=[self.subnet.id], node_cidr=NODE_CIDR)
        self.register_outputs({"networkId": self.vpc.id, "subnetId": self.subnet.id})

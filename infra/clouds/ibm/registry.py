"""IBM registry: an IBM Container Registry namespace and a read-only pull key for the cluster.

IKS only puts its own pull secret in the `default` namespace, so the workloads get
a service ID allowed to read this registry namespace and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_ibm as ibm
import pulumi_random as random

from infra.clouds.base import RegistryCredentials, RegistryOut
from infra.naming import component_type


@dataclass(frozen=True)
class RegistryArgs:
    """Registry host of the region, the region and the resource group."""

    registry_host: str
    region: str
    resource_group_id: pulumi.Input[str]


class Registry(pulumi.ComponentResource):
    """ICR namespace (globally unique, so suffixed), pull service ID, Reader policy and API key."""

    def __init__(self, name: str, args: RegistryArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(component_type("ibm", Registry), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        suffix = random.RandomString(f"{name}-registry-suffix", length=6, special=False, upper=False, opts=child)
        self.namespace = ibm.CrNamespace(
            f"{name}-images",
            name=suffix.result.apply(lambda s: f"{name}-{s}"),
            resource_group_id=args.resource_group_id,
            opts=child,
        )
        puller = ibm.IamServiceId(f"{name}-puller", name=f"{name}-image-puller", opts=child)
        ibm.IamServicePolicy(
            f"{name}-puller-reader",
            iam_service_id=puller.id,
            roles=["Reader"],
            # One block (MaxItems: 1 in the provider), so the generated SDK takes an object, not a list.
            resources={
                "service": "container-registry",
                "region": args.region,
                "resource_type": "namespace",
                "resource": self.namespace.name,
            },
            opts=child,
        )
        api_key = ibm.IamServiceApiKey(f"{name}-puller-key", name=f"{name}-image-puller", iam_service_id=puller.iam_id,
                                       opts=child)
        url = self.namespace.name.apply(lambda ns: f"{args.registry_host}/{ns}")
        self.out = RegistryOut(
            url=url,
            pull_credentials=RegistryCredentials(
                server=args.registry_host, username="iamapikey", password=pulumi.Output.secret(api_key.apikey)
            ),
        )
        self.register_outputs({"url": url})

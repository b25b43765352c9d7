"""GCP registry: one Artifact Registry Docker repository; only the node service account may pull."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_gcp as gcp

from infra.clouds.base import RegistryOut
from infra.naming import component_type


@dataclass(frozen=True)
class RegistryArgs:
    """Project, region, and the node service account granted read access."""

    project: str
    region: str
    node_account_email: pulumi.Input[str]


class Registry(pulumi.ComponentResource):
    """Docker repository <region>-docker.pkg.dev/<project>/<name> and its reader binding."""

    def __init__(self, name: str, args: RegistryArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(component_type("gcp", Registry), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        repo = gcp.artifactregistry.Repository(
            f"{name}-images", repository_id=name, location=args.region, format="DOCKER", opts=child
        )
        gcp.artifactregistry.RepositoryIamMember(
            f"{name}-nodes-pull",
            project=args.project,
            location=args.region,
            repository=repo.repository_id,
            role="roles/artifactregistry.reader",
            member=pulumi.Output.from_input(args.node_account_email).apply(lambda e: f"serviceAccount:{e}"),
            opts=child,
        )
        url = repo.repository_id.apply(lambda r: f"{args.region}-docker.pkg.dev/{args.project}/{r}")
        self.out = RegistryOut(url=url)
        self.register_outputs({"url": url})

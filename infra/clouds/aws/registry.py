"""AWS registry: one ECR repository per image under the stack's prefix; nodes pull with their role."""

from __future__ import annotations

from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws

from infra.clouds.base import RegistryOut
from infra.naming import component_type


class Registry(pulumi.ComponentResource):
    """ECR repositories ``<prefix>/<image>``; the URL is the shared prefix."""

    def __init__(self, name: str, images: Sequence[str], opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(component_type("aws", Registry), name, None, opts)
        self.repositories = [
            aws.ecr.Repository(
                f"{name}-{image}",
                name=f"{name}/{image}",
                force_delete=True,
                image_scanning_configuration={"scan_on_push": True},
                opts=pulumi.ResourceOptions(parent=self),
            )
            for image in images
        ]
        url = self.repositories[0].repository_url.apply(lambda u: u.rsplit("/", 1)[0])
        self.out = RegistryOut(url=url)
        self.register_outputs({"url": url})

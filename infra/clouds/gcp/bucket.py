"""GCP bucket: GCS with uniform access, public access prevention enforced, force-destroy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_gcp as gcp

from infra.clouds.base import BucketOut
from infra.naming import component_type


@dataclass(frozen=True)
class BucketArgs:
    """Region of the bucket."""

    region: str


class Bucket(pulumi.ComponentResource):
    """The MLflow artifact bucket (auto-named: bucket names are global)."""

    def __init__(self, name: str, args: BucketArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(component_type("gcp", Bucket), name, None, opts)
        self.bucket = gcp.storage.Bucket(
            f"{name}-artifacts",
            location=args.region.upper(),
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            force_destroy=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.out = BucketOut(name=self.bucket.name, artifacts_destination=self.bucket.name.apply(lambda b: f"gs://{b}"))
        self.register_outputs({"name": self.bucket.name})

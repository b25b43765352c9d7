"""IBM bucket: a Cloud Object Storage instance holding only the artifact bucket (private, force-delete)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_ibm as ibm
import pulumi_random as random

from infra.clouds.base import BucketOut
from infra.naming import component_type


@dataclass(frozen=True)
class BucketArgs:
    """Region of the bucket and the resource group."""

    region: str
    resource_group_id: pulumi.Input[str]


class Bucket(pulumi.ComponentResource):
    """COS instance + regional bucket; S3 clients use the bucket's regional private endpoint.

    COS buckets are private unless a public-access IAM policy is added; none is.
    """

    def __init__(self, name: str, args: BucketArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(component_type("ibm", Bucket), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.instance = ibm.ResourceInstance(
            f"{name}-cos",
            name=f"{name}-cos",
            service="cloud-object-storage",
            plan="standard",
            location="global",
            resource_group_id=args.resource_group_id,
            opts=child,
        )
        # Bucket names are global across IBM Cloud.
        suffix = random.RandomString(f"{name}-bucket-suffix", length=8, special=False, upper=False, opts=child)
        self.bucket = ibm.CosBucket(
            f"{name}-artifacts",
            bucket_name=suffix.result.apply(lambda s: f"{name}-artifacts-{s}"),
            resource_instance_id=self.instance.id,
            region_location=args.region,
            storage_class="standard",
            force_delete=True,
            opts=child,
        )
        endpoint = self.bucket.s3_endpoint_private.apply(lambda e: e if e.startswith("https://") else f"https://{e}")
        self.out = BucketOut(
            name=self.bucket.bucket_name,
            artifacts_destination=self.bucket.bucket_name.apply(lambda b: f"s3://{b}"),
            s3_endpoint_url=endpoint,
        )
        self.register_outputs({"name": self.bucket.bucket_name})

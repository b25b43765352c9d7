"""AWS bucket: S3 with public access blocked, encryption at rest, owner-enforced objects, force-destroy."""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_aws as aws

from infra.clouds.base import BucketOut
from infra.naming import component_type


class Bucket(pulumi.ComponentResource):
    """The MLflow artifact bucket; ``arn`` is what the IRSA policy is scoped to."""

    def __init__(self, name: str, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(component_type("aws", Bucket), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.bucket = aws.s3.Bucket(f"{name}-artifacts", bucket_prefix=f"{name}-", force_destroy=True, opts=child)
        aws.s3.BucketPublicAccessBlock(
            f"{name}-artifacts",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-artifacts", bucket=self.bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=child
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-artifacts",
            bucket=self.bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
            opts=child,
        )
        self.arn = self.bucket.arn
        self.out = BucketOut(
            name=self.bucket.bucket, artifacts_destination=self.bucket.bucket.apply(lambda b: f"s3://{b}")
        )
        self.register_outputs({"name": self.bucket.bucket})

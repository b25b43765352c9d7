"""AWS artifact access: an IAM role for the MLflow ServiceAccount (IRSA), allowed on this bucket only."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws

from infra.clouds.base import ArtifactAccessOut
from infra.naming import component_type

ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"


@dataclass(frozen=True)
class ArtifactAccessArgs:
    """The cluster's OIDC provider, the bucket, and the ServiceAccount allowed to assume the role."""

    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer_host: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    namespace: str
    service_account: str


def trust_policy(provider_arn: str, issuer_host: str, namespace: str, service_account: str) -> str:
    """Only ``system:serviceaccount:<namespace>:<service_account>`` may assume the role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            f"{issuer_host}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                            f"{issuer_host}:aud": "sts.amazonaws.com",
                        }
                    },
                }
            ],
        }
    )


def bucket_policy(bucket_arn: str) -> str:
    """List the bucket, read/write/delete its objects: nothing else, nowhere else."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"], "Resource": bucket_arn},
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                    "Resource": f"{bucket_arn}/*",
                },
            ],
        }
    )


class ArtifactAccess(pulumi.ComponentResource):
    """IRSA role + inline bucket policy; the result annotates the MLflow ServiceAccount."""

    def __init__(self, name: str, args: ArtifactAccessArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(component_type("aws", ArtifactAccess), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = aws.iam.Role(
            f"{name}-mlflow",
            assume_role_policy=pulumi.Output.all(args.oidc_provider_arn, args.oidc_issuer_host).apply(
                lambda v: trust_policy(v[0], v[1], args.namespace, args.service_account)
            ),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-mlflow-bucket",
            role=self.role.id,
            policy=pulumi.Output.from_input(args.bucket_arn).apply(bucket_policy),
            opts=child,
        )
        self.out = ArtifactAccessOut(service_account_annotations={ROLE_ANNOTATION: self.role.arn})
        self.register_outputs({"roleArn": self.role.arn})

"""GCP artifact access: a Google service account for the MLflow KSA (Workload Identity), objects of this bucket only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_gcp as gcp

from infra.clouds.base import ArtifactAccessOut
from infra.naming import component_type

GSA_ANNOTATION = "iam.gke.io/gcp-service-account"
BUCKET_ROLE = "roles/storage.objectAdmin"


@dataclass(frozen=True)
class ArtifactAccessArgs:
    """Project, the bucket, and the Kubernetes ServiceAccount that may impersonate."""

    project: str
    bucket_name: pulumi.Input[str]
    namespace: str
    service_account: str


class ArtifactAccess(pulumi.ComponentResource):
    """GSA, bucket-level objectAdmin for it, workloadIdentityUser for exactly one KSA."""

    def __init__(self, name: str, args: ArtifactAccessArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(component_type("gcp", ArtifactAccess), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.account = gcp.serviceaccount.Account(
            f"{name}-mlflow", account_id=f"{name}-mlflow", display_name="MLflow artifact store", opts=child
        )
        gcp.storage.BucketIAMMember(
            f"{name}-mlflow-bucket",
            bucket=args.bucket_name,
            role=BUCKET_ROLE,
            member=self.account.email.apply(lambda e: f"serviceAccount:{e}"),
            opts=child,
        )
        gcp.serviceaccount.IAMMember(
            f"{name}-mlflow-workload-identity",
            service_account_id=self.account.name,
            role="roles/iam.workloadIdentityUser",
            member=f"serviceAccount:{args.project}.svc.id.goog[{args.namespace}/{args.service_account}]",
            opts=child,
        )
        self.out = ArtifactAccessOut(service_account_annotations={GSA_ANNOTATION: self.account.email})
        self.register_outputs({"email": self.account.email})

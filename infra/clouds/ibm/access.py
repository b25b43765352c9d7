"""IBM artifact access: an HMAC resource key with Writer on the stack's own COS instance.

The instance holds only the artifact bucket, so the key reaches that bucket and
nothing else; the key pair goes to the MLflow server as a Kubernetes Secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_ibm as ibm

from infra.clouds.base import ArtifactAccessOut, S3Credentials
from infra.naming import component_type

KEY_ROLE = "Writer"


@dataclass(frozen=True)
class ArtifactAccessArgs:
    """The COS instance the key is bound to."""

    cos_instance_id: pulumi.Input[str]


class ArtifactAccess(pulumi.ComponentResource):
    """ibm_resource_key with HMAC=true; credentials exposed only as secret Outputs."""

    def __init__(self, name: str, args: ArtifactAccessArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(component_type("ibm", ArtifactAccess), name, None, opts)
        self.key = ibm.ResourceKey(
            f"{name}-mlflow-hmac",
            name=f"{name}-mlflow-hmac",
            role=KEY_ROLE,
            resource_instance_id=args.cos_instance_id,
            # A map of strings: the provider turns "true" into the boolean COS expects.
            parameters={"HMAC": "true"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        credentials = self.key.credentials
        self.out = ArtifactAccessOut(
            s3_credentials=S3Credentials(
                access_key_id=pulumi.Output.secret(credentials.apply(lambda c: c["cos_hmac_keys.access_key_id"])),
                secret_access_key=pulumi.Output.secret(
                    credentials.apply(lambda c: c["cos_hmac_keys.secret_access_key"])
                ),
            )
        )
        self.register_outputs({})

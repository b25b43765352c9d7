"""The pulumi_ibm test double behaves like the SDK `pulumi install` generates from the IBM Terraform provider."""

from __future__ import annotations

import re

import pulumi
import pytest

import pulumi_ibm as ibm
from tests.infra.harness import load_stack, run_program

RESOURCE_CLASSES = [v for v in vars(ibm).values() if isinstance(v, type) and issubclass(v, pulumi.CustomResource)
                    and not issubclass(v, pulumi.ProviderResource)]


def bridge_token(terraform_type: str) -> str:
    """The Terraform bridge's token for a resource: ibm_is_vpc -> ibm:index/isVpc:IsVpc."""
    words = terraform_type.removeprefix("ibm_").split("_")
    pascal = "".join(w[:1].upper() + w[1:] for w in words)
    return f"ibm:index/{pascal[:1].lower() + pascal[1:]}:{pascal}"


@pytest.mark.parametrize("cls", RESOURCE_CLASSES, ids=lambda c: c.__name__)
def test_each_resource_carries_the_bridge_token_of_its_terraform_resource(cls):
    assert re.fullmatch(r"ibm(_[a-z0-9]+)+", cls.TERRAFORM_TYPE)
    assert cls.TOKEN == bridge_token(cls.TERRAFORM_TYPE)


def test_the_ibm_program_registers_only_double_resources_with_bridge_tokens():
    run = run_program(load_stack("ibm"))
    tokens = {r.typ for r in run.registrations if r.typ.startswith("ibm:")}
    assert tokens and tokens <= {cls.TOKEN for cls in RESOURCE_CLASSES}


@pytest.mark.parametrize(
    ("cls", "bad"),
    [
        (ibm.IsVpc, "cidr_block"),
        (ibm.ContainerVpcCluster, "node_count"),
        # Terraform's repeated blocks become plural arguments in the generated SDK.
        (ibm.Database, "allowlist"),
        (ibm.Database, "whitelist"),
        (ibm.CosBucket, "allowed_ip"),
        (ibm.CosBucket, "expire_rule"),
        (ibm.CosBucket, "public_access_block"),
        (ibm.ResourceKey, "hmac"),
    ],
)
def test_unknown_argument_is_a_type_error(cls, bad):
    with pytest.raises(TypeError, match=bad):
        cls("x", **{bad: "value"})


def test_nested_block_keys_and_shapes_are_checked():
    with pytest.raises(TypeError, match="cidr"):
        ibm.Database("x", allowlists=[{"cidr": "10.0.0.0/24"}])
    with pytest.raises(TypeError, match="MaxItems: 1"):
        ibm.IamServicePolicy("x", resources=[{"service": "container-registry"}])
    with pytest.raises(TypeError, match="map of strings"):
        ibm.ResourceKey("x", parameters={"HMAC": True})


def test_invoke_arguments_are_checked_too():
    with pytest.raises(TypeError, match="cluster_name"):
        ibm.get_container_cluster_config_output(cluster_name="x")

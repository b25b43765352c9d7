"""The pulumi_ibm test double refuses arguments the IBM Terraform provider does not have."""

from __future__ import annotations

import pytest

import pulumi_ibm as ibm


@pytest.mark.parametrize(
    ("cls", "bad"),
    [(ibm.IsVpc, "cidr_block"), (ibm.ContainerVpcCluster, "node_count"), (ibm.Database, "allowed_cidrs"),
     (ibm.CosBucket, "public_access_block"), (ibm.ResourceKey, "hmac")],
)
def test_unknown_argument_is_a_type_error(cls, bad):
    with pytest.raises(TypeError, match=bad):
        cls("x", **{bad: "value"})


def test_type_tokens_are_the_generated_sdk_ones():
    assert ibm.IsVpc.TOKEN == "ibm:index/isVpc:IsVpc"
    assert ibm.ContainerVpcCluster.TOKEN == "ibm:index/containerVpcCluster:ContainerVpcCluster"
    assert ibm.CosBucket.TOKEN == "ibm:index/cosBucket:CosBucket"


def test_invoke_arguments_are_checked_too():
    with pytest.raises(TypeError, match="cluster_name"):
        ibm.get_container_cluster_config_output(cluster_name="x")

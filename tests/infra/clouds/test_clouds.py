"""Per-cloud policies over the whole program run for each committed stack, each shown able to fail."""

from __future__ import annotations

from collections import Counter

import pulumi_aws
import pulumi_gcp
import pulumi_ibm
import pytest

from tests.infra import invariants
from tests.infra.harness import load_stack, run_program
from infra import config as infra_config

# The inventory each stack must build (type -> count). Only the cloud resources; the
# Kubernetes layer is checked in tests/infra/k8s.
INVENTORY = {
    "aws": {
        "aws:ec2/vpc:Vpc": 1, "aws:ec2/internetGateway:InternetGateway": 1, "aws:ec2/subnet:Subnet": 2,
        "aws:ec2/routeTable:RouteTable": 1, "aws:ec2/routeTableAssociation:RouteTableAssociation": 2,
        "aws:eks/cluster:Cluster": 1, "aws:eks/nodeGroup:NodeGroup": 1, "aws:ec2/launchTemplate:LaunchTemplate": 1,
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider": 1, "aws:iam/role:Role": 3,
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment": 4, "aws:iam/rolePolicy:RolePolicy": 1,
        "aws:rds/instance:Instance": 1, "aws:rds/subnetGroup:SubnetGroup": 1, "aws:rds/parameterGroup:ParameterGroup": 1,
        "aws:ec2/securityGroup:SecurityGroup": 1, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": 1,
        "aws:s3/bucket:Bucket": 1, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": 1,
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls": 1,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": 1,
        "aws:ecr/repository:Repository": 3,
    },
    "gcp": {
        "gcp:compute/network:Network": 1, "gcp:compute/subnetwork:Subnetwork": 1, "gcp:compute/router:Router": 1,
        "gcp:compute/routerNat:RouterNat": 1, "gcp:compute/globalAddress:GlobalAddress": 1,
        "gcp:servicenetworking/connection:Connection": 1, "gcp:container/cluster:Cluster": 1,
        "gcp:container/nodePool:NodePool": 1, "gcp:serviceaccount/account:Account": 2,
        "gcp:projects/iAMMember:IAMMember": 4, "gcp:sql/databaseInstance:DatabaseInstance": 1,
        "gcp:sql/database:Database": 1, "gcp:sql/user:User": 1, "gcp:storage/bucket:Bucket": 1,
        "gcp:storage/bucketIAMMember:BucketIAMMember": 1, "gcp:serviceaccount/iAMMember:IAMMember": 1,
        "gcp:artifactregistry/repository:Repository": 1,
        "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember": 1,
    },
    "ibm": {
        "ibm:index/isVpc:IsVpc": 1, "ibm:index/isPublicGateway:IsPublicGateway": 1, "ibm:index/isSubnet:IsSubnet": 1,
        "ibm:index/containerVpcCluster:ContainerVpcCluster": 1, "ibm:index/database:Database": 1,
        "ibm:index/resourceInstance:ResourceInstance": 1, "ibm:index/cosBucket:CosBucket": 1,
        "ibm:index/resourceKey:ResourceKey": 1, "ibm:index/crNamespace:CrNamespace": 1,
        "ibm:index/iamServiceId:IamServiceId": 1, "ibm:index/iamServicePolicy:IamServicePolicy": 1,
        "ibm:index/iamServiceApiKey:IamServiceApiKey": 1,
    },
}


def cloud_inventory(run) -> Counter:
    return Counter(r.typ for r in run.registrations if r.custom and r.typ.split(":")[0] == run.cfg.cloud)


def test_inventory_per_cloud(run, stack):
    assert cloud_inventory(run) == Counter(INVENTORY[stack])
    assert len(run.of_type(f"pulumi:providers:{stack}")) == 1


def test_inventory_notices_a_missing_resource(monkeypatch):
    monkeypatch.setattr(pulumi_aws.s3, "BucketPublicAccessBlock", lambda *a, **k: None)
    assert cloud_inventory(run_program(load_stack("aws"))) != Counter(INVENTORY["aws"])


def test_three_ubuntu_nodes_of_a_2_vcpu_type(run):
    assert invariants.node_violations(run) == []


def test_node_types_share_the_memory_class(runs):
    shapes = {s: infra_config.node_shape(s, invariants.nodes(r)[0]) for s, r in runs.items()}
    assert len({(x.vcpus, x.memory_gib) for x in shapes.values()}) == 1, shapes


@pytest.mark.parametrize(("stack", "overrides"), [("aws", {"nodeCount": 2}), ("gcp", {"nodeInstanceType": "n2-standard-4"}),
                                                  ("ibm", {"nodeImage": "REDHAT_8_64"})])
def test_node_check_fails_on_a_wrong_pool(stack, overrides):
    assert invariants.node_violations(run_program(load_stack(stack, **overrides)))


def test_database_is_private_tls_only_and_destroyable(run):
    assert invariants.database_violations(run) == []
    assert invariants.destroy_violations(run) == []


def _with_args(monkeypatch, module, name, **changes):
    """Replace module.name by a subclass that alters constructor arguments (the program, broken on purpose)."""
    original = getattr(module, name)

    class Broken(original):  # type: ignore[misc, valid-type]
        def __init__(self, resource_name, *args, **kwargs):
            for key, change in changes.items():
                kwargs[key] = change(kwargs.get(key)) if callable(change) else change
            super().__init__(resource_name, *args, **kwargs)

    Broken.__name__ = original.__name__
    monkeypatch.setattr(module, name, Broken)


@pytest.mark.parametrize(
    ("stack", "module", "name", "changes", "expected"),
    [
        ("aws", pulumi_aws.rds, "Instance", {"publicly_accessible": True}, "publicly accessible"),
        ("aws", pulumi_aws.rds, "Instance", {"skip_final_snapshot": False}, "final snapshot"),
        ("aws", pulumi_aws.rds, "ParameterGroup", {"parameters": []}, "TLS"),
        ("aws", pulumi_aws.vpc, "SecurityGroupIngressRule",
         {"referenced_security_group_id": None, "cidr_ipv4": "0.0.0.0/0"}, "open CIDR"),
        ("gcp", pulumi_gcp.sql, "DatabaseInstance",
         {"settings": lambda s: {**s, "ip_configuration": {**s["ip_configuration"], "ipv4_enabled": True}}}, "public IPv4"),
        ("gcp", pulumi_gcp.sql, "DatabaseInstance",
         {"settings": lambda s: {**s, "ip_configuration": {**s["ip_configuration"], "ssl_mode": "ALLOW_UNENCRYPTED_AND_ENCRYPTED"}}},
         "plaintext"),
        ("gcp", pulumi_gcp.sql, "DatabaseInstance", {"deletion_protection": True}, "deletion protection"),
        ("ibm", pulumi_ibm, "Database", {"service_endpoints": "public-and-private"}, "not private"),
        ("ibm", pulumi_ibm, "Database", {"allowlists": [{"address": "0.0.0.0/0"}]}, "0.0.0.0/0"),
    ],
)
def test_database_check_fails_when_the_program_is_broken(monkeypatch, stack, module, name, changes, expected):
    _with_args(monkeypatch, module, name, **changes)
    problems = invariants.database_violations(run_program(load_stack(stack)))
    assert any(expected in p for p in problems), problems


def test_destroy_check_fails_when_gke_is_protected(monkeypatch):
    _with_args(monkeypatch, pulumi_gcp.container, "Cluster", deletion_protection=True)
    assert invariants.destroy_violations(run_program(load_stack("gcp")))


def test_bucket_is_private_and_force_destroys(run):
    assert invariants.bucket_violations(run) == []


@pytest.mark.parametrize(
    ("stack", "module", "name", "changes", "expected"),
    [
        ("aws", pulumi_aws.s3, "Bucket", {"force_destroy": False}, "force-destroyed"),
        ("aws", pulumi_aws.s3, "BucketPublicAccessBlock", {"restrict_public_buckets": False}, "not fully blocked"),
        ("gcp", pulumi_gcp.storage, "Bucket", {"public_access_prevention": "inherited"}, "prevention"),
        ("ibm", pulumi_ibm, "CosBucket", {"force_delete": False}, "force-deleted"),
    ],
)
def test_bucket_check_fails_when_the_program_is_broken(monkeypatch, stack, module, name, changes, expected):
    _with_args(monkeypatch, module, name, **changes)
    problems = invariants.bucket_violations(run_program(load_stack(stack)))
    assert any(expected in p for p in problems), problems


def test_artifact_access_reaches_this_bucket_only(run):
    assert invariants.access_violations(run) == []


@pytest.mark.parametrize(
    ("stack", "module", "name", "changes", "expected"),
    [
        ("aws", pulumi_aws.iam, "RolePolicy",
         {"policy": '{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}'}, "reaches *"),
        ("gcp", pulumi_gcp.storage, "BucketIAMMember", {"role": "roles/storage.admin"}, "roles/storage.admin"),
        ("gcp", pulumi_gcp.serviceaccount, "IAMMember",
         {"member": "serviceAccount:mlflow-study-test.svc.id.goog[mlflow/default]"}, "workload identity"),
        ("ibm", pulumi_ibm, "ResourceKey", {"role": "Manager"}, "Manager"),
        ("ibm", pulumi_ibm, "ResourceKey", {"parameters": {}}, "HMAC"),
    ],
)
def test_access_check_fails_when_the_grant_widens(monkeypatch, stack, module, name, changes, expected):
    _with_args(monkeypatch, module, name, **changes)
    problems = invariants.access_violations(run_program(load_stack(stack)))
    assert any(expected in p for p in problems), problems


def test_nested_arguments_exist_in_the_pinned_sdks(run):
    assert invariants.unknown_nested_arguments(run) == []


@pytest.mark.parametrize(
    ("stack", "module", "name", "changes", "expected"),
    [
        ("aws", pulumi_aws.eks, "NodeGroup", {"scaling_config": lambda c: {**c, "desired_sizes": 3}}, "desired_sizes"),
        ("gcp", pulumi_gcp.container, "NodePool", {"node_config": lambda c: {**c, "image_types": "UBUNTU"}},
         "image_types"),
    ],
)
def test_nested_argument_check_fails_on_an_invented_argument(monkeypatch, stack, module, name, changes, expected):
    _with_args(monkeypatch, module, name, **changes)
    problems = invariants.unknown_nested_arguments(run_program(load_stack(stack)))
    assert any(p.endswith(expected) for p in problems), problems


def test_every_resource_uses_an_explicit_provider(run):
    assert invariants.provider_violations(run) == []


def test_provider_check_fails_on_a_default_provider(monkeypatch):
    original = pulumi_aws.ec2.Vpc

    def on_default_provider(name, *args, opts=None, **kwargs):
        import pulumi

        return original(name, *args, opts=pulumi.ResourceOptions(), **kwargs)

    monkeypatch.setattr(pulumi_aws.ec2, "Vpc", on_default_provider)
    assert any("default provider" in p for p in invariants.provider_violations(run_program(load_stack("aws"))))


def test_every_cloud_resource_sits_in_a_component(run):
    loose = [r.name for r in run.registrations if r.custom and not r.typ.startswith("pulumi:providers:")
             and "$mlflow-multicloud:" not in r.parent]
    assert loose == []


def test_pulumi_ibm_is_imported_only_by_the_ibm_package():
    import re

    from tests.infra.harness import ROOT

    pattern = re.compile(r"^\s*(import pulumi_ibm|from pulumi_ibm)", re.MULTILINE)
    importers = [p.relative_to(ROOT).as_posix() for p in (ROOT / "infra").rglob("*.py") if pattern.search(p.read_text())]
    assert importers and all(p.startswith("infra/clouds/ibm/") for p in importers), importers

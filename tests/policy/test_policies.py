"""The policy pack, run the way the Pulumi engine runs it.

``policy/__main__.py`` is started as its own process (as ``pulumi up --policy-pack
policy`` would start it) and asked over its gRPC Analyzer interface about every
resource the three stacks register under mocks (none may violate anything), and
about deliberately broken copies of them (each must be stopped by exactly the
policy meant for it, with its own message, at mandatory level).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Callable

import grpc
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from policy.policies import CHECKED_TYPES, POLICIES, is_open_cidr, policy_names, vcpus
from tests.infra.harness import ROOT, STACKS, Registration, stack_run

MANDATORY = analyzer_pb2.EnforcementLevel.Value("MANDATORY")
#: Policies over the whole stack; each has its own test below.
STACK_POLICIES = {"load-balancer-count", "bucket-guards-present", "node-count-total"}


@dataclass(frozen=True)
class Violation:
    """One diagnostic the pack returned."""

    policy: str
    message: str
    level: int


class Analyzer:
    """A gRPC client of the running policy pack."""

    def __init__(self, port: int) -> None:
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = analyzer_pb2_grpc.AnalyzerStub(self.channel)

    @staticmethod
    def _struct(props: dict) -> struct_pb2.Struct:
        return json_format.ParseDict(props, struct_pb2.Struct())

    def analyze(self, typ: str, props: dict, name: str = "r", urn: str = "") -> list[Violation]:
        """Violations of the resource policies for one resource."""
        request = analyzer_pb2.AnalyzeRequest(type=typ, properties=self._struct(props), urn=urn or f"urn:test::{name}", name=name)
        return [Violation(d.policyName, d.message, d.enforcementLevel) for d in self.stub.Analyze(request, timeout=30).diagnostics]

    def analyze_stack(self, registrations: list[Registration]) -> list[Violation]:
        """Violations of the stack policies for a whole stack."""
        resources = [
            analyzer_pb2.AnalyzerResource(
                type=r.typ, properties=self._struct(r.raw_inputs), urn=r.urn, name=r.name, parent=r.parent, dependencies=r.dependencies
            )
            for r in registrations
        ]
        response = self.stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=resources), timeout=30)
        return [Violation(d.policyName, d.message, d.enforcementLevel) for d in response.diagnostics]

    def info(self) -> analyzer_pb2.AnalyzerInfo:
        """What the pack says about itself."""
        return self.stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)


@pytest.fixture(scope="module")
def analyzer():
    """The policy pack as a running process, the way the Pulumi CLI starts it."""
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "policy" / "__main__.py")], cwd=ROOT / "policy", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = process.stdout.readline().strip()
        assert line.isdigit(), f"the pack printed {line!r} instead of its port; stderr: {process.stderr.read() if process.poll() is not None else ''}"
        client = Analyzer(int(line))
        yield client
        client.channel.close()
    finally:
        process.kill()
        process.wait()


def _cloud_resources(stack: str) -> list[Registration]:
    return [r for r in stack_run(stack).registrations if r.custom and not r.typ.startswith("pulumi:providers:")]


# --------------------------------------------------------------------------- the pack itself


def test_every_policy_is_mandatory_and_served(analyzer):
    info = analyzer.info()
    assert [p.name for p in info.policies] == policy_names()
    assert {p.name: p.enforcementLevel for p in info.policies} == {name: MANDATORY for name in policy_names()}
    assert all(p.description for p in info.policies)


@pytest.mark.parametrize("stack", STACKS)
def test_the_committed_stacks_pass_every_policy(analyzer, stack):
    resources = _cloud_resources(stack)
    found = {r.name: analyzer.analyze(r.typ, r.raw_inputs, r.name, r.urn) for r in resources}
    assert {name: v for name, v in found.items() if v} == {}
    assert analyzer.analyze_stack(stack_run(stack).registrations) == []


def test_no_policy_is_vacuous_over_the_stacks():
    """Every resource policy reads at least one resource type the stacks really register."""
    registered = {r.typ for stack in STACKS for r in _cloud_resources(stack)}
    assert {name: sorted(types & registered) for name, types in CHECKED_TYPES.items() if not types & registered} == {}
    assert set(CHECKED_TYPES) | STACK_POLICIES == set(policy_names())


# --------------------------------------------------------------------------- broken resources


def _first(stack: str, typ: str, name_contains: str = "") -> dict[str, Any]:
    for r in _cloud_resources(stack):
        if r.typ == typ and name_contains in r.name:
            return copy.deepcopy(r.raw_inputs)
    raise AssertionError(f"{stack} registers no {typ} named like {name_contains!r}")


def _pod(props: dict) -> dict:
    return props["spec"]["template"]["spec"]


def _env(props: dict, name: str) -> dict:
    return next(e for e in _pod(props)["containers"][0]["env"] if e["name"] == name)


def _parent(props: dict, path: str) -> tuple[Any, str | int]:
    """The container holding a dotted path's last part (list indexes as numbers), and that part."""
    *parents, last = path.split(".")
    target: Any = props
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    return target, int(last) if isinstance(target, list) else last


def _set(path: str, value: Any) -> Callable[[dict], None]:
    """A mutation that sets a dotted path."""

    def mutate(props: dict) -> None:
        target, key = _parent(props, path)
        target[key] = value

    return mutate


def _drop(path: str) -> Callable[[dict], None]:
    """A mutation that deletes a dotted path."""

    def mutate(props: dict) -> None:
        target, key = _parent(props, path)
        del target[key]

    return mutate


def _also(*mutations: Callable[[dict], None]) -> Callable[[dict], None]:
    def mutate(props: dict) -> None:
        for m in mutations:
            m(props)

    return mutate


def _secret_env(props: dict) -> None:
    entry = _env(props, "MLFLOW_DB_PASSWORD")
    entry.pop("valueFrom")
    entry["value"] = "hunter2"


def _uri_env(props: dict) -> None:
    _pod(props)["containers"][0]["env"].append({"name": "DATABASE_URL", "value": "postgresql://mlflow:hunter2@db:5432/mlflow"})


def _weak_sslmode(props: dict) -> None:
    _env(props, "MLFLOW_DB_SSLMODE")["value"] = "prefer"


def _open_ingress_rule(props: dict) -> None:
    props.pop("referencedSecurityGroupId")
    props["cidrIpv4"] = "0.0.0.0/0"


def _escalation_only_at_pod_level(props: dict) -> None:
    del _pod(props)["containers"][0]["securityContext"]["allowPrivilegeEscalation"]
    _pod(props)["securityContext"]["allowPrivilegeEscalation"] = False  # no such pod-level field: ignored by Kubernetes


def _decoy_containers(props: dict) -> None:
    props["spec"]["containers"] = copy.deepcopy(_pod(props)["containers"])  # hardened decoy where no pod reads it
    _pod(props)["containers"][0]["securityContext"]["privileged"] = True


def _pgsslmode_instead(props: dict) -> None:
    env = _pod(props)["containers"][0]["env"]
    env[:] = [e for e in env if e["name"] != "MLFLOW_DB_SSLMODE"] + [{"name": "PGSSLMODE", "value": "require"}]


def _plain_env(name: str, value: str) -> Callable[[dict], None]:
    def mutate(props: dict) -> None:
        _pod(props)["containers"][0]["env"].append({"name": name, "value": value})

    return mutate


def _force_ssl_off(props: dict) -> None:
    for parameter in props["parameters"]:
        if parameter["name"] == "rds.force_ssl":
            parameter["value"] = "0"


RDS, SQL, IBMDB = "aws:rds/instance:Instance", "gcp:sql/databaseInstance:DatabaseInstance", "ibm:index/database:Database"
DEPLOYMENT, SERVICE = "kubernetes:apps/v1:Deployment", "kubernetes:core/v1:Service"
PUBLIC_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}]})

# (case id, policy, stack or None for a hand-built resource, type, name filter or props, mutation, message fragment)
BROKEN = [
    ("rds-public", "database-private", "aws", RDS, "", _set("publiclyAccessible", True), "publiclyAccessible must be false"),
    ("rds-default-sg", "database-private", "aws", RDS, "", _drop("vpcSecurityGroupIds"), "set vpcSecurityGroupIds"),
    ("sql-public-ip", "database-private", "gcp", SQL, "", _set("settings.ipConfiguration.ipv4Enabled", True), "ipv4Enabled must be false"),
    ("sql-open-network", "database-private", "gcp", SQL, "",
     _set("settings.ipConfiguration.authorizedNetworks", [{"value": "0.0.0.0/0"}]), "'0.0.0.0/0' admits addresses from the internet"),
    ("ibm-db-public", "database-private", "ibm", IBMDB, "", _set("serviceEndpoints", "public-and-private"), "serviceEndpoints must be 'private'"),
    ("ibm-db-open", "database-private", "ibm", IBMDB, "", _set("allowlists", [{"address": "0.0.0.0/0"}]), "'0.0.0.0/0' admits addresses"),
    ("ibm-db-half-open", "database-private", "ibm", IBMDB, "",
     _set("allowlists", [{"address": "0.0.0.0/1"}, {"address": "128.0.0.0/1"}]), "'128.0.0.0/1' admits addresses"),
    ("ibm-db-no-allowlist", "database-private", "ibm", IBMDB, "", _set("allowlists", []), "empty allowlist"),
    ("rds-unencrypted", "database-encrypted-tls", "aws", RDS, "", _set("storageEncrypted", False), "storageEncrypted must be true"),
    ("rds-default-params", "database-encrypted-tls", "aws", RDS, "", _set("parameterGroupName", "default.postgres16"), "own parameter group"),
    ("rds-no-force-ssl", "database-encrypted-tls", "aws", "aws:rds/parameterGroup:ParameterGroup", "", _force_ssl_off, "rds.force_ssl must be 1"),
    ("mlflow-pgsslmode", "database-encrypted-tls", "gcp", DEPLOYMENT, "mlflow", _pgsslmode_instead, "sslmode 'prefer (the default)'"),
    ("sql-plaintext", "database-encrypted-tls", "gcp", SQL, "",
     _set("settings.ipConfiguration.sslMode", "ALLOW_UNENCRYPTED_AND_ENCRYPTED"), "sslMode must be ENCRYPTED_ONLY"),
    ("mlflow-sslmode-prefer", "database-encrypted-tls", "aws", DEPLOYMENT, "mlflow", _weak_sslmode, "sslmode 'prefer'"),
    ("s3-public-acl", "bucket-private-encrypted", "aws", "aws:s3/bucket:Bucket", "", _set("acl", "public-read"), "ACL 'public-read'"),
    ("s3-block-off", "bucket-private-encrypted", "aws", "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "",
     _set("blockPublicPolicy", False), "must set blockPublicPolicy to true"),
    ("s3-unencrypted", "bucket-private-encrypted", "aws",
     "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "", _set("rules", []), "default encryption must be"),
    ("s3-public-policy-with-condition", "bucket-private-encrypted", None, "aws:s3/bucketPolicy:BucketPolicy",
     {"bucket": "b", "policy": {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject",
                                               "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}}, None, "Principal '*'"),
    ("s3-inline-policy", "bucket-private-encrypted", "aws", "aws:s3/bucket:Bucket", "", _set("policy", PUBLIC_POLICY), "Principal '*'"),
    ("s3-all-users-grant", "bucket-private-encrypted", None, "aws:s3/bucketAclV2:BucketAclV2",
     {"bucket": "b", "accessControlPolicy": {"grants": [{"grantee": {"type": "Group", "uri": "http://acs.amazonaws.com/groups/global/AllUsers"},
                                                         "permission": "READ"}]}}, None, "grant to AllUsers"),
    ("s3-public-policy", "bucket-private-encrypted", None, "aws:s3/bucketPolicy:BucketPolicy",
     {"bucket": "b", "policy": PUBLIC_POLICY}, None, "Principal '*'"),
    ("gcs-inherited", "bucket-private-encrypted", "gcp", "gcp:storage/bucket:Bucket", "",
     _set("publicAccessPrevention", "inherited"), "publicAccessPrevention must be 'enforced'"),
    ("gcs-object-acls", "bucket-private-encrypted", "gcp", "gcp:storage/bucket:Bucket", "",
     _set("uniformBucketLevelAccess", False), "uniformBucketLevelAccess must be true"),
    ("gcs-all-users", "bucket-private-encrypted", "gcp", "gcp:storage/bucketIAMMember:BucketIAMMember", "",
     _set("member", "allUsers"), "access granted to allUsers"),
    ("ibm-public-group", "bucket-private-encrypted", None, "ibm:index/iamAccessGroupPolicy:IamAccessGroupPolicy",
     {"accessGroupId": "AccessGroupId-PublicAccess", "roles": ["Object Reader"]}, None, "Public Access group"),
    ("sg-open-rule", "no-open-firewall", "aws", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "", _open_ingress_rule,
     "opens a port to the internet"),
    ("sg-public-address", "no-open-firewall", "aws", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "",
     _also(_drop("referencedSecurityGroupId"), _set("cidrIpv4", "34.1.2.3/32")), "opens a port to the internet"),
    ("sg-open-inline", "no-open-firewall", "aws", "aws:ec2/securityGroup:SecurityGroup", "",
     _set("ingress", [{"protocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrBlocks": ["0.0.0.0/0"]}]), "inline ingress rule open"),
    ("sg-open-ipv6", "no-open-firewall", None, "aws:ec2/securityGroupRule:SecurityGroupRule",
     {"type": "ingress", "fromPort": 22, "toPort": 22, "protocol": "tcp", "ipv6CidrBlocks": ["::/0"], "securityGroupId": "sg"}, None,
     "opens a port to the internet"),
    ("gcp-firewall", "no-open-firewall", None, "gcp:compute/firewall:Firewall",
     {"network": "n", "allows": [{"protocol": "tcp", "ports": ["22"]}], "sourceRanges": ["0.0.0.0/0"]}, None, "ingress from 0.0.0.0/0"),
    ("gcp-firewall-implicit", "no-open-firewall", None, "gcp:compute/firewall:Firewall",
     {"network": "n", "allows": [{"protocol": "tcp", "ports": ["5432"]}]}, None, "ingress from 0.0.0.0/0"),
    ("ibm-sg-rule", "no-open-firewall", None, "ibm:index/isSecurityGroupRule:IsSecurityGroupRule",
     {"group": "g", "direction": "inbound", "remote": "0.0.0.0/0"}, None, "inbound traffic from any address"),
    ("extra-load-balancer", "no-open-firewall", "gcp", SERVICE, "mlflow", _set("metadata.name", "debug"), "'debug' is a LoadBalancer"),
    ("node-port", "no-open-firewall", "ibm", SERVICE, "serving", _set("spec.type", "NodePort"), "NodePort"),
    ("root-pod", "workload-hardening", "aws", DEPLOYMENT, "serving", _set("spec.template.spec.securityContext.runAsNonRoot", False),
     "may run as root"),
    ("uid-0", "workload-hardening", "gcp", DEPLOYMENT, "mlflow", _set("spec.template.spec.securityContext.runAsUser", 0), "may run as root"),
    ("escalation", "workload-hardening", "ibm", "kubernetes:batch/v1:Job", "training",
     _set("spec.template.spec.containers.0.securityContext.allowPrivilegeEscalation", True), "allowPrivilegeEscalation: false"),
    ("no-limits", "workload-hardening", "aws", "kubernetes:batch/v1:Job", "training",
     _drop("spec.template.spec.containers.0.resources.limits"), "has no limits for cpu, memory"),
    ("escalation-at-pod-level", "workload-hardening", "aws", DEPLOYMENT, "serving", _escalation_only_at_pod_level,
     "allowPrivilegeEscalation: false"),
    ("decoy-containers", "workload-hardening", "gcp", DEPLOYMENT, "serving", _decoy_containers, "is privileged"),
    ("no-readiness", "workload-hardening", "gcp", DEPLOYMENT, "serving", _drop("spec.template.spec.containers.0.readinessProbe"),
     "has no readinessProbe"),
    ("plain-password", "no-plaintext-secret-env", "aws", DEPLOYMENT, "mlflow", _secret_env, "MLFLOW_DB_PASSWORD is a plain value"),
    ("uri-password", "no-plaintext-secret-env", "ibm", DEPLOYMENT, "mlflow", _uri_env, "DATABASE_URL holds a URI with a password"),
    ("short-password-name", "no-plaintext-secret-env", "gcp", DEPLOYMENT, "serving", _plain_env("DB_PASS", "hunter2"), "DB_PASS is a plain value"),
    ("signing-key", "no-plaintext-secret-env", "aws", "kubernetes:batch/v1:Job", "training", _plain_env("SIGNING_KEY", "k"), "SIGNING_KEY is a plain"),
    ("uri-no-user", "no-plaintext-secret-env", "ibm", DEPLOYMENT, "serving", _plain_env("CACHE", "redis://:hunter2@redis:6379/0"), "URI with a password"),
    ("eks-4-nodes", "node-pool-size", "aws", "aws:eks/nodeGroup:NodeGroup", "",
     _also(*(_set(f"scalingConfig.{k}", 4) for k in ("minSize", "maxSize", "desiredSize"))), "has 4.0 nodes"),
    ("eks-autoscaling", "node-pool-size", "aws", "aws:eks/nodeGroup:NodeGroup", "", _set("scalingConfig.maxSize", 6), "unset number of nodes"),
    ("eks-4-vcpus", "node-pool-size", "aws", "aws:eks/nodeGroup:NodeGroup", "", _set("instanceTypes", ["m6i.xlarge"]), "'m6i.xlarge' is not a 2-vCPU"),
    ("gke-2-nodes", "node-pool-size", "gcp", "gcp:container/nodePool:NodePool", "", _set("nodeCount", 2), "has 2.0 nodes"),
    ("gke-4-vcpus", "node-pool-size", "gcp", "gcp:container/nodePool:NodePool", "",
     _set("nodeConfig.machineType", "n2-standard-4"), "'n2-standard-4' is not a 2-vCPU"),
    ("gke-autoscaling", "node-pool-size", "gcp", "gcp:container/nodePool:NodePool", "",
     _set("autoscaling", {"minNodeCount": 1, "maxNodeCount": 5}), "autoscales"),
    ("gke-regional", "node-pool-size", "gcp", "gcp:container/nodePool:NodePool", "", _set("location", "us-central1"), "has 9.0 nodes"),
    ("gke-default-pool", "node-pool-size", "gcp", "gcp:container/cluster:Cluster", "", _set("removeDefaultNodePool", False), "removeDefaultNodePool"),
    ("ibm-2-workers", "node-pool-size", "ibm", "ibm:index/containerVpcCluster:ContainerVpcCluster", "", _set("workerCount", 2), "has 2.0 nodes"),
    ("ibm-4-vcpus", "node-pool-size", "ibm", "ibm:index/containerVpcCluster:ContainerVpcCluster", "",
     _set("flavor", "bx2.4x16"), "'bx2.4x16' is not a 2-vCPU"),
]


@pytest.mark.parametrize(("policy", "stack", "typ", "source", "mutate", "fragment"), [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN])
def test_each_broken_resource_is_stopped_by_its_own_policy(analyzer, policy, stack, typ, source, mutate, fragment):
    props = _first(stack, typ, source) if stack else copy.deepcopy(source)
    if stack:
        assert analyzer.analyze(typ, props) == [], "the unbroken resource must pass"
    if mutate:
        mutate(props)
    found = analyzer.analyze(typ, props)
    assert {v.policy for v in found} == {policy}, found
    assert all(v.level == MANDATORY for v in found)
    assert any(fragment in v.message for v in found), [v.message for v in found]


def test_every_policy_has_a_broken_case():
    assert {case[1] for case in BROKEN} | STACK_POLICIES == set(policy_names())


def test_a_third_load_balancer_fails_the_stack(analyzer):
    registrations = list(stack_run("aws").registrations)
    serving = next(r for r in registrations if r.typ == SERVICE and r.name == "serving-service")
    extra = copy.deepcopy(serving)
    extra.urn, extra.name = serving.urn + "-copy", "serving-copy"
    extra.raw_inputs["metadata"]["name"] = "serving"  # same allowed name, so only the count can catch it
    found = analyzer.analyze_stack([*registrations, extra])
    assert [(v.policy, v.level) for v in found] == [("load-balancer-count", MANDATORY)]
    assert "3 LoadBalancer Services" in found[0].message


def test_a_bucket_without_its_guards_fails_the_stack(analyzer):
    registrations = [r for r in stack_run("aws").registrations if r.typ != "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"]
    found = analyzer.analyze_stack(registrations)
    assert [(v.policy, v.level) for v in found] == [("bucket-guards-present", MANDATORY)]
    assert "'mlflow-aws-artifacts' has no public access block" in found[0].message


def test_a_second_node_pool_fails_the_stack(analyzer):
    registrations = list(stack_run("aws").registrations)
    group = next(r for r in registrations if r.typ == "aws:eks/nodeGroup:NodeGroup")
    extra = copy.deepcopy(group)
    extra.urn, extra.name = group.urn + "-2", group.name + "-2"
    found = analyzer.analyze_stack([*registrations, extra])
    assert [(v.policy, v.level) for v in found] == [("node-count-total", MANDATORY)]
    assert "6 nodes in all" in found[0].message


SECURE_BUT_UNUSUAL = [
    ("ibm-rule-from-a-security-group", "ibm:index/isSecurityGroupRule:IsSecurityGroupRule",
     {"group": "g", "direction": "inbound", "remote": "r006-0123abcd-4567-sg"}),
    ("rule-from-shared-address-space", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
     {"securityGroupId": "sg", "cidrIpv4": "100.64.0.0/16", "fromPort": 5432, "toPort": 5432, "ipProtocol": "tcp"}),
    ("private-aurora-instance", "aws:rds/clusterInstance:ClusterInstance", {"clusterIdentifier": "c", "publiclyAccessible": False}),
]


@pytest.mark.parametrize(("typ", "props"), [case[1:] for case in SECURE_BUT_UNUSUAL], ids=[case[0] for case in SECURE_BUT_UNUSUAL])
def test_secure_but_unusual_resources_pass(analyzer, typ, props):
    assert analyzer.analyze(typ, props) == []


def test_malformed_properties_are_a_violation_not_a_crash(analyzer):
    found = analyzer.analyze("aws:eks/nodeGroup:NodeGroup", {"instanceTypes": [2], "scalingConfig": {"desiredSize": "x"}})
    assert {v.policy for v in found} == {"node-pool-size"} and all(v.level == MANDATORY for v in found)
    found = analyzer.analyze(SERVICE, {"metadata": {"name": {"nested": 1}}, "spec": {"type": "LoadBalancer"}})
    assert [v.policy for v in found] == ["no-open-firewall"]


def test_a_preview_unknown_is_not_a_pass_or_a_violation(analyzer):
    """During a preview a value can be unknown: the pack says it could not check, at advisory level."""
    props = _first("aws", RDS)
    props["publiclyAccessible"] = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's unknown sentinel
    found = analyzer.analyze(RDS, props)
    assert [v.policy for v in found] == ["database-private"]
    assert found[0].level == analyzer_pb2.EnforcementLevel.Value("ADVISORY") and "during preview" in found[0].message


# --------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("cloud", "node_type", "expected"),
    [
        ("aws", "m6i.large", 2), ("aws", "t3.large", 2), ("aws", "m6i.xlarge", None), ("aws", "t3.medium", None), ("aws", "", None),
        ("gcp", "n2-standard-2", 2), ("gcp", "n2-custom-2-12288", 2), ("gcp", "e2-standard-4", 4), ("gcp", "e2-medium", None),
        ("ibm", "bx2.2x8", 2), ("ibm", "cx2.4x8", 4), ("ibm", "bogus", None),
    ],
)
def test_vcpus_from_the_node_type_name(cloud, node_type, expected):
    assert vcpus(cloud, node_type) == expected


@pytest.mark.parametrize(
    ("cidr", "is_open"),
    [("0.0.0.0/0", True), ("::/0", True), (" 0.0.0.0/0", True), ("0.0.0.0/1", True), ("34.1.2.3/32", True), ("2001:db8::/32", False),
     ("2606:4700::/32", True), ("10.0.0.0/8", False), ("172.16.0.32/28", False), ("fd00::/8", False), ("bogus", False), ("r006-1234abcd-sg", False), ("100.64.0.0/10", False), ("", False), (None, False)],
)
def test_open_cidrs(cidr, is_open):
    assert is_open_cidr(cidr) is is_open


def test_the_pack_names_match_the_module():
    assert len(POLICIES) == len(set(policy_names()))

"""The project's security and fairness guarantees as Pulumi policies.

Every policy here is mandatory (see ``__main__.py``): a violation stops
``pulumi preview`` and ``pulumi up``. Each check reads the resource's inputs the
way the engine hands them to a policy pack (camelCase property names). A value
that is still unknown during a preview raises inside ``props`` and the SDK
skips that check for that resource, so nothing here guesses at unknowns.

This module imports only the standard library and ``pulumi_policy``: the Pulumi
CLI runs ``__main__.py`` as a script from this folder, and the tests import it
as ``policy.policies``.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy.proxy import UnknownValueError
from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

#: The only Kubernetes Services that may face the internet: MLflow's UI/API and the inference service.
LOAD_BALANCED_SERVICES = frozenset({"mlflow", "serving"})
#: The study's cluster: 3 worker nodes of 2 vCPUs each.
NODE_COUNT = 3
NODE_VCPUS = 2
#: Client TLS modes that refuse a plaintext connection to PostgreSQL.
TLS_SSLMODES = frozenset({"require", "verify-ca", "verify-full"})
#: Environment variable names that hold credentials; their value must come from a Secret.
SECRET_ENV_NAME = re.compile(r"PASS|SECRET|TOKEN|(^|_)KEY(_|$)|APIKEY|CREDENTIAL|PRIVATE", re.IGNORECASE)
#: ``scheme://[user]:password@host`` anywhere in a plain value.
CREDENTIAL_URI = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", re.IGNORECASE)

SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
Check = Callable[[Mapping[str, Any]], Iterator[str]]
#: Policy name -> the resource types its checks read (the tests prove none of them is vacuous).
CHECKED_TYPES: dict[str, frozenset[str]] = {}


# --------------------------------------------------------------------------- helpers


def is_open_cidr(value: Any) -> bool:
    """True for a range that reaches beyond private networks: 0.0.0.0/0, ::/0, but also
    0.0.0.0/1 (half the internet) or a single public address. RFC 1918, shared address
    space (100.64.0.0/10) and other private ranges are closed; a value that is not an
    address at all (a security group id, a tag) is a reference, not a range."""
    if not isinstance(value, str) or not value.strip():
        return False
    try:
        network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return False
    if network.prefixlen == 0:
        return True
    return not (network.is_private or (network.version == 4 and network.subnet_of(SHARED_ADDRESS_SPACE)))


def _items(value: Any) -> list:
    # The SDK hands lists and maps over as read-only Sequence/Mapping proxies.
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else []


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _resource_policy(name: str, description: str, checks: Mapping[str, Check]) -> ResourceValidationPolicy:
    """A policy that runs ``checks[resource type]`` and reports each message it yields."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        check = checks.get(args.resource_type)
        if check is None:
            return
        try:
            messages = list(check(args.props))
        except UnknownValueError:
            raise  # a preview unknown: the SDK reports it as "cannot check yet"
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as error:
            messages = [f"the resource's properties have an unexpected shape ({type(error).__name__}: {error}); they cannot be checked"]
        for message in messages:
            report_violation(message, None)

    CHECKED_TYPES[name] = frozenset(checks)
    return ResourceValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=EnforcementLevel.MANDATORY
    )


# --------------------------------------------------------------------------- databases


def _rds_private(props: Mapping[str, Any]) -> Iterator[str]:
    if props.get("publiclyAccessible") is True:
        yield "RDS: publiclyAccessible must be false; the database is reached from the cluster only"
    if not _items(props.get("vpcSecurityGroupIds")):
        yield "RDS: set vpcSecurityGroupIds; the VPC's default security group admits more than the cluster"


def _cloud_sql_private(props: Mapping[str, Any]) -> Iterator[str]:
    ip = _dict(_dict(props.get("settings")).get("ipConfiguration"))
    # Cloud SQL gives an instance a public IPv4 address unless ipv4Enabled is false.
    if ip.get("ipv4Enabled") is not False:
        yield "Cloud SQL: settings.ipConfiguration.ipv4Enabled must be false (no public IP)"
    if not ip.get("privateNetwork"):
        yield "Cloud SQL: settings.ipConfiguration.privateNetwork must name the VPC"
    # Authorized networks are sources allowed to the public IP: with no public IP there must be none.
    for network in _items(ip.get("authorizedNetworks")):
        yield f"Cloud SQL: the authorized network {_dict(network).get('value')!r} admits addresses from the internet"


def _ibm_database_private(props: Mapping[str, Any]) -> Iterator[str]:
    # IBM Cloud Databases default to public endpoints.
    if props.get("serviceEndpoints") != "private":
        yield f"IBM Cloud Databases: serviceEndpoints must be 'private', not {props.get('serviceEndpoints')!r}"
    allowlist = [_dict(entry).get("address") for entry in _items(props.get("allowlists"))]
    if not allowlist:
        yield "IBM Cloud Databases: an empty allowlist admits every address; list the cluster subnet"
    for address in allowlist:
        if is_open_cidr(address):
            yield f"IBM Cloud Databases: the allowlist entry {address!r} admits addresses from the internet"


def _rds_encrypted_tls(props: Mapping[str, Any], group_key: str = "parameterGroupName") -> Iterator[str]:
    if props.get("storageEncrypted") is not True:
        yield "RDS: storageEncrypted must be true"
    group = props.get(group_key)
    if not group or str(group).lower().startswith("default."):
        yield f"RDS: set {group_key} to the stack's own parameter group (it sets rds.force_ssl=1), not a default one"


def _rds_cluster_encrypted_tls(props: Mapping[str, Any]) -> Iterator[str]:
    yield from _rds_encrypted_tls(props, "dbClusterParameterGroupName")


def _rds_cluster_instance_private(props: Mapping[str, Any]) -> Iterator[str]:
    # Security groups belong to the cluster; an instance can only be made public.
    if props.get("publiclyAccessible") is True:
        yield "RDS: publiclyAccessible must be false; the database is reached from the cluster only"


def _rds_parameter_group_tls(props: Mapping[str, Any]) -> Iterator[str]:
    if "postgres" not in str(props.get("family", "")):
        return
    values = {_dict(p).get("name"): str(_dict(p).get("value")) for p in _items(props.get("parameters"))}
    if values.get("rds.force_ssl") != "1":
        yield "RDS parameter group: rds.force_ssl must be 1 so that PostgreSQL refuses plaintext connections"


def _cloud_sql_tls(props: Mapping[str, Any]) -> Iterator[str]:
    # Cloud SQL storage is always encrypted at rest; TLS is what a setting can weaken.
    mode = _dict(_dict(props.get("settings")).get("ipConfiguration")).get("sslMode")
    if mode not in ("ENCRYPTED_ONLY", "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"):
        yield f"Cloud SQL: settings.ipConfiguration.sslMode must be ENCRYPTED_ONLY or TRUSTED_CLIENT_CERTIFICATE_REQUIRED, not {mode!r}"


def _client_sslmode(props: Mapping[str, Any]) -> Iterator[str]:
    for container in _containers(props):
        env = {str(_dict(e).get("name")): _dict(e) for e in _items(container.get("env"))}
        if "MLFLOW_DB_HOST" not in env:
            continue
        # The entrypoint writes MLFLOW_DB_SSLMODE (default prefer) into the URI, where it wins over PGSSLMODE;
        # it must be a literal so that this check can read it.
        entry = env.get("MLFLOW_DB_SSLMODE") or {}
        if entry.get("value") not in TLS_SSLMODES:
            shown = "a reference" if "valueFrom" in entry else repr(entry.get("value", "prefer (the default)"))
            yield (f"container {container.get('name')!r} connects to PostgreSQL with sslmode {shown}; "
                   f"set MLFLOW_DB_SSLMODE to one of {sorted(TLS_SSLMODES)} as a plain value")


# --------------------------------------------------------------------------- buckets

PUBLIC_ACLS = frozenset({"public-read", "public-read-write", "authenticated-read"})
PUBLIC_MEMBERS = frozenset({"allUsers", "allAuthenticatedUsers"})
PUBLIC_ACCESS_BLOCK_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
SSE_ALGORITHMS = frozenset({"AES256", "aws:kms", "aws:kms:dsse"})


def _s3_bucket(props: Mapping[str, Any]) -> Iterator[str]:
    yield from _s3_acl(props)
    if props.get("website"):
        yield "S3: a website configuration serves the bucket publicly"
    if props.get("policy"):
        yield from _s3_bucket_policy(props)


PUBLIC_GRANTEES = ("http://acs.amazonaws.com/groups/global/AllUsers", "http://acs.amazonaws.com/groups/global/AuthenticatedUsers")


def _s3_acl(props: Mapping[str, Any]) -> Iterator[str]:
    if str(props.get("acl")) in PUBLIC_ACLS:
        yield f"S3: bucket ACL {props.get('acl')!r} makes objects public"
    grants = _items(props.get("grants")) + _items(_dict(props.get("accessControlPolicy")).get("grants"))
    for grant in map(_dict, grants):
        uris = [grant.get("uri"), _dict(grant.get("grantee")).get("uri")]
        if any(str(u) in PUBLIC_GRANTEES for u in uris if u):
            yield "S3: an ACL grant to AllUsers or AuthenticatedUsers makes the bucket public"


def _s3_public_access_block(props: Mapping[str, Any]) -> Iterator[str]:
    off = [flag for flag in PUBLIC_ACCESS_BLOCK_FLAGS if props.get(flag) is not True]
    if off:
        yield f"S3: the public access block must set {', '.join(off)} to true"


def _s3_encryption(props: Mapping[str, Any]) -> Iterator[str]:
    algorithms = [
        _dict(_dict(rule).get("applyServerSideEncryptionByDefault")).get("sseAlgorithm") for rule in _items(props.get("rules"))
    ]
    if not algorithms or any(a not in SSE_ALGORITHMS for a in algorithms):
        yield f"S3: default encryption must be one of {sorted(SSE_ALGORITHMS)}, found {algorithms}"


def _policy_statements(document: Any) -> list[Mapping[str, Any]]:
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return []
    statements = _dict(document).get("Statement", [])
    return [_dict(s) for s in (_items(statements) if not isinstance(statements, Mapping) else [statements])]


def _s3_bucket_policy(props: Mapping[str, Any]) -> Iterator[str]:
    for statement in _policy_statements(props.get("policy")):
        principal = statement.get("Principal")
        everyone = principal == "*" or "*" in _items(_dict(principal).get("AWS")) or _dict(principal).get("AWS") == "*"
        # Conditions such as aws:SecureTransport do not make a grant to everyone private; a
        # legitimate cross-account grant names its principals.
        if statement.get("Effect") == "Allow" and everyone:
            yield "S3: the bucket policy allows Principal '*'"


def _s3_website(props: Mapping[str, Any]) -> Iterator[str]:
    yield "S3: a website configuration serves the bucket publicly"


def _gcs_bucket(props: Mapping[str, Any]) -> Iterator[str]:
    # GCS encrypts every object at rest (Google-managed keys unless a CMEK is set).
    if props.get("publicAccessPrevention") != "enforced":
        yield "GCS: publicAccessPrevention must be 'enforced'"
    if props.get("uniformBucketLevelAccess") is not True:
        yield "GCS: uniformBucketLevelAccess must be true (no per-object ACLs)"


def _gcs_member(props: Mapping[str, Any]) -> Iterator[str]:
    members = [props.get("member"), props.get("entity"), *_items(props.get("members"))]
    public = sorted({str(m) for m in members if str(m) in PUBLIC_MEMBERS})
    if public:
        yield f"GCS: access granted to {', '.join(public)}"


def _ibm_public_access_policy(props: Mapping[str, Any]) -> Iterator[str]:
    # IBM COS encrypts every object at rest; a bucket becomes public only through
    # a policy for the Public Access group.
    if props.get("accessGroupId") == "AccessGroupId-PublicAccess":
        yield "IBM: a policy for the Public Access group makes resources public"


# --------------------------------------------------------------------------- network openings


def _sg_ingress_rule(props: Mapping[str, Any]) -> Iterator[str]:
    if is_open_cidr(props.get("cidrIpv4")) or is_open_cidr(props.get("cidrIpv6")):
        yield "security group ingress rule opens a port to the internet; admit a security group or a private range"


def _sg_rule(props: Mapping[str, Any]) -> Iterator[str]:
    blocks = _items(props.get("cidrBlocks")) + _items(props.get("ipv6CidrBlocks"))
    if props.get("type") == "ingress" and any(is_open_cidr(c) for c in blocks):
        yield "security group ingress rule opens a port to the internet"


def _security_group(props: Mapping[str, Any]) -> Iterator[str]:
    for rule in _items(props.get("ingress")):
        blocks = _items(_dict(rule).get("cidrBlocks")) + _items(_dict(rule).get("ipv6CidrBlocks"))
        if any(is_open_cidr(c) for c in blocks):
            yield "security group has an inline ingress rule open to the internet"


def _gcp_firewall(props: Mapping[str, Any]) -> Iterator[str]:
    if str(props.get("direction") or "INGRESS").upper() != "INGRESS" or not _items(props.get("allows")):
        return
    ranges = _items(props.get("sourceRanges"))
    tagged = _items(props.get("sourceTags")) or _items(props.get("sourceServiceAccounts"))
    # Without source ranges, tags or service accounts, GCP applies the rule to 0.0.0.0/0.
    if any(is_open_cidr(r) for r in ranges) or (not ranges and not tagged):
        yield "firewall rule allows ingress from 0.0.0.0/0"


def _ibm_sg_rule(props: Mapping[str, Any]) -> Iterator[str]:
    if props.get("direction") == "inbound" and (not props.get("remote") or is_open_cidr(props.get("remote"))):
        yield "IBM security group rule admits inbound traffic from any address"


def _ibm_acl_rule(props: Mapping[str, Any]) -> Iterator[str]:
    if props.get("direction") == "inbound" and props.get("action") == "allow" and is_open_cidr(props.get("source")):
        yield "IBM network ACL rule allows inbound traffic from any address"


def _service(props: Mapping[str, Any]) -> Iterator[str]:
    spec, name = _dict(props.get("spec")), _dict(props.get("metadata")).get("name")
    kind = spec.get("type") or "ClusterIP"
    if kind == "LoadBalancer" and name not in LOAD_BALANCED_SERVICES:
        yield f"Service {name!r} is a LoadBalancer; only {sorted(LOAD_BALANCED_SERVICES)} may face the internet"
    if kind == "NodePort":
        yield f"Service {name!r} is a NodePort: it opens a port on every node"
    if _items(spec.get("externalIPs")):
        yield f"Service {name!r} sets externalIPs"


S3_BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")


def _buckets_guarded(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Each S3 bucket has a public access block and a default-encryption configuration that depend on it."""
    needed = {
        "public access block": ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",),
        "default encryption": (
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
        ),
    }
    for bucket in (r for r in args.resources if r.resource_type in S3_BUCKETS):
        for what, types in needed.items():
            if not any(r.resource_type in types and bucket in r.dependencies for r in args.resources):
                report_violation(f"S3 bucket {bucket.name!r} has no {what}", bucket.urn)


def _too_many_load_balancers(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    balancers = [
        r for r in args.resources
        if r.resource_type == "kubernetes:core/v1:Service" and _dict(r.props.get("spec")).get("type") == "LoadBalancer"
    ]
    if len(balancers) > len(LOAD_BALANCED_SERVICES):
        report_violation(f"{len(balancers)} LoadBalancer Services; at most {len(LOAD_BALANCED_SERVICES)} may face the internet", None)


# --------------------------------------------------------------------------- Kubernetes workloads

LONG_RUNNING = ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:DaemonSet", "kubernetes:core/v1:ReplicationController")
WORKLOADS = (
    *LONG_RUNNING, "kubernetes:apps/v1:ReplicaSet", "kubernetes:batch/v1:Job", "kubernetes:batch/v1:CronJob", "kubernetes:core/v1:Pod",
    "kubernetes:core/v1:PodTemplate",
)  # fmt: skip


def _pod_spec(props: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod spec of any workload kind (a CronJob nests it two templates deep, a PodTemplate has it as template)."""
    if props.get("kind") == "PodTemplate" or "template" in props and "spec" not in props:
        return _dict(_dict(props.get("template")).get("spec"))
    spec = _dict(props.get("spec"))
    if props.get("kind") == "Pod":
        return spec
    if "jobTemplate" in spec:
        spec = _dict(_dict(spec.get("jobTemplate")).get("spec"))
    return _dict(_dict(spec.get("template")).get("spec"))


def _containers(props: Mapping[str, Any], init: bool = False) -> list[Mapping[str, Any]]:
    pod = _pod_spec(props)
    keys = ("containers", "initContainers") if init else ("containers",)
    return [_dict(c) for key in keys for c in _items(pod.get(key))]


def _workload_hardening(long_running: bool) -> Check:
    def check(props: Mapping[str, Any]) -> Iterator[str]:
        pod = _pod_spec(props)
        pod_security = _dict(pod.get("securityContext"))
        for container in _containers(props, init=True):
            name = container.get("name")
            own = _dict(container.get("securityContext"))
            # runAsNonRoot and runAsUser may come from the pod; privilege settings exist only per container.
            security = {**{k: pod_security.get(k) for k in ("runAsNonRoot", "runAsUser") if k in pod_security}, **own}
            if security.get("runAsNonRoot") is not True or _number(security.get("runAsUser")) == 0:
                yield f"container {name!r} may run as root: set runAsNonRoot: true and a non-zero runAsUser"
            if security.get("allowPrivilegeEscalation") is not False:
                yield f"container {name!r} must set allowPrivilegeEscalation: false"
            if security.get("privileged") is True:
                yield f"container {name!r} is privileged"
            resources = _dict(container.get("resources"))
            for part in ("requests", "limits"):
                missing = [r for r in ("cpu", "memory") if not _dict(resources.get(part)).get(r)]
                if missing:
                    yield f"container {name!r} has no {part} for {', '.join(missing)}"
        if long_running:
            for container in _containers(props):
                if not container.get("readinessProbe"):
                    yield f"container {container.get('name')!r} has no readinessProbe"

    return check


def _plaintext_secrets(props: Mapping[str, Any]) -> Iterator[str]:
    for container in _containers(props, init=True):
        where = f"container {container.get('name')!r}"
        for entry in map(_dict, _items(container.get("env"))):
            name, value = str(entry.get("name", "")), entry.get("value")
            from_config_map = "configMapKeyRef" in _dict(entry.get("valueFrom"))
            if SECRET_ENV_NAME.search(name) and (value not in (None, "") or from_config_map):
                yield f"{where}: {name} is a plain value or a ConfigMap key; take it from a Secret (valueFrom.secretKeyRef)"
            elif isinstance(value, str) and CREDENTIAL_URI.search(value):
                yield f"{where}: {name} holds a URI with a password; take it from a Secret"
        for argument in [*_items(container.get("args")), *_items(container.get("command"))]:
            if isinstance(argument, str) and CREDENTIAL_URI.search(argument):
                yield f"{where}: an argument holds a URI with a password; take it from a Secret"


# --------------------------------------------------------------------------- node pools

AWS_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.(?P<size>[a-z0-9]+)$")
GCP_TYPE = re.compile(r"^(?:[a-z0-9]+-)?(?:standard|highmem|highcpu|custom)-(?P<vcpus>\d+)(?:-\d+)?$")
IBM_FLAVOR = re.compile(r"^[a-z0-9]+\.(?P<vcpus>\d+)x\d+")


def vcpus(cloud: str, node_type: str) -> int | None:
    """vCPUs of a node type by its naming scheme, None when the name does not say.

    EC2: every current family's ``.large`` has 2 vCPUs (``.xlarge`` 4, and so on;
    burstable ``t*.medium`` types share theirs, which would skew the comparison).
    GCE: ``<family>-<standard|highmem|highcpu|custom>-<vCPUs>[-<MiB>]``.
    IBM: ``<profile>.<vCPUs>x<GiB>``.
    """
    if cloud == "aws":
        match = AWS_TYPE.match(node_type or "")
        return 2 if match and match["size"] == "large" else None
    pattern = GCP_TYPE if cloud == "gcp" else IBM_FLAVOR
    match = pattern.match(node_type or "")
    return int(match["vcpus"]) if match else None


def _node_problems(cloud: str, node_types: Iterable[Any], count: float | None) -> Iterator[str]:
    for node_type in map(str, node_types):
        if vcpus(cloud, node_type) != NODE_VCPUS:
            yield f"node type {node_type!r} is not a {NODE_VCPUS}-vCPU type; the cloud comparison needs {NODE_VCPUS} vCPUs per node"
    if count != NODE_COUNT:
        yield f"the node pool has {count if count is not None else 'an unset number of'} nodes; the comparison needs {NODE_COUNT}"


def _per_zone(count: Any, zones: int) -> float | None:
    number = _number(count)
    return number * zones if number is not None else None


def _eks_nodes(props: Mapping[str, Any]) -> float | None:
    """The group's size when min, max and desired agree (a fixed size), else None."""
    scaling = _dict(props.get("scalingConfig"))
    sizes = {_number(scaling.get(k)) for k in ("minSize", "maxSize", "desiredSize")}
    return sizes.pop() if len(sizes) == 1 else None


def _gke_nodes(props: Mapping[str, Any]) -> float | None:
    """nodeCount is per zone: a regional pool without nodeLocations runs in 3 zones."""
    zones = len(_items(props.get("nodeLocations"))) or (1 if str(props.get("location", "")).count("-") >= 2 else 3)
    return _per_zone(props.get("nodeCount"), zones)


def _ibm_nodes(props: Mapping[str, Any]) -> float | None:
    """A VPC cluster's default pool or an extra worker pool: workerCount is per zone."""
    return _per_zone(props.get("workerCount"), len(_items(props.get("zones"))) or 1)


#: Node pool resource type -> how many nodes it runs (None when that is not a fixed number).
NODE_COUNTERS: dict[str, Callable[[Mapping[str, Any]], float | None]] = {
    "aws:eks/nodeGroup:NodeGroup": _eks_nodes,
    "gcp:container/nodePool:NodePool": _gke_nodes,
    "ibm:index/containerVpcCluster:ContainerVpcCluster": _ibm_nodes,
    "ibm:index/containerVpcWorkerPool:ContainerVpcWorkerPool": _ibm_nodes,
}


def _eks_node_group(props: Mapping[str, Any]) -> Iterator[str]:
    yield from _node_problems("aws", _items(props.get("instanceTypes")) or ["(none)"], _eks_nodes(props))


def _gke_node_pool(props: Mapping[str, Any]) -> Iterator[str]:
    if props.get("autoscaling"):
        yield "the node pool autoscales; the comparison needs a fixed 3 nodes"
    machine = _dict(props.get("nodeConfig")).get("machineType") or "(default e2-medium)"
    yield from _node_problems("gcp", [machine], _gke_nodes(props))


def _gke_cluster(props: Mapping[str, Any]) -> Iterator[str]:
    if props.get("enableAutopilot"):
        yield "GKE Autopilot picks its own nodes; the comparison needs a fixed node pool"
    elif props.get("removeDefaultNodePool") is not True:
        yield "GKE: set removeDefaultNodePool so that only the 3-node pool runs workloads"


def _ibm_workers(props: Mapping[str, Any]) -> Iterator[str]:
    yield from _node_problems("ibm", [str(props.get("flavor"))], _ibm_nodes(props))


def _total_nodes(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    counted = [(r, NODE_COUNTERS[r.resource_type](r.props)) for r in args.resources if r.resource_type in NODE_COUNTERS]
    pools = [(r, n) for r, n in counted if n]  # an unfixed size is node-pool-size's violation already
    total = sum(n for _, n in pools)
    if pools and total != NODE_COUNT:
        names = ", ".join(f"{r.name} ({n:g})" for r, n in pools)
        report_violation(f"the stack runs {total:g} nodes in all ({names}); the comparison needs {NODE_COUNT}", None)


# --------------------------------------------------------------------------- the pack

POLICIES = [
    _resource_policy(
        "database-private",
        "No database is publicly accessible or reachable from 0.0.0.0/0.",
        {
            "aws:rds/instance:Instance": _rds_private,
            "aws:rds/cluster:Cluster": _rds_private,
            "aws:rds/clusterInstance:ClusterInstance": _rds_cluster_instance_private,
            "gcp:sql/databaseInstance:DatabaseInstance": _cloud_sql_private,
            "ibm:index/database:Database": _ibm_database_private,
        },
    ),
    _resource_policy(
        "database-encrypted-tls",
        "Database storage is encrypted and PostgreSQL requires TLS; MLflow connects with sslmode require or stricter. "
        "(Cloud SQL and IBM Cloud Databases always encrypt storage; IBM's also always require TLS.)",
        {
            "aws:rds/instance:Instance": _rds_encrypted_tls,
            "aws:rds/cluster:Cluster": _rds_cluster_encrypted_tls,
            "aws:rds/parameterGroup:ParameterGroup": _rds_parameter_group_tls,
            "aws:rds/clusterParameterGroup:ClusterParameterGroup": _rds_parameter_group_tls,
            "gcp:sql/databaseInstance:DatabaseInstance": _cloud_sql_tls,
            **{kind: _client_sslmode for kind in WORKLOADS},
        },
    ),
    _resource_policy(
        "bucket-private-encrypted",
        "Buckets are not public and are encrypted: S3 with a full public access block and default encryption, "
        "GCS with public access prevention and uniform access, no grants to allUsers or the IBM Public Access group.",
        {
            "aws:s3/bucket:Bucket": _s3_bucket,
            "aws:s3/bucketV2:BucketV2": _s3_bucket,
            "aws:s3/bucketAcl:BucketAcl": _s3_acl,
            "aws:s3/bucketAclV2:BucketAclV2": _s3_acl,
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": _s3_public_access_block,
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": _s3_encryption,
            "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2": _s3_encryption,
            "aws:s3/bucketPolicy:BucketPolicy": _s3_bucket_policy,
            "aws:s3/bucketWebsiteConfiguration:BucketWebsiteConfiguration": _s3_website,
            "aws:s3/bucketWebsiteConfigurationV2:BucketWebsiteConfigurationV2": _s3_website,
            "gcp:storage/bucket:Bucket": _gcs_bucket,
            "gcp:storage/bucketIAMMember:BucketIAMMember": _gcs_member,
            "gcp:storage/bucketIAMBinding:BucketIAMBinding": _gcs_member,
            "gcp:storage/bucketAccessControl:BucketAccessControl": _gcs_member,
            "gcp:storage/defaultObjectAccessControl:DefaultObjectAccessControl": _gcs_member,
            "ibm:index/iamAccessGroupPolicy:IamAccessGroupPolicy": _ibm_public_access_policy,
        },
    ),
    _resource_policy(
        "no-open-firewall",
        f"No security group or firewall rule admits the internet; only the LoadBalancer Services "
        f"{sorted(LOAD_BALANCED_SERVICES)} face it, and no Service is a NodePort or sets externalIPs.",
        {
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": _sg_ingress_rule,
            "aws:ec2/securityGroupRule:SecurityGroupRule": _sg_rule,
            "aws:ec2/securityGroup:SecurityGroup": _security_group,
            "gcp:compute/firewall:Firewall": _gcp_firewall,
            "ibm:index/isSecurityGroupRule:IsSecurityGroupRule": _ibm_sg_rule,
            "ibm:index/isNetworkAclRule:IsNetworkAclRule": _ibm_acl_rule,
            "kubernetes:core/v1:Service": _service,
        },
    ),
    StackValidationPolicy(
        name="bucket-guards-present",
        description="Every S3 bucket has its own public access block and default-encryption configuration.",
        validate=_buckets_guarded,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    StackValidationPolicy(
        name="node-count-total",
        description=f"All node pools of a stack add up to {NODE_COUNT} nodes.",
        validate=_total_nodes,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    StackValidationPolicy(
        name="load-balancer-count",
        description=f"At most {len(LOAD_BALANCED_SERVICES)} LoadBalancer Services in a stack.",
        validate=_too_many_load_balancers,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    _resource_policy(
        "workload-hardening",
        "Every Kubernetes workload runs as non-root without privilege escalation, with CPU and memory requests "
        "and limits; long-running ones (Deployments, StatefulSets, DaemonSets) have readiness probes.",
        {kind: _workload_hardening(kind in LONG_RUNNING) for kind in WORKLOADS},
    ),
    _resource_policy(
        "no-plaintext-secret-env",
        "No credential sits in a container's environment as a plain value; it comes from a Secret reference.",
        {kind: _plaintext_secrets for kind in WORKLOADS},
    ),
    _resource_policy(
        "node-pool-size",
        f"Node pools have {NODE_COUNT} nodes of {NODE_VCPUS} vCPUs, so that the clouds are compared on equal clusters.",
        {
            "aws:eks/nodeGroup:NodeGroup": _eks_node_group,
            "gcp:container/nodePool:NodePool": _gke_node_pool,
            "gcp:container/cluster:Cluster": _gke_cluster,
            "ibm:index/containerVpcCluster:ContainerVpcCluster": _ibm_workers,
            "ibm:index/containerVpcWorkerPool:ContainerVpcWorkerPool": _ibm_workers,
        },
    ),
]


def policy_names() -> list[str]:
    """The names of every policy in the pack, in order."""
    return [p.name for p in POLICIES]


__all__ = ["CHECKED_TYPES", "POLICIES", "is_open_cidr", "policy_names", "vcpus"]

"""Policies over a recorded program run. Each returns a list of violations (empty = holds).

They read what the program registered, never the program's own constants, so a
change to the program that breaks a policy shows up as a violation.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any, Iterator

import kubernetes_validate

from tests.infra.harness import SECRET_SIG, SIG_KEY, ProgramRun, Registration
from infra import outputs
from infra.config import node_shape

OPEN = ipaddress.ip_network("0.0.0.0/0")


def _is_open(cidr: str) -> bool:
    try:
        return ipaddress.ip_network(cidr, strict=False).prefixlen == 0
    except ValueError:
        return False


# --------------------------------------------------------------------------- nodes


def nodes(run: ProgramRun) -> tuple[str, int, str]:
    """(node type, node count, OS image) as registered with the cloud."""
    if run.cfg.cloud == "aws":
        group = run.one("aws:eks/nodeGroup:NodeGroup").inputs
        scaling = group["scalingConfig"]
        assert scaling["minSize"] == scaling["maxSize"] == scaling["desiredSize"], scaling
        ami = next((c.args for c in run.calls if c.token == "aws:ec2/getAmi:getAmi"), {})
        image = next((f["values"][0] for f in ami.get("filters", []) if f["name"] == "name"), "")
        assert group["amiType"] == "CUSTOM" and group["launchTemplate"]["id"]
        return group["instanceTypes"][0], int(scaling["desiredSize"]), image
    if run.cfg.cloud == "gcp":
        pool = run.one("gcp:container/nodePool:NodePool").inputs
        return pool["nodeConfig"]["machineType"], int(pool["nodeCount"]), pool["nodeConfig"]["imageType"]
    cluster = run.one("ibm:index/containerVpcCluster:ContainerVpcCluster").inputs
    return cluster["flavor"], int(cluster["workerCount"]), cluster["operatingSystem"]


def node_violations(run: ProgramRun) -> list[str]:
    """3 nodes of a 2-vCPU type, on Ubuntu."""
    node_type, count, image = nodes(run)
    shape = node_shape(run.cfg.cloud, node_type)
    problems = []
    if count != 3:
        problems.append(f"{count} nodes, the study used 3")
    if shape.vcpus != 2:
        problems.append(f"{node_type} has {shape.vcpus} vCPUs, not 2")
    if "ubuntu" not in image.lower():
        problems.append(f"node image {image!r} is not Ubuntu")
    return problems


# --------------------------------------------------------------------------- database


def database_violations(run: ProgramRun) -> list[str]:
    """Not public, not open to 0.0.0.0/0, TLS required, nothing blocking destroy."""
    problems: list[str] = []
    cloud = run.cfg.cloud
    if cloud == "aws":
        db = run.one("aws:rds/instance:Instance").inputs
        if db.get("publiclyAccessible") is not False:
            problems.append("RDS instance is publicly accessible")
        if db.get("storageEncrypted") is not True:
            problems.append("RDS storage is not encrypted")
        if db.get("skipFinalSnapshot") is not True:
            problems.append("RDS takes a final snapshot on destroy")
        if db.get("deletionProtection"):
            problems.append("RDS deletion protection is on")
        groups = {r.inputs.get("name", r.name): r for r in run.of_type("aws:rds/parameterGroup:ParameterGroup")}
        group = groups.get(db.get("parameterGroupName"))
        params = {p["name"]: p["value"] for p in (group.inputs.get("parameters", []) if group else [])}
        if params.get("rds.force_ssl") != "1":
            problems.append("RDS parameter group does not force TLS")
        db_groups = set(db.get("vpcSecurityGroupIds", []))
        for rule in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
            if rule.inputs["securityGroupId"] not in db_groups:
                continue
            if _is_open(rule.inputs.get("cidrIpv4", "")) or rule.inputs.get("cidrIpv6"):
                problems.append("database security group admits an open CIDR")
            if (rule.inputs.get("fromPort"), rule.inputs.get("toPort")) != (5432, 5432):
                problems.append(f"database security group opens ports {rule.inputs.get('fromPort')}-{rule.inputs.get('toPort')}")
            if rule.inputs.get("referencedSecurityGroupId") != "sg-eks-cluster":
                problems.append("database admits something other than the cluster security group")
        for group in run.of_type("aws:ec2/securityGroup:SecurityGroup"):
            for rule in group.inputs.get("ingress", []):
                if any(_is_open(c) for c in rule.get("cidrBlocks", [])):
                    problems.append(f"security group {group.name} has an open inline ingress rule")
    elif cloud == "gcp":
        db = run.one("gcp:sql/databaseInstance:DatabaseInstance").inputs
        ip = db["settings"]["ipConfiguration"]
        if ip.get("ipv4Enabled") is not False:
            problems.append("Cloud SQL has a public IPv4 address")
        if not ip.get("privateNetwork"):
            problems.append("Cloud SQL has no private network")
        if any(_is_open(n.get("value", "")) for n in ip.get("authorizedNetworks", [])):
            problems.append("Cloud SQL authorizes 0.0.0.0/0")
        if ip.get("sslMode") not in ("ENCRYPTED_ONLY", "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"):
            problems.append(f"Cloud SQL sslMode {ip.get('sslMode')!r} allows plaintext")
        if db.get("deletionProtection") is not False or db["settings"].get("deletionProtectionEnabled"):
            problems.append("Cloud SQL deletion protection is on")
    else:
        db = run.one("ibm:index/database:Database").inputs
        if db.get("serviceEndpoints") != "private":
            problems.append(f"IBM database endpoints {db.get('serviceEndpoints')!r}, not private")
        allow = [a["address"] for a in db.get("allowlists", [])]
        if not allow:
            problems.append("IBM database has no allowlist (open to any address)")
        if any(_is_open(a) for a in allow):
            problems.append("IBM database allowlist admits 0.0.0.0/0")
    for env in _server_env(run):
        if env.get("name") == "MLFLOW_DB_SSLMODE" and env.get("value") not in ("require", "verify-ca", "verify-full"):
            problems.append(f"MLflow connects with sslmode {env.get('value')!r}")
    return problems


def _server_env(run: ProgramRun) -> Iterator[dict]:
    for dep in run.of_type("kubernetes:apps/v1:Deployment"):
        if dep.inputs["metadata"]["name"] == "mlflow-server":
            for container in dep.inputs["spec"]["template"]["spec"]["containers"]:
                yield from container.get("env", [])


def destroy_violations(run: ProgramRun) -> list[str]:
    """Nothing that makes `pulumi destroy` fail or leave things behind."""
    problems = []
    for r in run.registrations:
        if r.typ == "gcp:container/cluster:Cluster" and r.inputs.get("deletionProtection") is not False:
            problems.append("GKE deletion protection is on")
        if r.typ == "aws:ecr/repository:Repository" and r.inputs.get("forceDelete") is not True:
            problems.append(f"ECR repository {r.name} is not force-deleted")
    return problems


# --------------------------------------------------------------------------- bucket and access


def bucket_violations(run: ProgramRun) -> list[str]:
    """The bucket is not public and force-destroys."""
    problems: list[str] = []
    cloud = run.cfg.cloud
    if cloud == "aws":
        bucket = run.one("aws:s3/bucket:Bucket")
        if bucket.inputs.get("forceDestroy") is not True:
            problems.append("S3 bucket is not force-destroyed")
        blocks = [b for b in run.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
                  if b.inputs.get("bucket") == f"{bucket.name}-id"]
        flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        if not blocks or not all(blocks[0].inputs.get(f) is True for f in flags):
            problems.append("S3 public access is not fully blocked")
        if not run.of_type("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"):
            problems.append("S3 bucket has no encryption configuration")
        for policy in run.of_type("aws:s3/bucketPolicy:BucketPolicy"):
            problems.append(f"bucket policy {policy.name} exists (could grant public access)")
    elif cloud == "gcp":
        bucket = run.one("gcp:storage/bucket:Bucket").inputs
        if bucket.get("forceDestroy") is not True:
            problems.append("GCS bucket is not force-destroyed")
        if bucket.get("publicAccessPrevention") != "enforced":
            problems.append("GCS public access prevention is not enforced")
        if bucket.get("uniformBucketLevelAccess") is not True:
            problems.append("GCS bucket allows object ACLs")
        for member in run.of_type("gcp:storage/bucketIAMMember:BucketIAMMember"):
            if member.inputs["member"] in ("allUsers", "allAuthenticatedUsers"):
                problems.append("GCS bucket is granted to the public")
    else:
        bucket = run.one("ibm:index/cosBucket:CosBucket").inputs
        if bucket.get("forceDelete") is not True:
            problems.append("COS bucket is not force-deleted")
        for policy in run.of_type("ibm:index/iamAccessGroupPolicy:IamAccessGroupPolicy"):
            problems.append(f"access group policy {policy.name} (public access group?)")
    return problems


def access_violations(run: ProgramRun) -> list[str]:
    """Workload identity / HMAC reaches this stack's bucket and nothing wider."""
    problems: list[str] = []
    cloud = run.cfg.cloud
    sa = run.cfg.namespace
    if cloud == "aws":
        bucket_arn = f"arn:aws:s3:::{run.outputs[outputs.BUCKET_NAME]}"
        for policy in run.of_type("aws:iam/rolePolicy:RolePolicy"):
            for statement in json.loads(policy.inputs["policy"])["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                for resource in resources:
                    if resource not in (bucket_arn, f"{bucket_arn}/*"):
                        problems.append(f"IRSA policy reaches {resource}")
                if any(a == "*" or a.endswith(":*") for a in actions):
                    problems.append(f"IRSA policy grants wildcard actions {actions}")
        roles = [r for r in run.of_type("aws:iam/role:Role") if "AssumeRoleWithWebIdentity" in r.inputs["assumeRolePolicy"]]
        if len(roles) != 1:
            problems.append(f"{len(roles)} web-identity roles")
        for role in roles:
            condition = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0].get("Condition", {})
            subjects = [v for k, v in condition.get("StringEquals", {}).items() if k.endswith(":sub")]
            if subjects != [f"system:serviceaccount:{sa}:mlflow-server"]:
                problems.append(f"IRSA role trusts {subjects or 'any service account'}")
        for attach in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"):
            if any(attach.inputs["role"] == r.inputs.get("name", r.name) for r in roles):
                problems.append(f"managed policy {attach.inputs['policyArn']} attached to the IRSA role")
    elif cloud == "gcp":
        bucket = run.outputs[outputs.BUCKET_NAME]
        mlflow_email = next(r.inputs["accountId"] for r in run.of_type("gcp:serviceaccount/account:Account")
                            if r.inputs["accountId"].endswith("-mlflow"))
        for member in run.of_type("gcp:storage/bucketIAMMember:BucketIAMMember"):
            if member.inputs["bucket"] != bucket:
                problems.append(f"bucket grant on {member.inputs['bucket']}")
            if member.inputs["role"] not in ("roles/storage.objectAdmin", "roles/storage.objectUser"):
                problems.append(f"bucket grant of {member.inputs['role']}")
        for member in run.of_type("gcp:projects/iAMMember:IAMMember"):
            if mlflow_email in member.inputs["member"] or "storage" in member.inputs["role"]:
                problems.append(f"project-wide {member.inputs['role']} for {member.inputs['member']}")
        bindings = run.of_type("gcp:serviceaccount/iAMMember:IAMMember")
        expected = f"serviceAccount:{run.cfg.gcp_project}.svc.id.goog[{sa}/mlflow-server]"
        if [b.inputs["member"] for b in bindings] != [expected]:
            problems.append(f"workload identity binds {[b.inputs['member'] for b in bindings]}")
    else:
        keys = run.of_type("ibm:index/resourceKey:ResourceKey")
        instances = run.of_type("ibm:index/resourceInstance:ResourceInstance")
        buckets = run.of_type("ibm:index/cosBucket:CosBucket")
        for key in keys:
            if (key.inputs.get("parameters") or {}).get("HMAC") != "true":
                problems.append(f"resource key {key.name} does not request HMAC credentials (parameters.HMAC = \"true\")")
            if key.inputs.get("role") not in ("Writer", "Object Writer"):
                problems.append(f"HMAC key role {key.inputs.get('role')}")
            owner = [i for i in instances if key.inputs.get("resourceInstanceId") == i.resource_id]
            if len(owner) != 1:
                problems.append("HMAC key is not bound to this stack's COS instance")
                continue
            in_instance = [b for b in buckets if b.inputs["resourceInstanceId"] == owner[0].resource_id]
            if len(in_instance) != 1:
                problems.append(f"the HMAC key's instance holds {len(in_instance)} buckets, not just the artifact bucket")
        if len(keys) != 1:
            problems.append(f"{len(keys)} HMAC keys")
    return problems


# --------------------------------------------------------------------------- secrets and outputs


def secret_leaks(run: ProgramRun) -> list[str]:
    """Generated secrets appear only inside secret markers; outputs holding them are secret."""
    problems = []
    secrets = run.generated_secrets
    assert secrets, "the mocks generated no secrets to hunt for"
    for r in run.registrations:
        for text in r.plain_strings():
            for secret in secrets:
                if secret and secret in text:
                    problems.append(f"{r.typ} {r.name} holds {secret!r} in plain text")
        if r.typ == "kubernetes:core/v1:ConfigMap":
            problems.append(f"ConfigMap {r.name}: configuration belongs in env or Secrets")
        for env in _all_env(r):
            if "value" in env and any(s in str(env["value"]) for s in secrets):
                problems.append(f"{r.name} env {env['name']} holds a secret value")
            if any(word in env["name"] for word in ("PASSWORD", "SECRET", "ACCESS_KEY")) and "value" in env:
                problems.append(f"{r.name} env {env['name']} is a literal, not a Secret reference")
    for key, value in run.outputs.items():
        text = json.dumps(value, default=str)
        if any(s in text for s in secrets) and key not in run.secret_outputs:
            problems.append(f"output {key} holds a secret but is not secret")
    for key in outputs.SECRET:
        if key not in run.secret_outputs:
            problems.append(f"output {key} must be secret")
    return problems


def _all_env(r: Registration) -> Iterator[dict]:
    spec = r.inputs.get("spec", {})
    template = spec.get("template", {}).get("spec", {})
    for container in template.get("containers", []) + template.get("initContainers", []):
        yield from container.get("env", [])


# Inputs whose keys are data (tags, labels, Secret keys), not SDK argument names.
_MAP_INPUTS = {"tags", "tagsAll", "labels", "defaultLabels", "defaultTags", "resourceLabels", "userLabels",
               "annotations", "stringData", "data", "matchLabels", "selector", "nodeSelector", "parameters"}


def unknown_nested_arguments(run: ProgramRun) -> list[str]:
    """Nested argument names the pinned SDKs do not know.

    The generated pulumi_aws/pulumi_gcp SDKs translate every nested key they declare
    (``subnet_ids`` -> ``subnetIds``); an unknown key reaches the engine untranslated,
    so a snake_case key left in a registration is a misspelt or invented argument.
    (The pulumi_ibm double checks its own nested blocks.)"""
    problems = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            if value.get(SIG_KEY) == SECRET_SIG:
                walk(value.get("value"), path)
                return
            for key, item in value.items():
                if "_" in key.strip("_") and path.rsplit(".", 1)[-1] not in _MAP_INPUTS:
                    problems.append(f"{path}.{key}")
                walk(item, f"{path}.{key}")
        elif isinstance(value, list):
            for item in value:
                walk(item, path)

    for r in run.registrations:
        if r.custom and r.typ.split(":")[0] in ("aws", "gcp", "kubernetes"):
            walk(r.raw_inputs, f"{r.typ} {r.name}")
    for call in run.calls:
        if call.token.split(":")[0] in ("aws", "gcp"):
            walk(call.args, call.token)
    return problems


# --------------------------------------------------------------------------- Kubernetes


def manifest(r: Registration) -> dict[str, Any]:
    """The object as it would be sent to the API server."""
    return {k: v for k, v in r.inputs.items() if k not in ("__defaults",)}


def schema_violations(run: ProgramRun) -> list[str]:
    """Every Kubernetes object validates (strictly) against the cluster version's OpenAPI schema."""
    problems = []
    version = run.cfg.cluster.kubernetes_version
    for r in run.kubernetes_objects():
        try:
            kubernetes_validate.validate(manifest(r), version, strict=True)
        except kubernetes_validate.ValidationError as err:
            problems.append(f"{r.typ} {r.name}: {err.message} at {list(err.path)}")
    return problems


def provider_violations(run: ProgramRun) -> list[str]:
    """Every resource uses an explicit provider: no default providers, Kubernetes via the cluster's."""
    problems = []
    k8s_providers = [r.urn for r in run.of_type("pulumi:providers:kubernetes")]
    if len(k8s_providers) != 1:
        return [f"{len(k8s_providers)} Kubernetes providers"]
    for r in run.registrations:
        if not r.custom or r.typ.startswith("pulumi:providers:") or r.typ.startswith("random:"):
            continue
        if "::default" in r.provider or not r.provider:
            problems.append(f"{r.typ} {r.name} uses a default provider")
        if r.is_kubernetes_object and not r.provider.startswith(k8s_providers[0] + "::"):
            problems.append(f"{r.typ} {r.name} is not on the cluster's provider")
    return problems


def await_violations(run: ProgramRun) -> list[str]:
    """MLflow and serving rollouts are awaited with explicit timeouts; the migration runs first."""
    problems = []
    awaited = [r for r in run.kubernetes_objects() if r.typ in ("kubernetes:apps/v1:Deployment", "kubernetes:core/v1:Service")]
    migrations = [r for r in run.of_type("kubernetes:batch/v1:Job")
                  if r.inputs["spec"]["template"]["spec"]["containers"][0].get("command", [])[-1:] == ["migrate"]]
    if len(migrations) != 1:
        problems.append(f"{len(migrations)} migration Jobs")
    for r in awaited + migrations:
        annotations = r.inputs.get("metadata", {}).get("annotations", {})
        if annotations.get("pulumi.com/skipAwait") == "true":
            problems.append(f"{r.typ} {r.name} skips await")
        if not r.custom_timeouts.get("create") or not r.custom_timeouts.get("update"):
            problems.append(f"{r.typ} {r.name} has no explicit await timeout")
    for r in awaited:
        if r.inputs["metadata"]["name"] == "mlflow-server" and not (
            migrations and migrations[0].urn in r.dependencies
        ):
            problems.append("the MLflow Deployment does not wait for the migration Job")
    return problems


def workload_security_violations(run: ProgramRun) -> list[str]:
    """Every pod: non-root, no privilege escalation, no capabilities, CPU and memory requests and limits;
    every Deployment container has a readiness probe; the trainer's bad-data exit fails its Job at once."""
    problems = []
    for r in run.kubernetes_objects():
        template = r.inputs.get("spec", {}).get("template")
        if not template:
            continue
        pod = template["spec"]
        pod_ctx = pod.get("securityContext", {})
        if pod_ctx.get("runAsNonRoot") is not True or pod_ctx.get("runAsUser", 1) == 0:
            problems.append(f"{r.typ} {r.name}: pod may run as root")
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if pod.get(key):
                problems.append(f"{r.typ} {r.name}: {key}")
        for c in pod.get("containers", []) + pod.get("initContainers", []):
            where = f"{r.typ} {r.name} container {c['name']}"
            ctx = c.get("securityContext", {})
            if ctx.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: privilege escalation allowed")
            if ctx.get("privileged") or ctx.get("runAsUser") == 0:
                problems.append(f"{where}: privileged or root")
            if "ALL" not in ctx.get("capabilities", {}).get("drop", []):
                problems.append(f"{where}: capabilities not dropped")
            resources = c.get("resources", {})
            for kind in ("requests", "limits"):
                missing = {"cpu", "memory"} - set(resources.get(kind, {}))
                if missing:
                    problems.append(f"{where}: no {kind} for {sorted(missing)}")
            if r.typ == "kubernetes:apps/v1:Deployment" and not c.get("readinessProbe"):
                problems.append(f"{where}: no readiness probe")
    for job in run.of_type("kubernetes:batch/v1:Job"):
        if job.inputs["spec"].get("backoffLimit") is None:
            problems.append(f"Job {job.name}: no backoff limit")
    trainers = [j for j in run.of_type("kubernetes:batch/v1:Job")
                if j.inputs["spec"]["template"]["spec"]["containers"][0]["name"] == "trainer"]
    if len(trainers) != 1:
        problems.append(f"{len(trainers)} training Jobs")
    for job in trainers:
        if not job.inputs["spec"].get("ttlSecondsAfterFinished"):
            problems.append(f"training Job {job.name}: no TTL after finishing")
        rules = job.inputs["spec"].get("podFailurePolicy", {}).get("rules", [])
        if not any(rule["action"] == "FailJob" and 2 in rule.get("onExitCodes", {}).get("values", [])
                   for rule in rules):
            problems.append(f"training Job {job.name}: exit code 2 (bad data) is retried instead of failing the Job")
    return problems


# Values that legitimately differ per cloud (WorkloadSettings' documented fields).
CLOUD_ENV = {"CLOUD", "MLFLOW_DB_HOST", "MLFLOW_DB_PORT", "MLFLOW_DB_NAME", "MLFLOW_ARTIFACTS_DESTINATION",
             "MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
CLOUD_SECRETS = {"mlflow-artifact-store", "registry-pull"}


def normalized_kubernetes_layer(run: ProgramRun) -> dict[tuple[str, str], Any]:
    """The Kubernetes objects with the documented per-cloud settings masked out."""

    def mask(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            if key == "labels" and "stack" in value:
                value = {**value, "stack": "<cloud>"}
            out = {}
            for k, v in value.items():
                if k in ("image",):
                    out[k] = "<image>"
                elif k == "imagePullSecrets":
                    continue
                elif k == "annotations" and key == "metadata":
                    out[k] = {a: b for a, b in v.items() if not a.endswith(("role-arn", "gcp-service-account"))}
                elif k == "env":
                    out[k] = [mask(e) for e in v if e["name"] not in CLOUD_ENV]
                else:
                    out[k] = mask(v, k)
            return out
        if isinstance(value, list):
            return [mask(v, key) for v in value]
        return value

    layer = {}
    for r in run.kubernetes_objects():
        if r.typ == "kubernetes:core/v1:Secret" and r.inputs["metadata"]["name"] in CLOUD_SECRETS:
            continue
        layer[(r.typ, r.name)] = mask(_secrets_as_placeholders(r.raw_inputs))
    return layer


def _secrets_as_placeholders(value: Any) -> Any:
    """Raw inputs with every secret replaced by "<secret>" (generated values differ per stack)."""
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return "<secret>"
        return {k: _secrets_as_placeholders(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_secrets_as_placeholders(v) for v in value]
    return value

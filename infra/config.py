"""Stack configuration: the only module that reads ``pulumi.Config``.

Every key is declared once in :data:`KEYS` (name and type). ``Pulumi.yaml``
declares the same keys with their defaults and descriptions; a test keeps the
two in step. :func:`parse` turns a plain mapping of values into frozen,
validated dataclasses, so tests build configurations without the Pulumi
runtime, and :func:`load_config` feeds it from the stack's configuration.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Mapping

PROJECT = "mlflow-multicloud"
CLOUDS = ("aws", "gcp", "ibm")

# name -> type as declared in Pulumi.yaml ("string", "integer", "boolean", "array").
KEYS: dict[str, str] = {
    "cloud": "string",
    "region": "string",
    "zones": "array",
    "kubernetesVersion": "string",
    "nodeInstanceType": "string",
    "nodeCount": "integer",
    "nodeImage": "string",
    "nodeDiskGb": "integer",
    "postgresVersion": "string",
    "databaseTier": "string",
    "databaseStorageGb": "integer",
    "gcpProject": "string",
    "ibmResourceGroup": "string",
    "workloads": "boolean",
    "namespace": "string",
    "imageTag": "string",
    "mlflowImage": "string",
    "trainerImage": "string",
    "servingImage": "string",
    "allowedSourceRanges": "array",
    "mlflowPublicHosts": "array",
    "mlflowAuth": "boolean",
    "mlflowAdminUsername": "string",
    "mlflowWorkers": "integer",
    "experimentName": "string",
    "modelName": "string",
    "modelAlias": "string",
    "trainingRun": "string",
    "trainingEpochs": "integer",
    "trainingBatchSize": "integer",
    "servingReplicas": "integer",
    "rolloutTimeoutSeconds": "integer",
}

# Zones each managed service needs: EKS's control plane and an RDS subnet group
# both refuse fewer than two availability zones; GKE and IKS run in one.
ZONE_COUNT = {"aws": 2, "gcp": 1, "ibm": 1}

# vCPU and memory (GiB) of the node types this project has been sized for.
# GCP predefined/custom and IBM flavours encode their shape in the name and are
# parsed; AWS names do not, so they are listed.
_AWS_SHAPES = {
    "m5.large": (2, 8),
    "m6i.large": (2, 8),
    "m7i.large": (2, 8),
    "t3.large": (2, 8),
    "r6i.large": (2, 16),
    "c6i.large": (2, 4),
    "m6i.xlarge": (4, 16),
}
_GCP_STANDARD = re.compile(r"^(?:n1|n2|n2d|e2|c3|n4)-standard-(\d+)$")
_GCP_CUSTOM = re.compile(r"^(?:(n2|n2d|e2|n4)-)?custom-(\d+)-(\d+)$")
_IBM_FLAVOR = re.compile(r"^[bcmu]x\d[a-z]?\.(\d+)x(\d+)$")

# IBM Container Registry hosts per region (the registry is regional, not per-zone).
IBM_REGISTRY_HOSTS = {
    "us-south": "us.icr.io",
    "us-east": "us.icr.io",
    "ca-tor": "ca.icr.io",
    "br-sao": "br.icr.io",
    "eu-gb": "uk.icr.io",
    "eu-de": "de.icr.io",
    "eu-es": "es.icr.io",
    "jp-tok": "jp.icr.io",
    "jp-osa": "jp2.icr.io",
    "au-syd": "au.icr.io",
}

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_K8S_VERSION = re.compile(r"^1\.(\d+)$")


class ConfigError(ValueError):
    """A stack configuration value is missing or invalid; the message names the key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{PROJECT}:{key}: {problem}")
        self.key = key


@dataclass(frozen=True)
class NodeShape:
    """vCPU count and memory of one node type."""

    vcpus: int
    memory_gib: int


@dataclass(frozen=True)
class ClusterConfig:
    """The Kubernetes cluster: version, node type, count, OS image and disk."""

    kubernetes_version: str
    node_instance_type: str
    node_count: int
    node_image: str
    node_disk_gb: int
    node_shape: NodeShape


@dataclass(frozen=True)
class DatabaseConfig:
    """The managed PostgreSQL that holds MLflow's tracking and auth stores."""

    postgres_version: str
    tier: str
    storage_gb: int


@dataclass(frozen=True)
class ImageConfig:
    """Container image references; empty means "this stack's registry + imageTag"."""

    tag: str
    mlflow: str
    trainer: str
    serving: str


@dataclass(frozen=True)
class MlflowConfig:
    """The MLflow tracking server's exposure and authentication."""

    allowed_source_ranges: tuple[str, ...]
    public_hosts: tuple[str, ...]
    auth: bool
    admin_username: str
    workers: int
    experiment_name: str
    model_name: str
    model_alias: str


@dataclass(frozen=True)
class TrainingConfig:
    """One benchmark run: its identifier and the trainer's hyperparameters."""

    run: str
    epochs: int
    batch_size: int


@dataclass(frozen=True)
class ServingConfig:
    """Model serving: replicas stay 0 until a model version carries the alias."""

    replicas: int


@dataclass(frozen=True)
class StackConfig:
    """Everything a stack needs, parsed and validated."""

    cloud: str
    region: str
    zones: tuple[str, ...]
    cluster: ClusterConfig
    database: DatabaseConfig
    gcp_project: str
    ibm_resource_group: str
    workloads: bool
    namespace: str
    images: ImageConfig
    mlflow: MlflowConfig
    training: TrainingConfig
    serving: ServingConfig
    rollout_timeout_seconds: int

    @property
    def name_prefix(self) -> str:
        """Prefix of every physical resource name: project and cloud."""
        return f"mlflow-{self.cloud}"


def node_shape(cloud: str, instance_type: str) -> NodeShape:
    """vCPUs and memory of ``instance_type`` on ``cloud``; ConfigError if unknown."""
    if cloud == "aws" and instance_type in _AWS_SHAPES:
        return NodeShape(*_AWS_SHAPES[instance_type])
    if cloud == "gcp":
        if m := _GCP_STANDARD.match(instance_type):
            return NodeShape(int(m.group(1)), 4 * int(m.group(1)))
        if m := _GCP_CUSTOM.match(instance_type):
            memory_mb = int(m.group(3))
            if memory_mb % 1024:
                raise ConfigError("nodeInstanceType", f"custom memory {memory_mb} MB is not a whole GiB")
            return NodeShape(int(m.group(2)), memory_mb // 1024)
    if cloud == "ibm" and (m := _IBM_FLAVOR.match(instance_type)):
        return NodeShape(int(m.group(1)), int(m.group(2)))
    raise ConfigError("nodeInstanceType", f"unknown {cloud} node type {instance_type!r}")


def parse(values: Mapping[str, Any]) -> StackConfig:
    """Validate a mapping of config key -> value (Pulumi.yaml defaults already applied)."""
    unknown = sorted(set(values) - set(KEYS))
    if unknown:
        raise ConfigError(unknown[0], "is not a key of this project")
    v = {key: _typed(values, key, kind) for key, kind in KEYS.items()}

    cloud = v["cloud"]
    if cloud not in CLOUDS:
        raise ConfigError("cloud", f"must be one of {', '.join(CLOUDS)}, got {cloud!r}")
    _require(v, "region")
    zones = tuple(v["zones"])
    if len(zones) != ZONE_COUNT[cloud] or len(set(zones)) != len(zones):
        raise ConfigError("zones", f"{cloud} needs exactly {ZONE_COUNT[cloud]} distinct zone(s), got {list(zones)}")
    if cloud == "ibm" and v["region"] not in IBM_REGISTRY_HOSTS:
        raise ConfigError("region", f"no IBM Container Registry host known for {v['region']!r}")
    if cloud == "gcp":
        _require(v, "gcpProject")

    if not _K8S_VERSION.match(v["kubernetesVersion"]):
        raise ConfigError("kubernetesVersion", f"must be MAJOR.MINOR such as 1.33, got {v['kubernetesVersion']!r}")
    shape = node_shape(cloud, _require(v, "nodeInstanceType"))
    _positive(v, "nodeCount", "nodeDiskGb", "databaseStorageGb", "mlflowWorkers", "trainingEpochs",
              "trainingBatchSize", "rolloutTimeoutSeconds")
    _require(v, "nodeImage")
    if not re.fullmatch(r"\d+", v["postgresVersion"]):
        raise ConfigError("postgresVersion", f"must be a major version such as 16, got {v['postgresVersion']!r}")
    _require(v, "databaseTier")

    for key in ("namespace", "trainingRun"):
        if not _DNS_LABEL.match(v[key]) or len(v[key]) > (40 if key == "trainingRun" else 63):
            raise ConfigError(key, f"must be a lowercase DNS label, got {v[key]!r}")
    for cidr in v["allowedSourceRanges"]:
        try:
            ipaddress.ip_network(cidr)
        except ValueError as err:
            raise ConfigError("allowedSourceRanges", f"{cidr!r} is not a CIDR: {err}") from err
    if not v["allowedSourceRanges"]:
        raise ConfigError("allowedSourceRanges", "must list at least one CIDR")
    if not v["mlflowPublicHosts"]:
        raise ConfigError("mlflowPublicHosts", "must list at least one host name or pattern")
    if v["servingReplicas"] < 0:
        raise ConfigError("servingReplicas", f"must be 0 or more, got {v['servingReplicas']}")
    _require(v, "mlflowAdminUsername")
    _require(v, "imageTag")

    return StackConfig(
        cloud=cloud,
        region=v["region"],
        zones=zones,
        cluster=ClusterConfig(
            kubernetes_version=v["kubernetesVersion"],
            node_instance_type=v["nodeInstanceType"],
            node_count=v["nodeCount"],
            node_image=v["nodeImage"],
            node_disk_gb=v["nodeDiskGb"],
            node_shape=shape,
        ),
        database=DatabaseConfig(
            postgres_version=v["postgresVersion"], tier=v["databaseTier"], storage_gb=v["databaseStorageGb"]
        ),
        gcp_project=v["gcpProject"],
        ibm_resource_group=v["ibmResourceGroup"],
        workloads=v["workloads"],
        namespace=v["namespace"],
        images=ImageConfig(
            tag=v["imageTag"], mlflow=v["mlflowImage"], trainer=v["trainerImage"], serving=v["servingImage"]
        ),
        mlflow=MlflowConfig(
            allowed_source_ranges=tuple(v["allowedSourceRanges"]),
            public_hosts=tuple(v["mlflowPublicHosts"]),
            auth=v["mlflowAuth"],
            admin_username=v["mlflowAdminUsername"],
            workers=v["mlflowWorkers"],
            experiment_name=_require(v, "experimentName"),
            model_name=_require(v, "modelName"),
            model_alias=_require(v, "modelAlias"),
        ),
        training=TrainingConfig(run=v["trainingRun"], epochs=v["trainingEpochs"], batch_size=v["trainingBatchSize"]),
        serving=ServingConfig(replicas=v["servingReplicas"]),
        rollout_timeout_seconds=v["rolloutTimeoutSeconds"],
    )


def load_config() -> StackConfig:
    """Read this stack's configuration through ``pulumi.Config`` and parse it."""
    import pulumi

    conf = pulumi.Config(PROJECT)
    readers = {"string": conf.get, "integer": conf.get_int, "boolean": conf.get_bool, "array": conf.get_object}
    values = {}
    for key, kind in KEYS.items():
        value = readers[kind](key)
        if value is not None:
            values[key] = value
    return parse(values)


def _typed(values: Mapping[str, Any], key: str, kind: str) -> Any:
    if key not in values:
        raise ConfigError(key, "is not set (Pulumi.yaml declares a default for every key but cloud)")
    value = values[key]
    expected = {"string": str, "integer": int, "boolean": bool, "array": list}[kind]
    if kind == "integer" and isinstance(value, bool) or not isinstance(value, expected):
        raise ConfigError(key, f"must be a {kind}, got {value!r}")
    if kind == "array" and not all(isinstance(item, str) for item in value):
        raise ConfigError(key, f"must be a list of strings, got {value!r}")
    return value


def _require(v: Mapping[str, Any], key: str) -> str:
    if not v[key]:
        raise ConfigError(key, "must not be empty")
    return v[key]


def _positive(v: Mapping[str, Any], *keys: str) -> None:
    for key in keys:
        if v[key] < 1:
            raise ConfigError(key, f"must be at least 1, got {v[key]}")

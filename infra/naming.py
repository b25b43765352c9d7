"""Names and labels shared by the cloud layer and the Kubernetes layer (one source)."""

from __future__ import annotations

from infra.config import PROJECT, StackConfig

# The Kubernetes ServiceAccount of the MLflow server; the clouds bind their
# workload identity (IRSA role, Google service account) to exactly this name.
MLFLOW_SERVICE_ACCOUNT = "mlflow-server"

# Image repository names inside each stack's registry; scripts/build-images.sh pushes the same.
IMAGE_REPOSITORIES = ("mlflow-server", "trainer", "serving")


def labels(cfg: StackConfig) -> dict[str, str]:
    """Labels/tags put on every cloud resource that takes them (lowercase, label-safe)."""
    return {"project": PROJECT, "stack": cfg.cloud, "managed-by": "pulumi"}


def component_type(area: str, cls: type) -> str:
    """Type token ``mlflow-multicloud:<area>:<Class>`` of a component class."""
    return f"{PROJECT}:{area}:{cls.__name__}"

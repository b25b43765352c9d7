"""Stack output keys: named once, identical on every cloud, imported by the tests."""

KUBECONFIG = "kubeconfig"
MLFLOW_URL = "mlflowUrl"
SERVING_URL = "servingUrl"
MLFLOW_ADMIN_USERNAME = "mlflowAdminUsername"
MLFLOW_ADMIN_PASSWORD = "mlflowAdminPassword"
BUCKET_NAME = "bucketName"
DATABASE_HOST = "databaseHost"
REGISTRY_URL = "registryUrl"
CLOUD = "cloud"
NODE_INSTANCE_TYPE = "nodeInstanceType"
NODE_COUNT = "nodeCount"
KUBERNETES_VERSION = "kubernetesVersion"
TRAINING_JOB = "trainingJob"

ALL = (
    KUBECONFIG,
    MLFLOW_URL,
    SERVING_URL,
    MLFLOW_ADMIN_USERNAME,
    MLFLOW_ADMIN_PASSWORD,
    BUCKET_NAME,
    DATABASE_HOST,
    REGISTRY_URL,
    CLOUD,
    NODE_INSTANCE_TYPE,
    NODE_COUNT,
    KUBERNETES_VERSION,
    TRAINING_JOB,
)

# Exported only as secrets.
SECRET = frozenset({KUBECONFIG, MLFLOW_ADMIN_PASSWORD})


def export(values: dict) -> None:
    """Export ``values`` (keyed by the constants above) as the stack's outputs."""
    import pulumi

    missing = set(ALL) - set(values)
    extra = set(values) - set(ALL)
    if missing or extra:
        raise ValueError(f"outputs must be exactly outputs.ALL; missing {sorted(missing)}, extra {sorted(extra)}")
    for key in ALL:
        value = values[key]
        pulumi.export(key, pulumi.Output.secret(value) if key in SECRET else value)

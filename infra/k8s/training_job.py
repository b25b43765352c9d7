"""The benchmark's training Job: one run per ``trainingRun`` value."""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from infra.k8s.foundation import AUTH_SECRET, CLIENT_SERVICE_ACCOUNT
from infra.k8s.mlflow import secret_env
from infra.k8s.settings import WorkloadSettings, child_opts, container_security, pod_security
from infra.naming import component_type

CACHE_DIR = "/cache"
# A 2-vCPU node has ~1.9 allocatable CPUs after the system reservation; daemonsets take a little more.
# The CPU limit is the whole node: it never throttles below what the node has, it only bounds the pod.
RESOURCES = {"requests": {"cpu": "1500m", "memory": "4Gi"}, "limits": {"cpu": "2", "memory": "6Gi"}}
# The trainer's exit codes (trainer/cli.py): 2 = bad data or options, 3 = tracking server unusable.
EXIT_BAD_INPUT = 2
EXIT_TRACKING_UNUSABLE = 3
BACKOFF_LIMIT = 2
#: Set by the Job controller on every pod it creates (Kubernetes 1.27+).
JOB_UID_LABEL = "batch.kubernetes.io/controller-uid"


def pod_failure_policy() -> dict:
    """Bad data fails the Job at once (a retry reads the same data); a tracking-server failure is retried
    up to the backoff limit; pods evicted by a node drain or preemption do not count."""
    return {
        "rules": [
            {"action": "FailJob",
             "onExitCodes": {"containerName": "trainer", "operator": "In", "values": [EXIT_BAD_INPUT]}},
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        ]
    }


def job_name(run: str) -> str:
    """The Job's name carries the run id: a new id is a new Job, never an in-place (immutable) update."""
    return f"train-{run}"


class TrainingJob(pulumi.ComponentResource):
    """A batch/v1 Job running ``python -m trainer`` against the in-cluster tracking server."""

    def __init__(
        self,
        name: str,
        settings: WorkloadSettings,
        tracking_uri: str,
        image_pull_secrets: list[dict],
        opts: Optional[pulumi.ResourceOptions] = None,
    ) -> None:
        super().__init__(component_type("k8s", TrainingJob), name, None, opts)
        run = settings.training
        labels = {**settings.labels, "app.kubernetes.io/name": "trainer", "mlflow-multicloud/run": run.run}
        self.name = job_name(run.run)
        self.job = k8s.batch.v1.Job(
            f"{name}-{run.run}",
            metadata={
                "name": self.name,
                "namespace": settings.namespace,
                "labels": labels,
                # Training takes hours on CPUs; `pulumi up` returns once the Job exists.
                # Follow it with `kubectl logs -f job/<name>`; results land in MLflow.
                "annotations": {"pulumi.com/skipAwait": "true"},
            },
            spec={
                "backoffLimit": BACKOFF_LIMIT,
                # A replacement pod starts only once the failed one is gone, so two pods never
                # continue the same run (the run key) at once.
                "podReplacementPolicy": "Failed",
                "podFailurePolicy": pod_failure_policy(),
                "ttlSecondsAfterFinished": 7 * 24 * 3600,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": CLIENT_SERVICE_ACCOUNT,
                        "automountServiceAccountToken": False,
                        "restartPolicy": "Never",
                        "securityContext": pod_security(),
                        "imagePullSecrets": image_pull_secrets or None,
                        "containers": [
                            {
                                "name": "trainer",
                                "image": settings.images.trainer,
                                "command": ["python", "-m", "trainer"],
                                "args": [
                                    "--epochs", str(run.epochs),
                                    "--batch-size", str(run.batch_size),
                                    # The registered model serving loads (modelName), not the trainer's default.
                                    "--register-as", settings.mlflow.model_name,
                                    "--no-progress",
                                ],
                                "env": [
                                    {"name": "MLFLOW_TRACKING_URI", "value": tracking_uri},
                                    {"name": "MLFLOW_EXPERIMENT_NAME", "value": settings.mlflow.experiment_name},
                                    {"name": "CLOUD", "value": settings.cloud},
                                    {"name": "TRAINING_RUN", "value": run.run},
                                    # The Job's uid, the same for each of its pods and new for a new Job: a
                                    # pod that replaces a failed one continues the run from its checkpoint.
                                    {"name": "TRAINER_RUN_KEY", "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{JOB_UID_LABEL}']"}}},
                                    {"name": "CIFAR10_CACHE", "value": CACHE_DIR},
                                    # The root filesystem is read-only; anything that writes under $HOME lands in /tmp.
                                    {"name": "HOME", "value": "/tmp"},
                                    secret_env("MLFLOW_TRACKING_USERNAME", AUTH_SECRET, "username"),
                                    secret_env("MLFLOW_TRACKING_PASSWORD", AUTH_SECRET, "password"),
                                ],
                                "resources": RESOURCES,
                                "securityContext": container_security(),
                                "volumeMounts": [
                                    {"name": "cache", "mountPath": CACHE_DIR},
                                    {"name": "tmp", "mountPath": "/tmp"},
                                ],
                            }
                        ],
                        "volumes": [
                            {"name": "cache", "emptyDir": {"sizeLimit": "2Gi"}},
                            {"name": "tmp", "emptyDir": {"sizeLimit": "2Gi"}},
                        ],
                    },
                },
            },
            opts=child_opts(self, opts),
        )
        self.register_outputs({"name": self.name})

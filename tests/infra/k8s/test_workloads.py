"""The Kubernetes layer: schema-valid, identical across clouds but for documented settings, awaited, no plaintext secrets."""

from __future__ import annotations

import json

import pulumi_kubernetes
import pytest

from tests.infra import invariants
from tests.infra.harness import STACKS, load_stack, run_program
from infra import outputs
from infra.k8s import mlflow as mlflow_module
from infra.k8s import serving as serving_module
from infra.k8s import training_job as training_module


def test_every_object_validates_against_the_cluster_version_schema(run):
    assert run.kubernetes_objects(), "no Kubernetes objects registered"
    assert invariants.schema_violations(run) == []


def test_schema_check_fails_on_an_invalid_object(monkeypatch):
    original = pulumi_kubernetes.apps.v1.Deployment

    def with_typo(name, *args, spec=None, **kwargs):
        spec = {**spec, "replica": 1}  # not a DeploymentSpec field
        return original(name, *args, spec=spec, **kwargs)

    monkeypatch.setattr(pulumi_kubernetes.apps.v1, "Deployment", with_typo)
    problems = invariants.schema_violations(run_program(load_stack("aws")))
    assert any("replica" in p for p in problems), problems


def test_kubernetes_layer_is_identical_across_clouds_but_for_documented_settings(runs):
    layers = {stack: invariants.normalized_kubernetes_layer(run) for stack, run in runs.items()}
    assert layers["aws"] == layers["gcp"] == layers["ibm"]


def test_identity_check_notices_an_undocumented_difference(monkeypatch, runs):
    original = mlflow_module.server_env

    def env_with_cloud_branch(settings):
        extra = [{"name": "MLFLOW_GUNICORN_OPTS", "value": "--timeout 120"}] if settings.cloud == "ibm" else []
        return original(settings) + extra

    monkeypatch.setattr(mlflow_module, "server_env", env_with_cloud_branch)
    ibm = invariants.normalized_kubernetes_layer(run_program(load_stack("ibm")))
    assert ibm != invariants.normalized_kubernetes_layer(runs["aws"])


def test_documented_differences_are_really_per_cloud(runs):
    """The masked settings carry the cloud's own values (the mask hides real differences, not noise)."""
    def env(run):
        dep = next(r for r in run.of_type("kubernetes:apps/v1:Deployment") if r.inputs["metadata"]["name"] == "mlflow-server")
        return {e["name"]: e.get("value") for e in dep.inputs["spec"]["template"]["spec"]["containers"][0]["env"]}

    aws, gcp, ibm = (env(runs[s]) for s in STACKS)
    assert aws["MLFLOW_ARTIFACTS_DESTINATION"].startswith("s3://")
    assert gcp["MLFLOW_ARTIFACTS_DESTINATION"].startswith("gs://")
    assert ibm["MLFLOW_S3_ENDPOINT_URL"].startswith("https://s3.private.")
    assert "MLFLOW_S3_ENDPOINT_URL" not in aws and "AWS_ACCESS_KEY_ID" not in gcp
    assert ibm["MLFLOW_DB_PORT"] != "5432" and aws["MLFLOW_DB_PORT"] == gcp["MLFLOW_DB_PORT"] == "5432"


def test_no_plaintext_secret_anywhere(run):
    assert invariants.secret_leaks(run) == []


@pytest.mark.parametrize("stack", ["aws", "ibm"])
def test_secret_check_fails_when_a_password_lands_in_env(monkeypatch, stack):
    original = mlflow_module.server_env

    def leaky(settings):
        return original(settings) + [{"name": "MLFLOW_DB_PASSWORD_PLAIN", "value": settings.database.password}]

    monkeypatch.setattr(mlflow_module, "server_env", leaky)
    problems = invariants.secret_leaks(run_program(load_stack(stack)))
    assert any("MLFLOW_DB_PASSWORD_PLAIN" in p or "plain text" in p for p in problems), problems


def test_secret_check_fails_when_an_output_is_not_secret():
    from infra.program import build

    def unsealed(cfg):
        values = build(cfg)
        values[outputs.MLFLOW_ADMIN_PASSWORD] = values[outputs.MLFLOW_ADMIN_PASSWORD].apply(lambda p: p)
        return {**values, outputs.MLFLOW_ADMIN_PASSWORD: _unsecret(values[outputs.MLFLOW_ADMIN_PASSWORD])}

    problems = invariants.secret_leaks(run_program(load_stack("gcp"), program=unsealed))
    assert any(outputs.MLFLOW_ADMIN_PASSWORD in p for p in problems), problems


def _unsecret(output):
    import pulumi

    return pulumi.Output.unsecret(output)


def test_rollouts_are_awaited_with_timeouts_and_migration_comes_first(run):
    assert invariants.await_violations(run) == []


def test_await_check_fails_on_skip_await(monkeypatch):
    original = pulumi_kubernetes.apps.v1.Deployment

    def skipping(name, *args, metadata=None, **kwargs):
        metadata = {**metadata, "annotations": {"pulumi.com/skipAwait": "true"}}
        return original(name, *args, metadata=metadata, **kwargs)

    monkeypatch.setattr(pulumi_kubernetes.apps.v1, "Deployment", skipping)
    assert any("skips await" in p for p in invariants.await_violations(run_program(load_stack("gcp"))))


def _training_job(run):
    (job,) = [r for r in run.of_type("kubernetes:batch/v1:Job")
              if r.inputs["spec"]["template"]["spec"]["containers"][0]["name"] == "trainer"]
    return job


def _env(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def test_training_job_name_carries_the_run_so_a_new_run_is_a_new_job():
    first, second = _training_job(run_program(load_stack("aws"))), _training_job(
        run_program(load_stack("aws", trainingRun="run-2")))
    assert "run-2" in second.inputs["metadata"]["name"]
    assert first.inputs["metadata"]["name"] != second.inputs["metadata"]["name"], "same Job: immutable template update"
    assert first.name != second.name, "same Pulumi name: a new run would be an in-place update of an immutable Job"
    assert _env(second.inputs["spec"]["template"]["spec"]["containers"][0])["TRAINING_RUN"] == "run-2"


def test_training_job_runs_the_trainer_contract_against_the_in_cluster_service(run):
    job = _training_job(run)
    container = job.inputs["spec"]["template"]["spec"]["containers"][0]
    env = _env(container)
    svc = next(r for r in run.of_type("kubernetes:core/v1:Service") if r.inputs["metadata"]["name"] == "mlflow")
    meta, port = svc.inputs["metadata"], int(svc.inputs["spec"]["ports"][0]["port"])
    assert env["MLFLOW_TRACKING_URI"] == f"http://{meta['name']}.{meta['namespace']}.svc.cluster.local:{port}"
    assert env["CLOUD"] == run.outputs[outputs.CLOUD]
    assert container["command"] == ["python", "-m", "trainer"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert {"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"} <= set(refs)
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"MLFLOW_EXPERIMENT_NAME", "CIFAR10_CACHE"} <= set(env) and env["CIFAR10_CACHE"] in mounts
    # The trainer registers the model serving loads.
    serving = next(r for r in run.of_type("kubernetes:apps/v1:Deployment") if r.inputs["metadata"]["name"] == "serving")
    args = container["args"]
    assert args[args.index("--register-as") + 1] == _env(serving.inputs["spec"]["template"]["spec"]["containers"][0])["MODEL_NAME"]
    assert int(args[args.index("--batch-size") + 1]) == run.cfg.training.batch_size


def test_training_job_pods_share_the_jobs_uid_as_run_key_so_a_retry_resumes(run):
    container = _training_job(run).inputs["spec"]["template"]["spec"]["containers"][0]
    key = next(e for e in container["env"] if e["name"] == "TRAINER_RUN_KEY")
    # The Job controller labels each of its pods with the Job's uid: the same for every retry, new for a new Job.
    assert key["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/controller-uid']"}}
    from trainer.cli import build_parser

    assert build_parser().parse_args([]).run_key is None  # outside a Job nothing is resumed by accident


def test_every_pod_is_non_root_unprivileged_bounded_and_probed(run):
    assert invariants.workload_security_violations(run) == []


def _deployment_without_readiness(original):
    def build(name, *args, spec=None, **kwargs):
        pod = spec["template"]["spec"]
        containers = [{k: v for k, v in c.items() if k != "readinessProbe"} for c in pod["containers"]]
        spec = {**spec, "template": {**spec["template"], "spec": {**pod, "containers": containers}}}
        return original(name, *args, spec=spec, **kwargs)
    return build


@pytest.mark.parametrize(
    ("target", "attr", "replacement", "expected"),
    [
        (mlflow_module, "container_security", lambda: {"allowPrivilegeEscalation": True,
                                                        "capabilities": {"drop": ["ALL"]}}, "privilege escalation"),
        (training_module, "pod_security", lambda: {"runAsNonRoot": False}, "root"),
        (training_module, "RESOURCES", {"requests": {"cpu": "1", "memory": "4Gi"}}, "no limits"),
        (training_module, "pod_failure_policy", lambda: {"rules": []}, "exit code 2"),
        (serving_module.k8s.apps.v1, "Deployment", _deployment_without_readiness(pulumi_kubernetes.apps.v1.Deployment),
         "no readiness probe"),
    ],
)
def test_workload_security_check_fails_when_the_program_is_broken(monkeypatch, target, attr, replacement, expected):
    monkeypatch.setattr(target, attr, replacement)
    problems = invariants.workload_security_violations(run_program(load_stack("gcp")))
    assert any(expected in p for p in problems), problems


def test_training_job_fits_a_2_vcpu_node(run):
    job = _training_job(run)
    resources = job.inputs["spec"]["template"]["spec"]["containers"][0]["resources"]
    cpu = resources["requests"]["cpu"]
    millicores = int(cpu[:-1]) if cpu.endswith("m") else int(float(cpu) * 1000)
    shape = run.cfg.cluster.node_shape
    # Kubelet/system reservation leaves < 1.95 CPUs allocatable on 2 vCPUs; memory likewise below the raw size.
    assert millicores <= shape.vcpus * 1000 - 100
    assert int(resources["limits"]["memory"].removesuffix("Gi")) < shape.memory_gib


def test_mlflow_allows_its_own_service_names_and_serves_behind_a_restricted_load_balancer(run):
    dep = next(r for r in run.of_type("kubernetes:apps/v1:Deployment") if r.inputs["metadata"]["name"] == "mlflow-server")
    env = {e["name"]: e.get("value") for e in dep.inputs["spec"]["template"]["spec"]["containers"][0]["env"]}
    hosts = env["MLFLOW_ALLOWED_HOSTS"].split(",")
    svc = next(r for r in run.of_type("kubernetes:core/v1:Service") if r.inputs["metadata"]["name"] == "mlflow")
    name, ns = svc.inputs["metadata"]["name"], svc.inputs["metadata"]["namespace"]
    assert {name, f"{name}.{ns}", f"{name}.{ns}.svc", f"{name}.{ns}.svc.cluster.local"} <= set(hosts)
    assert svc.inputs["spec"]["type"] == "LoadBalancer"
    assert svc.inputs["spec"]["ports"][0]["port"] == 80 and svc.inputs["spec"]["ports"][0]["targetPort"] == "http"
    assert svc.inputs["spec"]["loadBalancerSourceRanges"] == list(run.cfg.mlflow.allowed_source_ranges)
    assert env["MLFLOW_AUTH"] == "true"


def test_source_ranges_come_from_config():
    run = run_program(load_stack("ibm", allowedSourceRanges=["203.0.113.0/24"]))
    ranges = {tuple(r.inputs["spec"]["loadBalancerSourceRanges"]) for r in run.of_type("kubernetes:core/v1:Service")}
    assert ranges == {("203.0.113.0/24",)}


def test_outputs_are_the_same_keys_on_every_cloud(runs):
    for stack, run in runs.items():
        assert tuple(run.outputs) == outputs.ALL, stack
        assert run.outputs[outputs.CLOUD] == stack
        assert run.outputs[outputs.NODE_COUNT] == invariants.nodes(run)[1]
        assert run.outputs[outputs.NODE_INSTANCE_TYPE] == invariants.nodes(run)[0]
        assert outputs.SECRET <= run.secret_outputs
        config = json.loads(run.outputs[outputs.KUBECONFIG])
        assert config["clusters"][0]["cluster"]["server"].startswith("https://")


def test_without_workloads_there_is_no_kubernetes_object_and_the_same_outputs():
    run = run_program(load_stack("gcp", workloads=False))
    assert run.kubernetes_objects() == []
    assert tuple(run.outputs) == outputs.ALL


def test_images_default_to_the_stacks_registry_and_config_overrides_them(runs):
    def images(run):
        return {c["image"] for r in run.kubernetes_objects() if r.inputs.get("spec", {}).get("template")
                for c in r.inputs["spec"]["template"]["spec"]["containers"]}

    for run in runs.values():
        registry = run.outputs[outputs.REGISTRY_URL]
        assert images(run) == {f"{registry}/{n}:latest" for n in ("mlflow-server", "trainer", "serving")}
    pinned = run_program(load_stack("aws", trainerImage="ghcr.io/example/trainer:1.0"))
    assert "ghcr.io/example/trainer:1.0" in images(pinned)


def test_mlflow_pods_set_only_settings_the_entrypoint_reads(run):
    from tests.test_mlflow_server import entrypoint

    library_settings = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}  # read by boto3 itself
    servers = [r for r in run.of_type("kubernetes:apps/v1:Deployment") + run.of_type("kubernetes:batch/v1:Job")
               if r.inputs["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/name") == "mlflow-server"]
    assert len(servers) == 2, "the migration Job and the server Deployment"
    for workload in servers:
        container = workload.inputs["spec"]["template"]["spec"]["containers"][0]
        names = {e["name"] for e in container["env"]}
        unknown = names - set(entrypoint.SETTINGS) - library_settings
        assert not unknown, f"{workload.name} sets {unknown}, which the entrypoint does not read"
        assert {"MLFLOW_DB_HOST", "MLFLOW_ARTIFACTS_DESTINATION"} <= names
        assert container.get("command", ["mlflow-server-entrypoint"])[0] == "mlflow-server-entrypoint"

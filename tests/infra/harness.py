"""Pulumi mocks for the infra tests: the real program, every registration recorded.

Imported as ``tests.infra.harness`` (tests/infra is a package, so nothing here
clashes with the rest of the suite); ``conftest.py`` only exposes its fixtures.

* Stack configs are loaded the way the Pulumi CLI hands them to a program:
  Pulumi.yaml defaults overlaid by Pulumi.<stack>.yaml, serialised to strings,
  put in the runtime's config store, and read by ``infra.config.load_config``.
* ``RecordingMonitor`` keeps each registration's raw inputs with their secret
  markers, its parent, dependencies, provider and custom timeouts, and, like
  the engine, marks ``additionalSecretOutputs`` secret in the outputs.
* ``Mocks`` fills in what clouds compute (ids, endpoints, generated passwords).
"""

from __future__ import annotations

import base64
import json
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import yaml

ROOT = Path(__file__).resolve().parents[2]
# fakes/ is a path root (like site-packages), not a package: it makes the test double
# importable as top-level ``pulumi_ibm``, ahead of any SDK `pulumi install` generated.
FAKES = Path(__file__).resolve().parent / "fakes"
for path in (str(FAKES), str(ROOT)):
    if path not in sys.path:
        sys.path.insert(0, path)

import pulumi  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from pulumi.runtime import mocks as pulumi_mocks  # noqa: E402
from pulumi.runtime import rpc  # noqa: E402
from pulumi.runtime.proto import resource_pb2  # noqa: E402
from pulumi.runtime.config import set_all_config  # noqa: E402
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await  # noqa: E402

from infra import config as infra_config  # noqa: E402
from infra.program import build  # noqa: E402

SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
SIG_KEY = "4dabf18193072939515e22adb298388d"
STACKS = ("aws", "gcp", "ibm")
# What a user must add to the committed stack files before `pulumi up` (documented in the README, "Clouds").
USER_SETTINGS = {"gcp": {"gcpProject": "mlflow-study-test"}}


# --------------------------------------------------------------------------- stack files


def project_defaults() -> dict[str, Any]:
    """Pulumi.yaml's declared defaults, keyed by unqualified config key."""
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    return {key: spec["default"] for key, spec in declared.items() if "default" in spec}


def stack_file_values(stack: str) -> dict[str, Any]:
    """Pulumi.<stack>.yaml's project-namespace values, unqualified."""
    values = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    prefix = f"{infra_config.PROJECT}:"
    assert all(key.startswith(prefix) for key in values), f"Pulumi.{stack}.yaml sets a key outside {prefix}"
    return {key[len(prefix):]: value for key, value in values.items()}


def stack_values(stack: str, **overrides: Any) -> dict[str, Any]:
    """Defaults < stack file < the user's own settings < ``overrides``."""
    return {**project_defaults(), **stack_file_values(stack), **USER_SETTINGS.get(stack, {}), **overrides}


def load_stack(stack: str, **overrides: Any) -> infra_config.StackConfig:
    """Config of ``stack`` as the CLI would pass it (strings, JSON for non-strings), via load_config()."""
    as_cli = {
        f"{infra_config.PROJECT}:{key}": value if isinstance(value, str) else json.dumps(value)
        for key, value in stack_values(stack, **overrides).items()
    }
    set_all_config(as_cli)
    try:
        return infra_config.load_config()
    finally:
        set_all_config({})


# --------------------------------------------------------------------------- recording


@dataclass
class Registration:
    """One registered resource as the engine would have seen it."""

    typ: str
    name: str
    urn: str
    parent: str
    custom: bool
    provider: str
    dependencies: list[str]
    custom_timeouts: dict[str, str]
    raw_inputs: dict[str, Any]
    inputs: dict[str, Any]

    def plain_strings(self) -> Iterator[str]:
        """Every string in the inputs that is NOT inside a secret marker."""
        yield from _strings(self.raw_inputs, inside_secret=False, want_secret=False)

    def secret_strings(self) -> Iterator[str]:
        """Every string in the inputs that IS inside a secret marker."""
        yield from _strings(self.raw_inputs, inside_secret=False, want_secret=True)

    @property
    def resource_id(self) -> str:
        """The id the mocks gave this resource (what other resources receive as ``.id``)."""
        return f"{self.name}-id"

    @property
    def is_kubernetes_object(self) -> bool:
        """A Kubernetes API object (not the provider)."""
        return self.typ.startswith("kubernetes:") and self.custom


def _strings(value: Any, inside_secret: bool, want_secret: bool) -> Iterator[str]:
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            yield from _strings(value.get("value"), True, want_secret)
            return
        for key, item in value.items():
            if isinstance(key, str) and inside_secret == want_secret:
                yield key
            yield from _strings(item, inside_secret, want_secret)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, inside_secret, want_secret)
    elif isinstance(value, str) and inside_secret == want_secret:
        yield value


def unwrap(value: Any) -> Any:
    """``value`` with secret markers removed (plain Python values)."""
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return unwrap(value.get("value"))
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """MockMonitor that records registrations and applies secret-ness like the engine.

    Registrations arrive on several threads at once, so nothing here is shared
    between calls except the append-only list (guarded by a lock).
    """

    def __init__(self, mocks: "Mocks") -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self._lock = threading.Lock()

    def RegisterResource(self, request):  # noqa: N802 - gRPC method name
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            return resource_pb2.RegisterResourceResponse(urn=urn)
        _ensure_event_loop()
        raw = json_format.MessageToDict(request.object)
        inputs = rpc.deserialize_properties(request.object)
        args = pulumi_mocks.MockResourceArgs(
            typ=request.type, name=request.name, inputs=inputs, provider=request.provider,
            resource_id=request.importId, custom=request.custom or False,
        )
        id_, state = self.mocks.new_resource(args)
        # The engine marks declared secret outputs, and outputs whose input was secret, as secret.
        secret_keys = set(request.additionalSecretOutputs) | {k for k, v in raw.items() if _is_secret(v)}
        for key in secret_keys & set(state):
            if not _is_secret(state[key]):
                state[key] = {SIG_KEY: SECRET_SIG, "value": state[key]}
        obj_proto = _sync_await(rpc.serialize_properties(state, {}))
        self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, id_, state)
        timeouts = request.customTimeouts
        registration = Registration(
            typ=request.type,
            name=request.name,
            urn=urn,
            parent=request.parent,
            custom=request.custom,
            provider=request.provider,
            dependencies=list(request.dependencies),
            custom_timeouts={"create": timeouts.create, "update": timeouts.update} if timeouts else {},
            raw_inputs=raw,
            inputs=unwrap(raw),
        )
        with self._lock:
            self.registrations.append(registration)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=id_, object=obj_proto)


class Mocks(pulumi.runtime.Mocks):
    """Computed attributes per resource type and data-source answers; records generated secrets."""

    def __init__(self) -> None:
        self.generated_secrets: set[str] = set()
        self.calls: list[pulumi_mocks.MockCallArgs] = []

    def secret(self, value: str) -> str:
        """A generated secret value the tests will hunt for."""
        self.generated_secrets.add(value)
        return value

    def new_resource(self, args: pulumi_mocks.MockResourceArgs):
        state = dict(args.inputs)
        extra = COMPUTED.get(args.typ)
        if extra:
            state.update(extra(self, args.name, unwrap(args.inputs)))
        return f"{args.name}-id", state

    def call(self, args: pulumi_mocks.MockCallArgs):
        self.calls.append(args)
        answer = CALLS.get(args.token)
        if answer is None:
            raise AssertionError(f"unexpected invoke {args.token}")
        return answer(self, args.args)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


COMPUTED: dict[str, Callable[[Mocks, str, dict], dict]] = {
    "random:index/randomPassword:RandomPassword": lambda m, n, i: {"result": m.secret(f"generated-secret-{n}")},
    "random:index/randomString:RandomString": lambda m, n, i: {"result": "a1b2c3"},
    # AWS
    "aws:eks/cluster:Cluster": lambda m, n, i: {
        "endpoint": "https://ABCDEF.gr7.us-east-1.eks.amazonaws.com",
        "certificateAuthority": {"data": _b64("aws-ca")},
        "identities": [{"oidcs": [{"issuer": "https://oidc.eks.us-east-1.amazonaws.com/id/ABCDEF"}]}],
        "vpcConfig": {**i.get("vpcConfig", {}), "clusterSecurityGroupId": "sg-eks-cluster"},
        "arn": f"arn:aws:eks:us-east-1:123456789012:cluster/{i.get('name')}",
    },
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": lambda m, n, i: {
        "arn": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABCDEF"
    },
    "aws:iam/role:Role": lambda m, n, i: {"arn": f"arn:aws:iam::123456789012:role/{n}", "name": n},
    "aws:s3/bucket:Bucket": lambda m, n, i: {
        "bucket": f"{i.get('bucketPrefix', '')}20240101abcdef",
        "arn": f"arn:aws:s3:::{i.get('bucketPrefix', '')}20240101abcdef",
    },
    "aws:ecr/repository:Repository": lambda m, n, i: {
        "repositoryUrl": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{i['name']}"
    },
    "aws:rds/instance:Instance": lambda m, n, i: {"address": "mlflow-db.abc.us-east-1.rds.amazonaws.com"},
    "aws:ec2/launchTemplate:LaunchTemplate": lambda m, n, i: {"latestVersion": 1},
    "aws:rds/parameterGroup:ParameterGroup": lambda m, n, i: {"name": n},
    "aws:rds/subnetGroup:SubnetGroup": lambda m, n, i: {"name": n},
    # GCP
    "gcp:container/cluster:Cluster": lambda m, n, i: {
        "endpoint": "34.1.2.3",
        "masterAuth": {"clusterCaCertificate": _b64("gcp-ca")},
        "masterVersion": "1.33.5-gke.100",
    },
    "gcp:serviceaccount/account:Account": lambda m, n, i: {
        "email": f"{i['accountId']}@mlflow-study-test.iam.gserviceaccount.com",
        "name": f"projects/mlflow-study-test/serviceAccounts/{i['accountId']}@mlflow-study-test.iam.gserviceaccount.com",
    },
    "gcp:sql/databaseInstance:DatabaseInstance": lambda m, n, i: {"privateIpAddress": "10.50.0.3", "name": n},
    "gcp:storage/bucket:Bucket": lambda m, n, i: {"name": f"{n}-7f3a9c"},
    "gcp:compute/globalAddress:GlobalAddress": lambda m, n, i: {"name": n},
    "gcp:compute/router:Router": lambda m, n, i: {"name": n},
    # IBM
    "ibm:index/isSubnet:IsSubnet": lambda m, n, i: {"ipv4CidrBlock": "10.240.0.0/24"},
    "ibm:index/containerVpcCluster:ContainerVpcCluster": lambda m, n, i: {"id": f"{n}-id"},
    "ibm:index/database:Database": lambda m, n, i: {"id": f"crn:v1:bluemix:public:databases-for-postgresql::{n}"},
    "ibm:index/resourceInstance:ResourceInstance": lambda m, n, i: {"id": f"crn:v1:bluemix:public:cloud-object-storage:global:{n}"},
    "ibm:index/cosBucket:CosBucket": lambda m, n, i: {
        "s3EndpointPrivate": "s3.private.us-south.cloud-object-storage.appdomain.cloud",
        "s3EndpointPublic": "s3.us-south.cloud-object-storage.appdomain.cloud",
    },
    "ibm:index/resourceKey:ResourceKey": lambda m, n, i: {
        "credentials": {
            "cos_hmac_keys.access_key_id": m.secret("hmac-access-key-id-0123"),
            "cos_hmac_keys.secret_access_key": m.secret("hmac-secret-access-key-4567"),
        }
    },
    "ibm:index/iamServiceId:IamServiceId": lambda m, n, i: {"iamId": f"iam-ServiceId-{n}"},
    "ibm:index/iamServiceApiKey:IamServiceApiKey": lambda m, n, i: {"apikey": m.secret("icr-pull-api-key-89ab")},
    # Kubernetes: a LoadBalancer Service gets an address.
    "kubernetes:core/v1:Service": lambda m, n, i: {
        "status": {"loadBalancer": {"ingress": [{"hostname": f"{n}.lb.example.net"}]}}
    },
}

CALLS: dict[str, Callable[[Mocks, dict], dict]] = {
    "aws:ec2/getAmi:getAmi": lambda m, a: {"id": "ami-0ubuntu2404eks", "name": "ubuntu-eks/k8s_1.33/images/x"},
    "ibm:index/getResourceGroup:getResourceGroup": lambda m, a: {"id": "rg-0123"},
    "ibm:index/getContainerClusterConfig:getContainerClusterConfig": lambda m, a: {
        "host": "https://c100.us-south.containers.cloud.ibm.com:30426",
        "caCertificate": "-----BEGIN CERTIFICATE-----ibm-ca",
        "adminCertificate": "-----BEGIN CERTIFICATE-----ibm-admin",
        "adminKey": m.secret("-----BEGIN PRIVATE KEY-----ibm-admin-key"),
    },
    "ibm:index/getDatabaseConnection:getDatabaseConnection": lambda m, a: {
        "postgres": [{"hosts": [{"hostname": "abc.private.databases.appdomain.cloud", "port": 31544}],
                      "database": "ibmclouddb"}]
    },
}


# --------------------------------------------------------------------------- running


@dataclass
class ProgramRun:
    """The registrations and resolved outputs of one run of the program."""

    cfg: infra_config.StackConfig
    registrations: list[Registration]
    outputs: dict[str, Any]
    secret_outputs: set[str]
    generated_secrets: set[str]
    calls: list[pulumi_mocks.MockCallArgs] = field(default_factory=list)

    def of_type(self, typ: str) -> list[Registration]:
        """Registrations of one type token."""
        return [r for r in self.registrations if r.typ == typ]

    def one(self, typ: str) -> Registration:
        """The single registration of ``typ`` (fails if there are none or several)."""
        found = self.of_type(typ)
        assert len(found) == 1, f"expected one {typ}, found {[r.name for r in found]}"
        return found[0]

    def kubernetes_objects(self) -> list[Registration]:
        """Every Kubernetes API object."""
        return [r for r in self.registrations if r.is_kubernetes_object]

    def by_urn(self, urn: str) -> Optional[Registration]:
        """The registration with this URN."""
        return next((r for r in self.registrations if r.urn == urn), None)


def run_program(cfg: infra_config.StackConfig, program: Callable = build) -> ProgramRun:
    """Run ``program(cfg)`` under mocks and wait for every registration and output."""
    mocks = Mocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=infra_config.PROJECT, stack=cfg.cloud, preview=False, monitor=monitor)
    produced: dict[str, Any] = {}

    @pulumi.runtime.test
    def go():
        produced.update(program(cfg))
        return pulumi.Output.all(*[pulumi.Output.from_input(v) for v in produced.values()])

    go()
    values, secret = {}, set()
    for key, value in produced.items():
        out = pulumi.Output.from_input(value)
        values[key] = _sync_await(out.future())
        if _sync_await(out.is_secret()):
            secret.add(key)
    return ProgramRun(cfg, monitor.registrations, values, secret, mocks.generated_secrets, mocks.calls)


_RUNS: dict[str, ProgramRun] = {}


def stack_run(stack: str) -> ProgramRun:
    """The program run for a committed stack file (cached: the program is deterministic)."""
    if stack not in _RUNS:
        _RUNS[stack] = run_program(load_stack(stack))
    return _RUNS[stack]

"""Config: Pulumi.yaml and infra/config.py declare the same keys; parsing rejects bad stacks by key name."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from tests.infra.harness import ROOT, STACKS, load_stack, project_defaults, stack_file_values, stack_values
from infra import config
from infra.config import ConfigError, node_shape, parse

YAML_TYPES = {"string": str, "integer": int, "boolean": bool, "array": list}


def test_pulumi_yaml_declares_exactly_the_keys_config_reads_with_the_same_types():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert {k: v["type"] for k, v in declared.items()} == config.KEYS
    for key, spec in declared.items():
        assert spec.get("description"), f"{key} has no description"
        if "default" in spec:
            assert isinstance(spec["default"], YAML_TYPES[spec["type"]]), key
    assert "default" not in declared["cloud"], "cloud must come from the stack file"


@pytest.mark.parametrize("stack", STACKS)
def test_stack_files_hold_only_what_differs(stack):
    defaults = project_defaults()
    for key, value in stack_file_values(stack).items():
        assert key in config.KEYS, f"Pulumi.{stack}.yaml sets unknown key {key}"
        assert defaults.get(key) != value, f"Pulumi.{stack}.yaml repeats the default of {key}"


@pytest.mark.parametrize("stack", STACKS)
def test_cli_path_and_direct_parse_agree(stack):
    """load_config() over the CLI's string encoding yields what parse() makes of the YAML values."""
    assert load_stack(stack) == parse(stack_values(stack))


def test_every_stack_is_2_vcpu_nodes_of_the_same_memory_class():
    shapes = {stack: load_stack(stack).cluster.node_shape for stack in STACKS}
    assert {s.vcpus for s in shapes.values()} == {2}, shapes
    assert len({s.memory_gib for s in shapes.values()}) == 1, shapes


@pytest.mark.parametrize(
    ("cloud", "node_type", "vcpus", "memory"),
    [("aws", "m6i.large", 2, 8), ("gcp", "n2-standard-2", 2, 8), ("gcp", "n2-custom-2-12288", 2, 12),
     ("ibm", "bx2.2x8", 2, 8), ("ibm", "mx2.2x16", 2, 16)],
)
def test_node_shape_reads_the_type(cloud, node_type, vcpus, memory):
    assert node_shape(cloud, node_type) == config.NodeShape(vcpus, memory)


@pytest.mark.parametrize(
    ("stack", "overrides", "key"),
    [
        ("aws", {"zones": ["us-east-1a"]}, "zones"),
        ("gcp", {"zones": ["us-central1-a", "us-central1-b"]}, "zones"),
        ("gcp", {"gcpProject": ""}, "gcpProject"),
        ("aws", {"cloud": "azure"}, "cloud"),
        ("aws", {"nodeInstanceType": "x9.huge"}, "nodeInstanceType"),
        ("ibm", {"region": "mars-1"}, "region"),
        ("aws", {"kubernetesVersion": "1.33.2"}, "kubernetesVersion"),
        ("aws", {"trainingRun": "Run_1"}, "trainingRun"),
        ("aws", {"allowedSourceRanges": ["everyone"]}, "allowedSourceRanges"),
        ("aws", {"nodeCount": "3"}, "nodeCount"),
        ("aws", {"servingReplicas": -1}, "servingReplicas"),
        ("aws", {"unknownKey": 1}, "unknownKey"),
    ],
)
def test_bad_values_are_rejected_naming_the_key(stack, overrides, key):
    with pytest.raises(ConfigError) as err:
        parse(stack_values(stack, **overrides))
    assert err.value.key == key
    assert f"mlflow-multicloud:{key}" in str(err.value)


def test_missing_cloud_is_rejected():
    values = stack_values("aws")
    del values["cloud"]
    with pytest.raises(ConfigError, match="cloud"):
        parse(values)


def test_config_objects_are_frozen():
    cfg = load_stack("aws")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.cluster.node_count = 5  # type: ignore[misc]

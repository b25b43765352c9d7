"""Entry point the Pulumi CLI runs for ``--policy-pack policy``; it serves the pack until the engine is done."""

from pulumi_policy import EnforcementLevel, PolicyPack

from policies import POLICIES  # a sibling module: the CLI runs this folder as a script

PolicyPack(name="mlflow-multicloud", enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)

"""Kubeconfig rendering shared by the clouds (JSON is valid kubeconfig YAML)."""

from __future__ import annotations

import json
from typing import Any, Mapping


def render(cluster_name: str, server: str, ca_data_b64: str, user: Mapping[str, Any]) -> str:
    """A single-context kubeconfig for ``server``; ``user`` is the users[].user body."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": cluster_name, "cluster": {"server": server, "certificate-authority-data": ca_data_b64}}],
            "users": [{"name": cluster_name, "user": dict(user)}],
            "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
            "current-context": cluster_name,
        },
        indent=2,
    )


def exec_user(command: str, args: list[str], env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A users[].user that obtains a token from a cloud CLI (no credential stored)."""
    user: dict[str, Any] = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": command,
            "args": list(args),
            "interactiveMode": "Never",
        }
    }
    if env:
        user["exec"]["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return user

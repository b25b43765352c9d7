"""IBM database: Databases for PostgreSQL on the private endpoint only, admitting only the cluster subnet.

IBM Cloud Databases always require TLS; the connection details come from the
ibm_database_connection data source (IBM picks the port, not 5432).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_ibm as ibm
import pulumi_random as random

from infra.clouds.base import DatabaseOut
from infra.config import DatabaseConfig
from infra.naming import component_type

DB_USER = "mlflow"


@dataclass(frozen=True)
class DatabaseArgs:
    """Database settings, region, resource group, and the only CIDR allowed to connect."""

    config: DatabaseConfig
    region: str
    resource_group_id: pulumi.Input[str]
    client_cidr: pulumi.Input[str]


class Database(pulumi.ComponentResource):
    """ibm_database (postgresql, private endpoint, allowlist = cluster subnet) and its mlflow user."""

    def __init__(self, name: str, args: DatabaseArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(component_type("ibm", Database), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cfg = args.config
        # IBM accepts user passwords of 10-32 characters.
        password = random.RandomPassword(f"{name}-password", length=32, special=False, opts=child)
        self.instance = ibm.Database(
            f"{name}-postgres",
            name=f"{name}-postgres",
            service="databases-for-postgresql",
            plan=cfg.tier,
            location=args.region,
            version=cfg.postgres_version,
            resource_group_id=args.resource_group_id,
            service_endpoints="private",
            users=[{"name": DB_USER, "password": password.result, "type": "database"}],
            # Terraform block `allowlist` (a set): the bridge names it `allowlists`.
            allowlists=[{"address": args.client_cidr, "description": "cluster worker subnet"}],
            opts=child,
        )
        connection = ibm.get_database_connection_output(
            deployment_id=self.instance.id,
            user_id=DB_USER,
            user_type="database",
            endpoint_type="private",
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        postgres = connection.apply(lambda c: c.postgres[0])
        self.out = DatabaseOut(
            host=postgres.apply(lambda p: p.hosts[0].hostname),
            port=postgres.apply(lambda p: p.hosts[0].port),
            name=postgres.apply(lambda p: p.database),
            username=DB_USER,
            password=password.result,
        )
        self.register_outputs({"host": self.out.host})

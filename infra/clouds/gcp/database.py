"""GCP database: Cloud SQL PostgreSQL on a private IP only, TLS required, destroyable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_gcp as gcp
import pulumi_random as random

from infra.clouds.base import DatabaseOut
from infra.config import DatabaseConfig
from infra.naming import component_type

DB_NAME = "mlflow"
DB_USER = "mlflow"
PORT = 5432


@dataclass(frozen=True)
class DatabaseArgs:
    """Database settings, region/zone, the VPC and the private-services connection to wait for."""

    config: DatabaseConfig
    region: str
    zone: str
    network_id: pulumi.Input[str]
    private_services: pulumi.Resource


class Database(pulumi.ComponentResource):
    """Cloud SQL instance (no public IPv4, ENCRYPTED_ONLY), its database and user."""

    def __init__(self, name: str, args: DatabaseArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(component_type("gcp", Database), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cfg = args.config
        self.instance = gcp.sql.DatabaseInstance(
            f"{name}-postgres",
            region=args.region,
            database_version=f"POSTGRES_{cfg.postgres_version}",
            deletion_protection=False,
            settings={
                "tier": cfg.tier,
                "edition": "ENTERPRISE",
                "availability_type": "ZONAL",
                "disk_size": cfg.storage_gb,
                "disk_type": "PD_SSD",
                "location_preference": {"zone": args.zone},
                "deletion_protection_enabled": False,
                "ip_configuration": {
                    "ipv4_enabled": False,
                    "private_network": args.network_id,
                    "ssl_mode": "ENCRYPTED_ONLY",
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.private_services]),
        )
        gcp.sql.Database(f"{name}-mlflow", name=DB_NAME, instance=self.instance.name, opts=child)
        password = random.RandomPassword(f"{name}-password", length=32, special=False, opts=child)
        gcp.sql.User(f"{name}-mlflow", name=DB_USER, instance=self.instance.name, password=password.result, opts=child)
        self.out = DatabaseOut(
            host=self.instance.private_ip_address, port=PORT, name=DB_NAME, username=DB_USER, password=password.result
        )
        self.register_outputs({"host": self.instance.private_ip_address})

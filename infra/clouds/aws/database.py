"""AWS database: RDS PostgreSQL, private, encrypted, TLS-only, reachable on 5432 from the cluster only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.clouds.base import DatabaseOut
from infra.config import DatabaseConfig
from infra.naming import component_type

DB_NAME = "mlflow"
DB_USER = "mlflow"
PORT = 5432


@dataclass(frozen=True)
class DatabaseArgs:
    """Database settings, the VPC and subnets, the zone, and the only security group admitted."""

    config: DatabaseConfig
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    zone: str
    client_security_group_id: pulumi.Input[str]


class Database(pulumi.ComponentResource):
    """RDS instance in a DB subnet group with its own security group and a force_ssl parameter group."""

    def __init__(self, name: str, args: DatabaseArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(component_type("aws", Database), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cfg = args.config
        subnets = aws.rds.SubnetGroup(f"{name}-subnets", subnet_ids=list(args.subnet_ids), opts=child)
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg", vpc_id=args.vpc_id, description="PostgreSQL from the EKS cluster only", opts=child
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-from-cluster",
            security_group_id=self.security_group.id,
            referenced_security_group_id=args.client_security_group_id,
            ip_protocol="tcp",
            from_port=PORT,
            to_port=PORT,
            description="PostgreSQL from the EKS cluster security group",
            opts=child,
        )
        parameters = aws.rds.ParameterGroup(
            f"{name}-params",
            family=f"postgres{cfg.postgres_version}",
            parameters=[{"name": "rds.force_ssl", "value": "1", "apply_method": "pending-reboot"}],
            opts=child,
        )
        password = random.RandomPassword(f"{name}-password", length=32, special=False, opts=child)
        self.instance = aws.rds.Instance(
            f"{name}-postgres",
            engine="postgres",
            engine_version=cfg.postgres_version,
            instance_class=cfg.tier,
            allocated_storage=cfg.storage_gb,
            storage_type="gp3",
            storage_encrypted=True,
            db_name=DB_NAME,
            username=DB_USER,
            password=password.result,
            port=PORT,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[self.security_group.id],
            parameter_group_name=parameters.name,
            availability_zone=args.zone,
            publicly_accessible=False,
            multi_az=False,
            skip_final_snapshot=True,
            deletion_protection=False,
            apply_immediately=True,
            opts=child,
        )
        self.out = DatabaseOut(
            host=self.instance.address, port=PORT, name=DB_NAME, username=DB_USER, password=password.result
        )
        self.register_outputs({"host": self.instance.address})

"""Test double of the generated ``pulumi_ibm`` SDK (no wheel exists; `pulumi install` generates it).

Only what infra/clouds/ibm uses: resources as ``pulumi.CustomResource`` subclasses
with the real type tokens, data sources as invokes with the real tokens. Argument
names are those of the IBM Terraform provider's schema as the Pulumi Terraform bridge
names them: snake_case, and a list or set block without ``MaxItems: 1`` pluralised
unless the plural is already another field (``allowlist`` -> ``allowlists``,
``expire_rule`` -> ``expire_rules``, but ``group`` stays because ``groups`` exists),
the way pulumi_aws turns the ``ingress`` block into ``ingress``/``ingresses``. Any
other name raises TypeError, as the generated SDK would. The nested blocks the
program fills in (``NESTED``) and ``TypeMap`` arguments (string values only) are
checked as well.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any, Iterable, Optional

import pulumi


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _check(what: str, given: Iterable[str], allowed: frozenset[str]) -> None:
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise TypeError(f"{what}() got unexpected keyword argument(s): {', '.join(unknown)}")


# Nested blocks the program fills in: their keys, and whether the block has MaxItems: 1
# (the bridge then takes one object, not a list: ibm_iam_service_policy's `resources`).
NESTED: dict[tuple[str, str], tuple[str, frozenset[str]]] = {
    ("ContainerVpcCluster", "zones"): ("list", frozenset({"name", "subnet_id"})),
    ("Database", "users"): ("list", frozenset({"name", "password", "type", "role"})),
    ("Database", "allowlists"): ("list", frozenset({"address", "description"})),
    ("IamServicePolicy", "resources"): ("single", frozenset(
        {"service", "resource_instance_id", "region", "resource_type", "resource", "resource_group_id",
         "service_type", "attributes"}
    )),
}
# TypeMap arguments: Terraform hands the provider strings only (ibm_resource_key compares v == "true").
STRING_MAPS: dict[str, frozenset[str]] = {"ResourceKey": frozenset({"parameters"}),
                                          "ResourceInstance": frozenset({"parameters"})}


def _check_nested(class_name: str, kwargs: dict) -> None:
    for (owner, block), (shape, keys) in NESTED.items():
        value = kwargs.get(block)
        if owner != class_name or value is None or isinstance(value, pulumi.Output):
            continue
        if shape == "single" and not isinstance(value, dict):
            raise TypeError(f"{class_name}() argument {block} is one object (MaxItems: 1), got {type(value).__name__}")
        if shape == "list" and not isinstance(value, list):
            raise TypeError(f"{class_name}() argument {block} is a list, got {type(value).__name__}")
        for item in [value] if shape == "single" else value:
            if isinstance(item, dict):
                _check(f"{class_name}.{block}", item, keys)
    for name in STRING_MAPS.get(class_name, ()):
        value = kwargs.get(name)
        if isinstance(value, dict) and not all(isinstance(v, (str, pulumi.Output)) for v in value.values()):
            raise TypeError(f"{class_name}() argument {name} is a map of strings, got {value!r}")


def _resource(class_name: str, token: str, arguments: str, attributes: str = "", secret: str = ""):
    allowed = frozenset(arguments.split())
    outputs = tuple(attributes.split())
    secret_outputs = [_camel(name) for name in secret.split()]

    def __init__(self, resource_name: str, opts: Optional[pulumi.ResourceOptions] = None, **kwargs: Any) -> None:
        _check(class_name, kwargs, allowed)
        _check_nested(class_name, kwargs)
        props = {_camel(k): v for k, v in kwargs.items()}
        # Like the generated SDK, every argument and attribute is an output property.
        for name in (*allowed, *outputs):
            props.setdefault(_camel(name), None)
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=secret_outputs))
        pulumi.CustomResource.__init__(self, token, resource_name, props, opts)
        for key in list(props):
            setattr(self, _snake(key), getattr(self, key))

    return type(
        class_name,
        (pulumi.CustomResource,),
        {"__init__": __init__, "TOKEN": token, "ARGUMENTS": allowed, "TERRAFORM_TYPE": _terraform_type(class_name)},
    )


def _terraform_type(class_name: str) -> str:
    """ibm_<snake> of a class name: the Terraform resource the bridge made it from (IsVpc -> ibm_is_vpc)."""
    return "ibm_" + _snake(class_name)


class Provider(pulumi.ProviderResource):
    """The ibm provider (ibm_cloud API key comes from IC_API_KEY)."""

    ARGUMENTS = frozenset(
        "ibmcloud_api_key region zone visibility private_endpoint_type max_retries ibmcloud_timeout "
        "iaas_classic_username iaas_classic_api_key resource_group endpoints_file_path generation".split()
    )

    def __init__(self, resource_name: str, opts: Optional[pulumi.ResourceOptions] = None, **kwargs: Any) -> None:
        _check("Provider", kwargs, self.ARGUMENTS)
        super().__init__("ibm", resource_name, {_camel(k): v for k, v in kwargs.items()}, opts)


IsVpc = _resource(
    "IsVpc",
    "ibm:index/isVpc:IsVpc",
    "address_prefix_management classic_access default_network_acl_name default_security_group_name "
    "default_routing_table_name name resource_group tags access_tags no_sg_acl_rules dns",
    "crn default_security_group default_network_acl default_routing_table status",
)
IsPublicGateway = _resource(
    "IsPublicGateway",
    "ibm:index/isPublicGateway:IsPublicGateway",
    "name vpc zone floating_ip resource_group tags access_tags",
    "status crn",
)
IsSubnet = _resource(
    "IsSubnet",
    "ibm:index/isSubnet:IsSubnet",
    "ipv4_cidr_block ip_version name network_acl public_gateway resource_group routing_table routing_table_crn "
    "tags access_tags total_ipv4_address_count vpc zone",
    "available_ipv4_address_count crn status",
)
ContainerVpcCluster = _resource(
    "ContainerVpcCluster",
    "ibm:index/containerVpcCluster:ContainerVpcCluster",
    "cos_instance_crn disable_public_service_endpoint entitlement force_delete_storage flavor "
    "image_security_enforcement name kms_config kube_version operating_system patch_version pod_subnet "
    "retry_patch_version service_subnet taints wait_for_worker_update wait_till worker_count worker_labels "
    "resource_group_id tags update_all_workers vpc_id zones crk kms_instance_id kms_account_id host_pool_id "
    "security_groups disable_outbound_traffic_protection secondary_storage",
    "crn ingress_hostname ingress_secret master_status master_url private_service_endpoint_url "
    "public_service_endpoint_url state albs",
)
Database = _resource(
    "Database",
    "ibm:index/database:Database",
    "adminpassword auto_scaling backup_id backup_encryption_key_crn configuration logical_replication_slots "
    "key_protect_key key_protect_instance location group name plan point_in_time_recovery_deployment_id "
    "point_in_time_recovery_time remote_leader_id resource_group_id service service_endpoints tags version users "
    "allowlists whitelists",
    "adminuser configuration_schema guid groups status connectionstrings",
    secret="adminpassword",
)
ResourceInstance = _resource(
    "ResourceInstance",
    "ibm:index/resourceInstance:ResourceInstance",
    "name service plan location resource_group_id parameters parameters_json tags service_endpoints",
    "crn guid status state",
)
CosBucket = _resource(
    "CosBucket",
    "ibm:index/cosBucket:CosBucket",
    "bucket_name resource_instance_id region_location cross_region_location single_site_location storage_class "
    "endpoint_type force_delete kms_key_crn key_protect allowed_ips activity_tracking metrics_monitoring "
    "object_versioning retention_rule expire_rules archive_rule abort_incomplete_multipart_upload_days "
    "noncurrent_version_expiration hard_quota satellite_location_id object_lock",
    "crn s3_endpoint_public s3_endpoint_private s3_endpoint_direct bucket_region",
)
ResourceKey = _resource(
    "ResourceKey",
    "ibm:index/resourceKey:ResourceKey",
    "name parameters role resource_instance_id resource_alias_id tags",
    "credentials credentials_json crn guid status",
    secret="credentials credentials_json",
)
CrNamespace = _resource(
    "CrNamespace",
    "ibm:index/crNamespace:CrNamespace",
    "name resource_group_id tags",
    "crn account created_on",
)
IamServiceId = _resource(
    "IamServiceId",
    "ibm:index/iamServiceId:IamServiceId",
    "name description tags locked",
    "crn iam_id version",
)
IamServicePolicy = _resource(
    "IamServicePolicy",
    "ibm:index/iamServicePolicy:IamServicePolicy",
    "iam_service_id iam_id roles resources resource_attributes resource_tags account_management description "
    "tags transaction_id rule_conditions rule_operator pattern",
    "version",
)
IamServiceApiKey = _resource(
    "IamServiceApiKey",
    "ibm:index/iamServiceApiKey:IamServiceApiKey",
    "name iam_service_id description apikey locked store_value file entity_lock",
    "crn account_id apikey_id",
    secret="apikey",
)


def _invoke(what: str, token: str, allowed: frozenset[str], kwargs: dict, opts) -> pulumi.Output:
    _check(what, kwargs, allowed)
    args = {_camel(k): v for k, v in kwargs.items()}

    def to_object(value: Any) -> Any:
        if isinstance(value, dict):
            return SimpleNamespace(**{_snake(k): to_object(v) for k, v in value.items()})
        if isinstance(value, list):
            return [to_object(v) for v in value]
        return value

    return pulumi.runtime.invoke_output(token, args, opts).apply(to_object)


def get_resource_group_output(opts=None, **kwargs: Any) -> pulumi.Output:
    """data "ibm_resource_group"."""
    return _invoke("get_resource_group_output", "ibm:index/getResourceGroup:getResourceGroup",
                   frozenset({"name", "is_default"}), kwargs, opts)


def get_container_cluster_config_output(opts=None, **kwargs: Any) -> pulumi.Output:
    """data "ibm_container_cluster_config"."""
    return _invoke(
        "get_container_cluster_config_output",
        "ibm:index/getContainerClusterConfig:getContainerClusterConfig",
        frozenset({"cluster_name_id", "resource_group_id", "admin", "config_dir", "download", "endpoint_type",
                   "network"}),
        kwargs,
        opts,
    )


def get_database_connection_output(opts=None, **kwargs: Any) -> pulumi.Output:
    """data "ibm_database_connection"."""
    return _invoke(
        "get_database_connection_output",
        "ibm:index/getDatabaseConnection:getDatabaseConnection",
        frozenset({"deployment_id", "user_id", "user_type", "endpoint_type", "certificate_root"}),
        kwargs,
        opts,
    )

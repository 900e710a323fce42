//! `oxka acl create|list|delete` (CreateAcls, DescribeAcls, DeleteAcls), with Kafka's names for
//! resource types, pattern types, operations and permissions (as kafka-acls prints them).

use oxka_client::kafka_protocol::messages::create_acls_request::{AclCreation, CreateAclsRequest};
use oxka_client::kafka_protocol::messages::delete_acls_request::{
    DeleteAclsFilter, DeleteAclsRequest,
};
use oxka_client::kafka_protocol::messages::DescribeAclsRequest;
use oxka_client::kafka_protocol::protocol::StrBytes;
use oxka_client::ClientError;
use serde_json::json;

use super::output::emit;
use super::{error_cell, failed, failure, Common, Table};

/// Kafka's ResourceType codes.
const RESOURCE_TYPES: &[(i8, &str)] = &[
    (1, "ANY"),
    (2, "TOPIC"),
    (3, "GROUP"),
    (4, "CLUSTER"),
    (5, "TRANSACTIONAL_ID"),
    (6, "DELEGATION_TOKEN"),
    (7, "USER"),
];
/// Kafka's PatternType codes.
const PATTERN_TYPES: &[(i8, &str)] = &[(1, "ANY"), (2, "MATCH"), (3, "LITERAL"), (4, "PREFIXED")];
/// Kafka's AclOperation codes.
const OPERATIONS: &[(i8, &str)] = &[
    (1, "ANY"),
    (2, "ALL"),
    (3, "READ"),
    (4, "WRITE"),
    (5, "CREATE"),
    (6, "DELETE"),
    (7, "ALTER"),
    (8, "DESCRIBE"),
    (9, "CLUSTER_ACTION"),
    (10, "DESCRIBE_CONFIGS"),
    (11, "ALTER_CONFIGS"),
    (12, "IDEMPOTENT_WRITE"),
    (13, "CREATE_TOKENS"),
    (14, "DESCRIBE_TOKENS"),
];
/// Kafka's AclPermissionType codes.
const PERMISSIONS: &[(i8, &str)] = &[(1, "ANY"), (2, "DENY"), (3, "ALLOW")];

fn name_of(table: &[(i8, &'static str)], code: i8) -> &'static str {
    table
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("UNKNOWN", |(_, n)| n)
}

fn code_of(table: &[(i8, &str)], what: &str, name: &str) -> anyhow::Result<i8> {
    let wanted = name.to_ascii_uppercase().replace('-', "_");
    table
        .iter()
        .find(|(_, n)| *n == wanted)
        .map(|(c, _)| *c)
        .ok_or_else(|| {
            let names: Vec<&str> = table.iter().map(|(_, n)| *n).collect();
            anyhow::anyhow!("unknown {what} {name:?} (one of {})", names.join(", "))
        })
}

#[derive(Debug, clap::Args)]
pub(crate) struct AclArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: AclCommand,
}

/// Which resource(s): at most one of the resource flags.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(multiple = false)]
struct ResourceArgs {
    #[arg(long)]
    topic: Option<String>,
    #[arg(long)]
    group: Option<String>,
    #[arg(long = "transactional-id")]
    transactional_id: Option<String>,
    /// The cluster resource (kafka-cluster).
    #[arg(long)]
    cluster: bool,
}

impl ResourceArgs {
    /// (resource type, name), or None when no resource flag was given.
    fn resource(&self) -> Option<(i8, String)> {
        if let Some(t) = &self.topic {
            Some((2, t.clone()))
        } else if let Some(g) = &self.group {
            Some((3, g.clone()))
        } else if let Some(t) = &self.transactional_id {
            Some((5, t.clone()))
        } else if self.cluster {
            Some((4, "kafka-cluster".to_owned()))
        } else {
            None
        }
    }
}

#[derive(Debug, clap::Subcommand)]
enum AclCommand {
    /// Add ACLs: one per --operation on the resource.
    Create {
        #[command(flatten)]
        resource: ResourceArgs,
        /// The principal, e.g. User:alice.
        #[arg(long, required = true)]
        principal: String,
        #[arg(long, default_value = "*")]
        host: String,
        /// READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, ... (repeatable).
        #[arg(long = "operation", required = true)]
        operations: Vec<String>,
        /// Deny instead of allow.
        #[arg(long)]
        deny: bool,
        /// literal or prefixed.
        #[arg(long = "pattern-type", default_value = "literal")]
        pattern_type: String,
    },
    /// List ACLs matching the filters (all ACLs without filters).
    List {
        #[command(flatten)]
        resource: ResourceArgs,
        #[arg(long)]
        principal: Option<String>,
        /// any, match, literal or prefixed.
        #[arg(long = "pattern-type", default_value = "any")]
        pattern_type: String,
    },
    /// Delete ACLs matching the filters (a resource or a principal is required).
    Delete {
        #[command(flatten)]
        resource: ResourceArgs,
        #[arg(long)]
        principal: Option<String>,
        #[arg(long)]
        host: Option<String>,
        #[arg(long = "operation")]
        operation: Option<String>,
        #[arg(long = "pattern-type", default_value = "any")]
        pattern_type: String,
    },
}

/// One ACL binding, as Kafka's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Binding {
    pub(crate) resource_type: i8,
    pub(crate) resource_name: String,
    pub(crate) pattern_type: i8,
    pub(crate) principal: String,
    pub(crate) host: String,
    pub(crate) operation: i8,
    pub(crate) permission: i8,
}

/// A filter: `None` fields match anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Filter {
    pub(crate) resource_type: i8,
    pub(crate) resource_name: Option<String>,
    pub(crate) pattern_type: i8,
    pub(crate) principal: Option<String>,
    pub(crate) host: Option<String>,
    pub(crate) operation: i8,
    pub(crate) permission: i8,
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

pub(crate) fn build_create(bindings: &[Binding]) -> CreateAclsRequest {
    CreateAclsRequest::default().with_creations(
        bindings
            .iter()
            .map(|b| {
                AclCreation::default()
                    .with_resource_type(b.resource_type)
                    .with_resource_name(sb(&b.resource_name))
                    .with_resource_pattern_type(b.pattern_type)
                    .with_principal(sb(&b.principal))
                    .with_host(sb(&b.host))
                    .with_operation(b.operation)
                    .with_permission_type(b.permission)
            })
            .collect(),
    )
}

pub(crate) fn build_describe(f: &Filter) -> DescribeAclsRequest {
    DescribeAclsRequest::default()
        .with_resource_type_filter(f.resource_type)
        .with_resource_name_filter(f.resource_name.as_deref().map(sb))
        .with_pattern_type_filter(f.pattern_type)
        .with_principal_filter(f.principal.as_deref().map(sb))
        .with_host_filter(f.host.as_deref().map(sb))
        .with_operation(f.operation)
        .with_permission_type(f.permission)
}

pub(crate) fn build_delete(f: &Filter) -> DeleteAclsRequest {
    DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
        .with_resource_type_filter(f.resource_type)
        .with_resource_name_filter(f.resource_name.as_deref().map(sb))
        .with_pattern_type_filter(f.pattern_type)
        .with_principal_filter(f.principal.as_deref().map(sb))
        .with_host_filter(f.host.as_deref().map(sb))
        .with_operation(f.operation)
        .with_permission_type(f.permission)])
}

fn binding_row(table: &mut Table, rows: &mut Vec<serde_json::Value>, b: &Binding) {
    let cells = [
        name_of(RESOURCE_TYPES, b.resource_type),
        &b.resource_name,
        name_of(PATTERN_TYPES, b.pattern_type),
        &b.principal,
        &b.host,
        name_of(OPERATIONS, b.operation),
        name_of(PERMISSIONS, b.permission),
    ];
    table.row(cells.iter().map(|s| s.to_string()).collect());
    rows.push(
        json!({"resource_type": cells[0], "resource_name": cells[1], "pattern_type": cells[2],
        "principal": cells[3], "host": cells[4], "operation": cells[5], "permission": cells[6]}),
    );
}

const HEADER: &[&str] = &[
    "RESOURCE-TYPE",
    "NAME",
    "PATTERN",
    "PRINCIPAL",
    "HOST",
    "OPERATION",
    "PERMISSION",
];

pub(crate) async fn run(args: AclArgs) -> anyhow::Result<()> {
    let common = args.common;
    let mut client = common.connect().await?;
    match args.command {
        AclCommand::Create {
            resource,
            principal,
            host,
            operations,
            deny,
            pattern_type,
        } => {
            let (resource_type, resource_name) = resource.resource().ok_or_else(|| {
                anyhow::anyhow!(
                    "give a resource: --topic, --group, --transactional-id or --cluster"
                )
            })?;
            let pattern_type = code_of(PATTERN_TYPES, "pattern type", &pattern_type)?;
            let bindings = operations
                .iter()
                .map(|op| {
                    Ok(Binding {
                        resource_type,
                        resource_name: resource_name.clone(),
                        pattern_type,
                        principal: principal.clone(),
                        host: host.clone(),
                        operation: code_of(OPERATIONS, "operation", op)?,
                        permission: if deny { 2 } else { 3 },
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let response = client.send(|_| build_create(&bindings)).await?;
            let mut header = HEADER.to_vec();
            header.push("RESULT");
            let mut table = Table::new(&header);
            let mut rows = Vec::new();
            let mut errors = Vec::new();
            for (b, r) in bindings.iter().zip(&response.results) {
                binding_row(&mut table, &mut rows, b);
                let result = if r.error_code == 0 {
                    "created".into()
                } else {
                    error_cell(r.error_code, r.error_message.as_deref())
                };
                if r.error_code != 0 {
                    errors.push(failure(
                        r.error_code,
                        &format!("{} {}", b.principal, name_of(OPERATIONS, b.operation)),
                    ));
                }
                if let (Some(last), Some(j)) = (table_last(&mut table), rows.last_mut()) {
                    last.push(result.clone());
                    j["result"] = json!(result);
                }
            }
            emit(common.format, &table, json!(rows));
            failed(&errors, "ACL creations")
        }
        AclCommand::List {
            resource,
            principal,
            pattern_type,
        } => {
            let (resource_type, resource_name) =
                resource.resource().map_or((1, None), |(t, n)| (t, Some(n)));
            let filter = Filter {
                resource_type,
                resource_name,
                pattern_type: code_of(PATTERN_TYPES, "pattern type", &pattern_type)?,
                principal,
                host: None,
                operation: 1,
                permission: 1,
            };
            let response = client.send(|_| build_describe(&filter)).await?;
            ClientError::check(
                response.error_code,
                response.error_message.map(|m| m.to_string()),
                "DescribeAcls",
            )?;
            let mut table = Table::new(HEADER);
            let mut rows = Vec::new();
            for r in &response.resources {
                for a in &r.acls {
                    binding_row(
                        &mut table,
                        &mut rows,
                        &Binding {
                            resource_type: r.resource_type,
                            resource_name: r.resource_name.to_string(),
                            pattern_type: r.pattern_type,
                            principal: a.principal.to_string(),
                            host: a.host.to_string(),
                            operation: a.operation,
                            permission: a.permission_type,
                        },
                    );
                }
            }
            emit(common.format, &table, json!(rows));
            Ok(())
        }
        AclCommand::Delete {
            resource,
            principal,
            host,
            operation,
            pattern_type,
        } => {
            let res = resource.resource();
            if res.is_none() && principal.is_none() {
                anyhow::bail!("refusing to delete every ACL: give a resource or --principal");
            }
            let (resource_type, resource_name) = res.map_or((1, None), |(t, n)| (t, Some(n)));
            let filter = Filter {
                resource_type,
                resource_name,
                pattern_type: code_of(PATTERN_TYPES, "pattern type", &pattern_type)?,
                principal,
                host,
                operation: operation
                    .as_deref()
                    .map_or(Ok(1), |o| code_of(OPERATIONS, "operation", o))?,
                permission: 1,
            };
            let response = client.send(|_| build_delete(&filter)).await?;
            let mut table = Table::new(HEADER);
            let mut rows = Vec::new();
            for f in &response.filter_results {
                ClientError::check(
                    f.error_code,
                    f.error_message.as_ref().map(|m| m.to_string()),
                    "DeleteAcls",
                )?;
                for a in &f.matching_acls {
                    binding_row(
                        &mut table,
                        &mut rows,
                        &Binding {
                            resource_type: a.resource_type,
                            resource_name: a.resource_name.to_string(),
                            pattern_type: a.pattern_type,
                            principal: a.principal.to_string(),
                            host: a.host.to_string(),
                            operation: a.operation,
                            permission: a.permission_type,
                        },
                    );
                }
            }
            emit(common.format, &table, json!({"deleted": rows}));
            Ok(())
        }
    }
}

fn table_last(table: &mut Table) -> Option<&mut Vec<String>> {
    table.last_row()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use oxka_client::kafka_protocol::protocol::{Decodable, Encodable};

    fn round_trip<T: Encodable + Decodable>(msg: &T, version: i16) -> T {
        let mut buf = BytesMut::new();
        msg.encode(&mut buf, version).unwrap();
        T::decode(&mut buf.freeze(), version).unwrap()
    }

    #[test]
    fn names_map_to_kafkas_codes() {
        assert_eq!(code_of(OPERATIONS, "op", "read").unwrap(), 3);
        assert_eq!(code_of(OPERATIONS, "op", "describe-configs").unwrap(), 10);
        assert_eq!(code_of(PATTERN_TYPES, "p", "PREFIXED").unwrap(), 4);
        assert!(code_of(OPERATIONS, "op", "fly").is_err());
        assert_eq!(name_of(RESOURCE_TYPES, 5), "TRANSACTIONAL_ID");
    }

    #[test]
    fn create_describe_delete_encode_every_field_at_v1_to_v3() {
        let b = Binding {
            resource_type: 2,
            resource_name: "orders".into(),
            pattern_type: 4,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: 4,
            permission: 3,
        };
        for v in 1..=3 {
            let c = round_trip(&build_create(std::slice::from_ref(&b)), v);
            let a = &c.creations[0];
            assert_eq!(
                (
                    a.resource_type,
                    a.resource_name.as_str(),
                    a.resource_pattern_type,
                    a.principal.as_str(),
                    a.host.as_str(),
                    a.operation,
                    a.permission_type
                ),
                (2, "orders", 4, "User:alice", "*", 4, 3)
            );
            let f = Filter {
                resource_type: 1,
                resource_name: None,
                pattern_type: 1,
                principal: Some("User:bob".into()),
                host: None,
                operation: 1,
                permission: 1,
            };
            let d = round_trip(&build_describe(&f), v);
            assert_eq!(d.resource_name_filter, None);
            assert_eq!(
                d.principal_filter.as_ref().map(|p| p.as_str()),
                Some("User:bob")
            );
            assert_eq!(
                (d.resource_type_filter, d.pattern_type_filter, d.operation),
                (1, 1, 1)
            );
            let x = round_trip(&build_delete(&f), v);
            assert_eq!(x.filters.len(), 1);
            assert_eq!(
                x.filters[0].principal_filter.as_ref().map(|p| p.as_str()),
                Some("User:bob")
            );
        }
    }
}

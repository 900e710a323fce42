//! The broker's authorizer shell: reads `authorizer.class.name`, `super.users` and
//! `allow.everyone.if.no.acl.found`, and answers "may this request's principal do this?" from
//! the ACLs in the current metadata image (the decision itself is `oxka_metadata::acl`).
//!
//! Every handler asks through [`Broker::authorize`] (or its cluster and bitfield variants) at
//! the top of the path it guards, so checks read the same everywhere. With no authorizer
//! configured every check passes, as in Kafka.

use oxka_metadata::acl::{
    self, AclOperation, AuthorizationResult, AuthorizerRules, ResourceType, CLUSTER_NAME,
};

use crate::config::ConfigError;
use crate::handlers::RequestContext;
use crate::Broker;

/// The class name Kafka's KRaft brokers use; Oxka's authorizer implements its semantics.
pub(crate) const STANDARD_AUTHORIZER: &str =
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// The authorizer configured by `authorizer.class.name` (`None`: no authorizer), with its
/// rules. An unknown class name is refused: Oxka cannot load Java classes, and silently
/// running without the authorizer the operator asked for would open the cluster.
pub(crate) fn rules_from_config<'a>(
    get: &impl Fn(&str) -> &'a str,
) -> Result<Option<AuthorizerRules>, ConfigError> {
    let class = get("authorizer.class.name").trim();
    match class {
        "" => return Ok(None),
        STANDARD_AUTHORIZER => {}
        other => {
            return Err(ConfigError {
                key: "authorizer.class.name".into(),
                value: other.into(),
                reason: format!(
                    "Oxka's only authorizer is {STANDARD_AUTHORIZER} (ACLs in the metadata log); leave the key empty for no authorizer"
                ),
            })
        }
    }
    let super_users =
        AuthorizerRules::parse_super_users(get("super.users")).map_err(|reason| ConfigError {
            key: "super.users".into(),
            value: get("super.users").into(),
            reason,
        })?;
    let allow = get("allow.everyone.if.no.acl.found").trim();
    let allow_everyone_if_no_acl_found = match allow.to_ascii_lowercase().as_str() {
        "true" => true,
        "false" | "" => false,
        _ => {
            return Err(ConfigError {
                key: "allow.everyone.if.no.acl.found".into(),
                value: allow.into(),
                reason: "expected true or false".into(),
            })
        }
    };
    Ok(Some(AuthorizerRules {
        super_users,
        allow_everyone_if_no_acl_found,
    }))
}

/// The client's IP address as ACL hosts name it (`127.0.0.1`, without Kafka's leading `/`).
fn host(ctx: &RequestContext) -> &str {
    ctx.client_host.trim_start_matches('/')
}

impl Broker {
    /// Whether an authorizer is configured.
    pub fn authorizer_enabled(&self) -> bool {
        self.config.authorizer.is_some()
    }

    /// Whether the request's principal may perform `op` on the resource `(resource_type,
    /// name)`. Always true without an authorizer.
    pub(crate) fn authorize(
        &self,
        ctx: &RequestContext,
        op: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        let Some(rules) = &self.config.authorizer else {
            return true;
        };
        let image = self.image();
        let principal = ctx.principal.to_string();
        let result = acl::authorize(
            &image.acls,
            rules,
            &principal,
            host(ctx),
            op,
            resource_type,
            name,
        );
        if result == AuthorizationResult::Denied {
            tracing::debug!(principal = %principal, host = host(ctx), ?op, ?resource_type, resource = name, "authorization denied");
        }
        result == AuthorizationResult::Allowed
    }

    /// [`Broker::authorize`] on the CLUSTER resource (`kafka-cluster`).
    pub(crate) fn authorize_cluster(&self, ctx: &RequestContext, op: AclOperation) -> bool {
        self.authorize(ctx, op, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// Whether the principal may perform `op` on some resource of `resource_type` (Kafka's
    /// `authorizeByResourceType`).
    pub(crate) fn authorize_any(
        &self,
        ctx: &RequestContext,
        op: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        let Some(rules) = &self.config.authorizer else {
            return true;
        };
        let image = self.image();
        acl::authorize_by_resource_type(
            &image.acls,
            rules,
            &ctx.principal.to_string(),
            host(ctx),
            op,
            resource_type,
        ) == AuthorizationResult::Allowed
    }

    /// The `*_authorized_operations` bitfield for a resource: every supported operation
    /// without an authorizer, else those the principal is allowed.
    pub(crate) fn authorized_operations(
        &self,
        ctx: &RequestContext,
        resource_type: ResourceType,
        name: &str,
    ) -> i32 {
        acl::authorized_operations(
            |op| self.authorize(ctx, op, resource_type, name),
            resource_type,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::BrokerConfig;

    fn config(pairs: &[(&str, &str)]) -> Result<BrokerConfig, ConfigError> {
        let set: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        BrokerConfig::from_properties(&set)
    }

    #[test]
    fn no_authorizer_by_default() {
        assert_eq!(config(&[]).unwrap().authorizer, None);
    }

    #[test]
    fn standard_authorizer_reads_super_users_and_allow_everyone() {
        let c = config(&[
            ("authorizer.class.name", STANDARD_AUTHORIZER),
            ("super.users", "User:admin;User:ops"),
            ("allow.everyone.if.no.acl.found", "true"),
        ])
        .unwrap();
        let rules = c.authorizer.unwrap();
        assert_eq!(rules.super_users, vec!["User:admin", "User:ops"]);
        assert!(rules.allow_everyone_if_no_acl_found);
        let c = config(&[("authorizer.class.name", STANDARD_AUTHORIZER)]).unwrap();
        assert_eq!(c.authorizer, Some(AuthorizerRules::default()));
    }

    #[test]
    fn unknown_authorizer_class_and_bad_values_are_refused() {
        let e = config(&[(
            "authorizer.class.name",
            "kafka.security.authorizer.AclAuthorizer",
        )])
        .unwrap_err();
        assert_eq!(e.key, "authorizer.class.name");
        let e = config(&[
            ("authorizer.class.name", STANDARD_AUTHORIZER),
            ("super.users", "admin"),
        ])
        .unwrap_err();
        assert_eq!(e.key, "super.users");
        let e = config(&[
            ("authorizer.class.name", STANDARD_AUTHORIZER),
            ("allow.everyone.if.no.acl.found", "yes"),
        ])
        .unwrap_err();
        assert_eq!(e.key, "allow.everyone.if.no.acl.found");
    }
}

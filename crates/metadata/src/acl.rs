//! Access control lists in Kafka's model (KIP-11, KIP-290) and the decision rules of Kafka's
//! `StandardAuthorizer`, as a pure core: no I/O, no clock, no request types.
//!
//! An ACL binds a *resource pattern* (resource type, name, LITERAL or PREFIXED) to an *access
//! control entry* (principal `type:name` or `User:*`, host or `*`, operation, ALLOW or DENY).
//! The numeric codes are Kafka's wire codes (`ResourceType`, `AclOperation`,
//! `AclPermissionType`, `PatternType`).
//!
//! [`authorize`] decides one action as StandardAuthorizer does:
//! 1. a super user is allowed everything;
//! 2. the ACLs whose pattern matches the resource are those with a LITERAL pattern of the same
//!    name or of `*`, and those with a PREFIXED pattern the name starts with;
//! 3. among them, those whose principal (exact or `User:*`) and host (exact or `*`) match, and
//!    whose operation covers the requested one: DENY wins over ALLOW; an ALLOW of READ, WRITE,
//!    DELETE or ALTER implies DESCRIBE, an ALLOW of ALTER_CONFIGS implies DESCRIBE_CONFIGS, ALL
//!    covers every operation (a DENY implies nothing beyond its own operation or ALL);
//! 4. when no ACL at all matches the resource (for any principal), the answer is
//!    `allow.everyone.if.no.acl.found`; when ACLs exist but none allows, it is denied.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The principal every ACL with this value matches.
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// The host or LITERAL resource name every ACL with this value matches.
pub const WILDCARD: &str = "*";
/// The only name of the CLUSTER resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $code:expr),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name { $($variant = $code),* }

        impl $name {
            /// Every value, in code order.
            pub const ALL_VALUES: &'static [$name] = &[$($name::$variant),*];

            /// The wire code.
            pub fn code(self) -> i8 {
                self as i8
            }

            /// The value of a wire code; codes Kafka does not know are `Unknown`.
            pub fn from_code(code: i8) -> $name {
                Self::ALL_VALUES
                    .iter()
                    .copied()
                    .find(|v| v.code() == code)
                    .unwrap_or($name::Unknown)
            }
        }
    };
}

wire_enum!(
    /// Kafka's `ResourceType`.
    ResourceType {
        Unknown = 0,
        Any = 1,
        Topic = 2,
        Group = 3,
        Cluster = 4,
        TransactionalId = 5,
        DelegationToken = 6,
        User = 7,
    }
);

wire_enum!(
    /// Kafka's `AclOperation`.
    AclOperation {
        Unknown = 0,
        Any = 1,
        All = 2,
        Read = 3,
        Write = 4,
        Create = 5,
        Delete = 6,
        Alter = 7,
        Describe = 8,
        ClusterAction = 9,
        DescribeConfigs = 10,
        AlterConfigs = 11,
        IdempotentWrite = 12,
        CreateTokens = 13,
        DescribeTokens = 14,
        TwoPhaseCommit = 15,
    }
);

wire_enum!(
    /// Kafka's `AclPermissionType`.
    AclPermissionType {
        Unknown = 0,
        Any = 1,
        Deny = 2,
        Allow = 3,
    }
);

wire_enum!(
    /// Kafka's `PatternType`. An ACL's pattern is LITERAL or PREFIXED; ANY and MATCH exist
    /// only in filters.
    PatternType {
        Unknown = 0,
        Any = 1,
        Match = 2,
        Literal = 3,
        Prefixed = 4,
    }
);

impl ResourceType {
    /// The operations that mean something on this resource type (Kafka's
    /// `AclEntry.supportedOperations`), which `*_authorized_operations` bitfields report.
    pub fn supported_operations(self) -> &'static [AclOperation] {
        use AclOperation::*;
        match self {
            ResourceType::Topic => &[
                Read,
                Write,
                Create,
                Describe,
                Delete,
                Alter,
                DescribeConfigs,
                AlterConfigs,
            ],
            ResourceType::Group => &[Read, Describe, Delete],
            ResourceType::Cluster => &[
                Create,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
                Alter,
                Describe,
            ],
            ResourceType::TransactionalId => &[Describe, Write, TwoPhaseCommit],
            ResourceType::DelegationToken => &[Describe],
            ResourceType::User => &[CreateTokens, DescribeTokens],
            ResourceType::Unknown | ResourceType::Any => &[],
        }
    }
}

/// One ACL: a resource pattern and an access control entry (Kafka's `AclBinding`). As stored
/// in the metadata log, its pattern type is LITERAL or PREFIXED and no field is UNKNOWN/ANY.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    /// `type:name`, e.g. `User:alice`, or `User:*`.
    pub principal: String,
    /// An IP address as the client connects from (`127.0.0.1`), or `*`.
    pub host: String,
    pub operation: AclOperation,
    pub permission_type: AclPermissionType,
}

/// A filter over ACLs (Kafka's `AclBindingFilter`): `None` strings match anything, ANY codes
/// match any value, pattern type MATCH matches the patterns that would apply to the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclBindingFilter {
    pub resource_type: ResourceType,
    pub resource_name: Option<String>,
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: AclOperation,
    pub permission_type: AclPermissionType,
}

/// Why an ACL or filter is refused (all INVALID_REQUEST in Kafka); the text is Kafka's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidAcl(pub String);

impl AclBinding {
    /// Kafka's checks on a new ACL (the broker's AclApis and the controller's
    /// AclControlManager.validateNewAcl).
    pub fn validate(&self) -> Result<(), InvalidAcl> {
        let bad = |m: String| Err(InvalidAcl(m));
        match self.resource_type {
            ResourceType::Unknown | ResourceType::Any => {
                return bad(format!("Invalid resourceType {:?}", self.resource_type))
            }
            _ => {}
        }
        if !matches!(
            self.pattern_type,
            PatternType::Literal | PatternType::Prefixed
        ) {
            return bad(format!("Invalid patternType {:?}", self.pattern_type));
        }
        if matches!(self.operation, AclOperation::Unknown | AclOperation::Any) {
            return bad(format!("Invalid operation {:?}", self.operation));
        }
        if !matches!(
            self.permission_type,
            AclPermissionType::Allow | AclPermissionType::Deny
        ) {
            return bad(format!("Invalid permissionType {:?}", self.permission_type));
        }
        if self.resource_name.is_empty() {
            return bad("Resource name should not be empty".into());
        }
        if self.resource_type == ResourceType::Cluster && self.resource_name != CLUSTER_NAME {
            return bad(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            ));
        }
        if !self.principal.contains(':') {
            return bad(format!(
                "Could not parse principal from `{}` (no colon is present separating the principal type from the principal name)",
                self.principal
            ));
        }
        if self.host.is_empty() {
            return bad("Invalid empty host".into());
        }
        Ok(())
    }
}

impl AclBindingFilter {
    /// A filter that matches every ACL.
    pub fn any() -> AclBindingFilter {
        AclBindingFilter {
            resource_type: ResourceType::Any,
            resource_name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission_type: AclPermissionType::Any,
        }
    }

    /// Kafka refuses a filter with an UNKNOWN field ("Unknown patternFilter." /
    /// "Unknown entryFilter.").
    pub fn validate(&self) -> Result<(), InvalidAcl> {
        if self.resource_type == ResourceType::Unknown || self.pattern_type == PatternType::Unknown
        {
            return Err(InvalidAcl("Unknown patternFilter.".into()));
        }
        if self.operation == AclOperation::Unknown
            || self.permission_type == AclPermissionType::Unknown
        {
            return Err(InvalidAcl("Unknown entryFilter.".into()));
        }
        Ok(())
    }

    /// Whether `acl` passes this filter (Kafka's `AclBindingFilter.matches`).
    pub fn matches(&self, acl: &AclBinding) -> bool {
        self.matches_pattern(acl) && self.matches_entry(acl)
    }

    fn matches_pattern(&self, acl: &AclBinding) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != acl.resource_type {
            return false;
        }
        if !matches!(self.pattern_type, PatternType::Any | PatternType::Match)
            && self.pattern_type != acl.pattern_type
        {
            return false;
        }
        let Some(name) = &self.resource_name else {
            return true;
        };
        if self.pattern_type == PatternType::Any || self.pattern_type == acl.pattern_type {
            return *name == acl.resource_name;
        }
        // MATCH: the patterns that would apply to a resource of this name.
        match acl.pattern_type {
            PatternType::Literal => *name == acl.resource_name || acl.resource_name == WILDCARD,
            PatternType::Prefixed => name.starts_with(&acl.resource_name),
            _ => false,
        }
    }

    fn matches_entry(&self, acl: &AclBinding) -> bool {
        self.principal.as_ref().is_none_or(|p| *p == acl.principal)
            && self.host.as_ref().is_none_or(|h| *h == acl.host)
            && (self.operation == AclOperation::Any || self.operation == acl.operation)
            && (self.permission_type == AclPermissionType::Any
                || self.permission_type == acl.permission_type)
    }
}

/// Every ACL in the cluster, by the id its record carries. Ids are unique; an ACL equal to an
/// existing one is never stored twice (the controller skips it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclImage {
    pub by_id: BTreeMap<Uuid, AclBinding>,
}

impl AclImage {
    /// The id of an ACL equal to `acl`, if one is stored.
    pub fn find(&self, acl: &AclBinding) -> Option<Uuid> {
        self.by_id
            .iter()
            .find(|(_, a)| *a == acl)
            .map(|(id, _)| *id)
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }
}

/// What the authorizer decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizationResult {
    Allowed,
    Denied,
}

/// The settings of the authorizer that are not ACLs: `super.users` and
/// `allow.everyone.if.no.acl.found`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerRules {
    /// Principals (`User:admin`) allowed everything, whatever the ACLs say.
    pub super_users: Vec<String>,
    pub allow_everyone_if_no_acl_found: bool,
}

impl AuthorizerRules {
    /// Parses `super.users`: principals separated by `;` (Kafka's syntax), blanks ignored.
    pub fn parse_super_users(value: &str) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        for p in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            if !p.contains(':') {
                return Err(format!(
                    "Could not parse principal from `{p}` (no colon is present separating the principal type from the principal name)"
                ));
            }
            out.push(p.to_owned());
        }
        Ok(out)
    }
}

/// Whether an ALLOW/DENY ACL of `acl_op` covers a request for `op` (StandardAuthorizer's
/// `findResult`): ALL covers everything; only an ALLOW implies DESCRIBE (from READ, WRITE,
/// DELETE, ALTER) and DESCRIBE_CONFIGS (from ALTER_CONFIGS).
pub fn operation_covers(
    acl_op: AclOperation,
    permission: AclPermissionType,
    op: AclOperation,
) -> bool {
    use AclOperation::*;
    if acl_op == All || acl_op == op {
        return true;
    }
    if permission != AclPermissionType::Allow {
        return false;
    }
    match op {
        Describe => matches!(acl_op, Read | Write | Delete | Alter),
        DescribeConfigs => acl_op == AlterConfigs,
        _ => false,
    }
}

/// Whether an ACL's resource pattern applies to the resource `(resource_type, name)`.
pub fn pattern_matches(acl: &AclBinding, resource_type: ResourceType, name: &str) -> bool {
    acl.resource_type == resource_type
        && match acl.pattern_type {
            PatternType::Literal => acl.resource_name == name || acl.resource_name == WILDCARD,
            PatternType::Prefixed => name.starts_with(&acl.resource_name),
            _ => false,
        }
}

fn entry_matches(acl: &AclBinding, principal: &str, host: &str) -> bool {
    (acl.principal == principal || acl.principal == WILDCARD_PRINCIPAL)
        && (acl.host == host || acl.host == WILDCARD)
}

/// Decides whether `principal` (`User:alice`) connecting from `host` (`127.0.0.1`) may perform
/// `op` on the resource `(resource_type, name)`. See the module documentation for the rules.
pub fn authorize(
    acls: &AclImage,
    rules: &AuthorizerRules,
    principal: &str,
    host: &str,
    op: AclOperation,
    resource_type: ResourceType,
    name: &str,
) -> AuthorizationResult {
    if rules.super_users.iter().any(|s| s == principal) {
        return AuthorizationResult::Allowed;
    }
    let mut resource_has_acls = false;
    let mut allowed = false;
    for acl in acls.by_id.values() {
        if !pattern_matches(acl, resource_type, name) {
            continue;
        }
        resource_has_acls = true;
        if !entry_matches(acl, principal, host)
            || !operation_covers(acl.operation, acl.permission_type, op)
        {
            continue;
        }
        match acl.permission_type {
            AclPermissionType::Deny => return AuthorizationResult::Denied,
            AclPermissionType::Allow => allowed = true,
            _ => {}
        }
    }
    if allowed || (!resource_has_acls && rules.allow_everyone_if_no_acl_found) {
        AuthorizationResult::Allowed
    } else {
        AuthorizationResult::Denied
    }
}

/// Whether `principal` may perform `op` on *some* resource of `resource_type` (Kafka's
/// `Authorizer.authorizeByResourceType`, used by InitProducerId without a transactional id:
/// WRITE on any topic stands in for IDEMPOTENT_WRITE on the cluster). Allowed when an ALLOW
/// for the operation (or ALL) exists on some pattern that no DENY dominates: a literal `*`
/// DENY denies all; a literal DENY cancels the same literal ALLOW; a PREFIXED DENY cancels
/// every ALLOW whose name starts with it.
pub fn authorize_by_resource_type(
    acls: &AclImage,
    rules: &AuthorizerRules,
    principal: &str,
    host: &str,
    op: AclOperation,
    resource_type: ResourceType,
) -> AuthorizationResult {
    // Kafka checks a made-up name first, so super users (and allow.everyone with no ACLs for
    // that name) pass regardless of DENY ACLs.
    if authorize(acls, rules, principal, host, op, resource_type, "hardcode")
        == AuthorizationResult::Allowed
    {
        return AuthorizationResult::Allowed;
    }
    let mut deny_literal = Vec::new();
    let mut deny_prefixed = Vec::new();
    let mut allow = Vec::new();
    for acl in acls.by_id.values() {
        if acl.resource_type != resource_type
            || !entry_matches(acl, principal, host)
            || (acl.operation != op && acl.operation != AclOperation::All)
        {
            continue;
        }
        match (acl.permission_type, acl.pattern_type) {
            (AclPermissionType::Deny, PatternType::Literal) if acl.resource_name == WILDCARD => {
                return AuthorizationResult::Denied
            }
            (AclPermissionType::Deny, PatternType::Literal) => {
                deny_literal.push(&acl.resource_name)
            }
            (AclPermissionType::Deny, PatternType::Prefixed) => {
                deny_prefixed.push(&acl.resource_name)
            }
            (AclPermissionType::Allow, PatternType::Literal) if acl.resource_name == WILDCARD => {
                return AuthorizationResult::Allowed
            }
            (AclPermissionType::Allow, p) => allow.push((p, &acl.resource_name)),
            _ => {}
        }
    }
    let dominated = |(pattern, name): &(PatternType, &String)| {
        (*pattern == PatternType::Literal && deny_literal.contains(name))
            || deny_prefixed.iter().any(|d| name.starts_with(d.as_str()))
    };
    if allow.iter().any(|a| !dominated(a)) {
        AuthorizationResult::Allowed
    } else {
        AuthorizationResult::Denied
    }
}

/// The bitfield of `resource_type`'s supported operations that are allowed (Kafka's
/// `Utils.to32BitField` of the operation codes), for `*_authorized_operations` fields.
pub fn authorized_operations(
    mut allowed: impl FnMut(AclOperation) -> bool,
    resource_type: ResourceType,
) -> i32 {
    resource_type
        .supported_operations()
        .iter()
        .filter(|op| allowed(**op))
        .fold(0i32, |bits, op| bits | (1 << op.code()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use AclOperation::*;
    use AuthorizationResult::*;

    fn acl(
        rt: ResourceType,
        name: &str,
        pt: PatternType,
        principal: &str,
        host: &str,
        op: AclOperation,
        perm: AclPermissionType,
    ) -> AclBinding {
        AclBinding {
            resource_type: rt,
            resource_name: name.into(),
            pattern_type: pt,
            principal: principal.into(),
            host: host.into(),
            operation: op,
            permission_type: perm,
        }
    }

    fn allow_topic(name: &str, pt: PatternType, principal: &str, op: AclOperation) -> AclBinding {
        acl(
            ResourceType::Topic,
            name,
            pt,
            principal,
            "*",
            op,
            AclPermissionType::Allow,
        )
    }

    fn deny_topic(name: &str, pt: PatternType, principal: &str, op: AclOperation) -> AclBinding {
        acl(
            ResourceType::Topic,
            name,
            pt,
            principal,
            "*",
            op,
            AclPermissionType::Deny,
        )
    }

    fn image(acls: &[AclBinding]) -> AclImage {
        AclImage {
            by_id: acls
                .iter()
                .enumerate()
                .map(|(i, a)| (Uuid::from_u128(i as u128 + 1), a.clone()))
                .collect(),
        }
    }

    fn check(
        acls: &AclImage,
        rules: &AuthorizerRules,
        who: &str,
        host: &str,
        op: AclOperation,
        topic: &str,
    ) -> AuthorizationResult {
        authorize(acls, rules, who, host, op, ResourceType::Topic, topic)
    }

    const ALICE: &str = "User:alice";
    const BOB: &str = "User:bob";
    const H: &str = "10.0.0.1";

    #[test]
    fn no_acl_denies_by_default() {
        let r = AuthorizerRules::default();
        assert_eq!(check(&AclImage::default(), &r, ALICE, H, Read, "t"), Denied);
    }

    #[test]
    fn allow_everyone_if_no_acl_found_allows_only_resources_without_acls() {
        let r = AuthorizerRules {
            allow_everyone_if_no_acl_found: true,
            ..Default::default()
        };
        let acls = image(&[allow_topic("guarded", PatternType::Literal, BOB, Read)]);
        assert_eq!(check(&acls, &r, ALICE, H, Read, "open"), Allowed);
        // An ACL for someone else on the resource means the resource is governed: denied.
        assert_eq!(check(&acls, &r, ALICE, H, Read, "guarded"), Denied);
        assert_eq!(check(&acls, &r, BOB, H, Read, "guarded"), Allowed);
    }

    #[test]
    fn literal_acl_matches_only_its_name() {
        let r = AuthorizerRules::default();
        let acls = image(&[allow_topic("orders", PatternType::Literal, ALICE, Read)]);
        assert_eq!(check(&acls, &r, ALICE, H, Read, "orders"), Allowed);
        assert_eq!(check(&acls, &r, ALICE, H, Read, "orders2"), Denied);
        assert_eq!(check(&acls, &r, ALICE, H, Read, "order"), Denied);
    }

    #[test]
    fn wildcard_resource_name_matches_every_resource_of_its_type() {
        let r = AuthorizerRules::default();
        let acls = image(&[allow_topic("*", PatternType::Literal, ALICE, Read)]);
        assert_eq!(check(&acls, &r, ALICE, H, Read, "anything"), Allowed);
        assert_eq!(
            authorize(&acls, &r, ALICE, H, Read, ResourceType::Group, "anything"),
            Denied
        );
    }

    #[test]
    fn prefixed_acl_matches_names_starting_with_it() {
        let r = AuthorizerRules::default();
        let acls = image(&[allow_topic("app-", PatternType::Prefixed, ALICE, Write)]);
        assert_eq!(check(&acls, &r, ALICE, H, Write, "app-orders"), Allowed);
        assert_eq!(check(&acls, &r, ALICE, H, Write, "app-"), Allowed);
        assert_eq!(check(&acls, &r, ALICE, H, Write, "ap"), Denied);
        assert_eq!(check(&acls, &r, ALICE, H, Write, "other"), Denied);
        // "*" is not special in a PREFIXED pattern.
        let star = image(&[allow_topic("*", PatternType::Prefixed, ALICE, Write)]);
        assert_eq!(check(&star, &r, ALICE, H, Write, "x"), Denied);
    }

    #[test]
    fn deny_wins_over_allow() {
        let r = AuthorizerRules::default();
        let acls = image(&[
            allow_topic("*", PatternType::Literal, ALICE, All),
            deny_topic("secret", PatternType::Literal, ALICE, Read),
        ]);
        assert_eq!(check(&acls, &r, ALICE, H, Read, "secret"), Denied);
        assert_eq!(check(&acls, &r, ALICE, H, Write, "secret"), Allowed);
        assert_eq!(check(&acls, &r, ALICE, H, Read, "public"), Allowed);
    }

    #[test]
    fn prefixed_deny_wins_over_literal_allow() {
        let r = AuthorizerRules::default();
        let acls = image(&[
            allow_topic("app-orders", PatternType::Literal, ALICE, Read),
            deny_topic("app-", PatternType::Prefixed, "User:*", Read),
        ]);
        assert_eq!(check(&acls, &r, ALICE, H, Read, "app-orders"), Denied);
    }

    #[test]
    fn deny_all_denies_every_operation() {
        let r = AuthorizerRules::default();
        let acls = image(&[
            allow_topic("t", PatternType::Literal, ALICE, Read),
            deny_topic("t", PatternType::Literal, ALICE, All),
        ]);
        for op in [Read, Write, Describe, DescribeConfigs, Alter] {
            assert_eq!(check(&acls, &r, ALICE, H, op, "t"), Denied, "{op:?}");
        }
    }

    #[test]
    fn allow_all_implies_every_operation() {
        let r = AuthorizerRules::default();
        let acls = image(&[allow_topic("t", PatternType::Literal, ALICE, All)]);
        for op in ResourceType::Topic.supported_operations() {
            assert_eq!(check(&acls, &r, ALICE, H, *op, "t"), Allowed, "{op:?}");
        }
    }

    #[test]
    fn read_write_delete_alter_imply_describe() {
        let r = AuthorizerRules::default();
        for op in [Read, Write, Delete, Alter] {
            let acls = image(&[allow_topic("t", PatternType::Literal, ALICE, op)]);
            assert_eq!(check(&acls, &r, ALICE, H, Describe, "t"), Allowed, "{op:?}");
        }
        for op in [Create, AlterConfigs, DescribeConfigs, ClusterAction] {
            let acls = image(&[allow_topic("t", PatternType::Literal, ALICE, op)]);
            assert_eq!(check(&acls, &r, ALICE, H, Describe, "t"), Denied, "{op:?}");
        }
    }

    #[test]
    fn alter_configs_implies_describe_configs() {
        let r = AuthorizerRules::default();
        let acls = image(&[allow_topic("t", PatternType::Literal, ALICE, AlterConfigs)]);
        assert_eq!(check(&acls, &r, ALICE, H, DescribeConfigs, "t"), Allowed);
        let acls = image(&[allow_topic("t", PatternType::Literal, ALICE, Alter)]);
        assert_eq!(check(&acls, &r, ALICE, H, DescribeConfigs, "t"), Denied);
    }

    #[test]
    fn implications_do_not_run_backwards() {
        let r = AuthorizerRules::default();
        let acls = image(&[allow_topic("t", PatternType::Literal, ALICE, Describe)]);
        assert_eq!(check(&acls, &r, ALICE, H, Read, "t"), Denied);
        let acls = image(&[allow_topic("t", PatternType::Literal, ALICE, Read)]);
        assert_eq!(check(&acls, &r, ALICE, H, Write, "t"), Denied);
    }

    #[test]
    fn deny_read_does_not_deny_describe() {
        let r = AuthorizerRules::default();
        let acls = image(&[
            allow_topic("t", PatternType::Literal, ALICE, Describe),
            deny_topic("t", PatternType::Literal, ALICE, Read),
        ]);
        assert_eq!(check(&acls, &r, ALICE, H, Describe, "t"), Allowed);
        assert_eq!(check(&acls, &r, ALICE, H, Read, "t"), Denied);
    }

    #[test]
    fn wildcard_principal_matches_everyone() {
        let r = AuthorizerRules::default();
        let acls = image(&[allow_topic("t", PatternType::Literal, "User:*", Read)]);
        assert_eq!(check(&acls, &r, ALICE, H, Read, "t"), Allowed);
        assert_eq!(check(&acls, &r, "User:ANONYMOUS", H, Read, "t"), Allowed);
    }

    #[test]
    fn principal_must_match_exactly() {
        let r = AuthorizerRules::default();
        let acls = image(&[allow_topic("t", PatternType::Literal, ALICE, Read)]);
        assert_eq!(check(&acls, &r, BOB, H, Read, "t"), Denied);
        assert_eq!(check(&acls, &r, "User:Alice", H, Read, "t"), Denied);
    }

    #[test]
    fn host_must_match_or_be_wildcard() {
        let r = AuthorizerRules::default();
        let acls = image(&[acl(
            ResourceType::Topic,
            "t",
            PatternType::Literal,
            ALICE,
            "10.0.0.1",
            Read,
            AclPermissionType::Allow,
        )]);
        assert_eq!(check(&acls, &r, ALICE, "10.0.0.1", Read, "t"), Allowed);
        assert_eq!(check(&acls, &r, ALICE, "10.0.0.2", Read, "t"), Denied);
        let deny_from_one_host = image(&[
            allow_topic("t", PatternType::Literal, ALICE, Read),
            acl(
                ResourceType::Topic,
                "t",
                PatternType::Literal,
                ALICE,
                "10.0.0.9",
                Read,
                AclPermissionType::Deny,
            ),
        ]);
        assert_eq!(
            check(&deny_from_one_host, &r, ALICE, "10.0.0.9", Read, "t"),
            Denied
        );
        assert_eq!(
            check(&deny_from_one_host, &r, ALICE, "10.0.0.1", Read, "t"),
            Allowed
        );
    }

    #[test]
    fn super_users_are_allowed_despite_deny() {
        let r = AuthorizerRules {
            super_users: AuthorizerRules::parse_super_users("User:admin; User:ops").unwrap(),
            allow_everyone_if_no_acl_found: false,
        };
        let acls = image(&[deny_topic("t", PatternType::Literal, "User:*", All)]);
        assert_eq!(check(&acls, &r, "User:admin", H, Write, "t"), Allowed);
        assert_eq!(check(&acls, &r, "User:ops", H, Read, "t"), Allowed);
        assert_eq!(check(&acls, &r, ALICE, H, Read, "t"), Denied);
        assert!(AuthorizerRules::parse_super_users("admin").is_err());
        assert_eq!(
            AuthorizerRules::parse_super_users("").unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn resource_types_are_separate() {
        let r = AuthorizerRules::default();
        let acls = image(&[acl(
            ResourceType::Group,
            "g",
            PatternType::Literal,
            ALICE,
            "*",
            Read,
            AclPermissionType::Allow,
        )]);
        assert_eq!(
            authorize(&acls, &r, ALICE, H, Read, ResourceType::Group, "g"),
            Allowed
        );
        assert_eq!(check(&acls, &r, ALICE, H, Read, "g"), Denied);
    }

    #[test]
    fn by_resource_type_allows_write_on_any_topic_unless_dominated() {
        let r = AuthorizerRules::default();
        let t = ResourceType::Topic;
        let none = image(&[]);
        assert_eq!(
            authorize_by_resource_type(&none, &r, ALICE, H, Write, t),
            Denied
        );
        let one = image(&[allow_topic("orders", PatternType::Literal, ALICE, Write)]);
        assert_eq!(
            authorize_by_resource_type(&one, &r, ALICE, H, Write, t),
            Allowed
        );
        assert_eq!(
            authorize_by_resource_type(&one, &r, BOB, H, Write, t),
            Denied
        );
        assert_eq!(
            authorize_by_resource_type(&one, &r, ALICE, H, Read, t),
            Denied
        );
        let literal_deny = image(&[
            allow_topic("orders", PatternType::Literal, ALICE, Write),
            deny_topic("orders", PatternType::Literal, ALICE, Write),
        ]);
        assert_eq!(
            authorize_by_resource_type(&literal_deny, &r, ALICE, H, Write, t),
            Denied
        );
        let prefix_deny = image(&[
            allow_topic("app-orders", PatternType::Literal, ALICE, Write),
            deny_topic("app", PatternType::Prefixed, ALICE, Write),
        ]);
        assert_eq!(
            authorize_by_resource_type(&prefix_deny, &r, ALICE, H, Write, t),
            Denied
        );
        let wildcard_deny = image(&[
            allow_topic("x", PatternType::Literal, ALICE, All),
            deny_topic("*", PatternType::Literal, ALICE, Write),
        ]);
        assert_eq!(
            authorize_by_resource_type(&wildcard_deny, &r, ALICE, H, Write, t),
            Denied
        );
        let su = AuthorizerRules {
            super_users: vec![ALICE.into()],
            ..Default::default()
        };
        assert_eq!(
            authorize_by_resource_type(&wildcard_deny, &su, ALICE, H, Write, t),
            Allowed
        );
    }

    #[test]
    fn authorized_operations_bitfield_uses_operation_codes() {
        let bits = authorized_operations(|op| op == Read || op == Describe, ResourceType::Topic);
        assert_eq!(bits, (1 << 3) | (1 << 8));
        let all = authorized_operations(|_| true, ResourceType::Group);
        assert_eq!(all, (1 << 3) | (1 << 8) | (1 << 6));
    }

    #[test]
    fn filter_matches_as_kafka() {
        let a = allow_topic("app-orders", PatternType::Literal, ALICE, Read);
        let p = allow_topic("app-", PatternType::Prefixed, ALICE, Read);
        let w = allow_topic("*", PatternType::Literal, ALICE, Read);
        let mut f = AclBindingFilter::any();
        assert!(f.matches(&a) && f.matches(&p) && f.matches(&w));
        f.resource_name = Some("app-orders".into());
        // ANY with a name: exact name, any pattern type.
        assert!(f.matches(&a) && !f.matches(&p) && !f.matches(&w));
        f.pattern_type = PatternType::Match;
        assert!(f.matches(&a) && f.matches(&p) && f.matches(&w));
        f.pattern_type = PatternType::Prefixed;
        assert!(!f.matches(&a) && !f.matches(&p));
        let mut f = AclBindingFilter::any();
        f.principal = Some(BOB.into());
        assert!(!f.matches(&a));
        let mut f = AclBindingFilter::any();
        f.operation = Write;
        assert!(!f.matches(&a));
        f.operation = Read;
        f.permission_type = AclPermissionType::Deny;
        assert!(!f.matches(&a));
        f.resource_type = ResourceType::Group;
        f.permission_type = AclPermissionType::Any;
        assert!(!f.matches(&a));
    }

    #[test]
    fn new_acls_are_validated_as_kafka() {
        let good = allow_topic("t", PatternType::Literal, ALICE, Read);
        assert!(good.validate().is_ok());
        let mut bad = good.clone();
        bad.pattern_type = PatternType::Match;
        assert!(bad.validate().is_err());
        let mut bad = good.clone();
        bad.operation = AclOperation::Any;
        assert!(bad.validate().is_err());
        let mut bad = good.clone();
        bad.permission_type = AclPermissionType::Any;
        assert!(bad.validate().is_err());
        let mut bad = good.clone();
        bad.resource_name = String::new();
        assert!(bad.validate().is_err());
        let mut bad = good.clone();
        bad.principal = "alice".into();
        assert!(bad.validate().is_err());
        let mut bad = good.clone();
        bad.resource_type = ResourceType::Cluster;
        assert!(bad.validate().is_err());
        bad.resource_name = CLUSTER_NAME.into();
        assert!(bad.validate().is_ok());
        let mut f = AclBindingFilter::any();
        assert!(f.validate().is_ok());
        f.operation = AclOperation::Unknown;
        assert!(f.validate().is_err());
    }

    #[test]
    fn codes_round_trip_and_unknown_codes_are_unknown() {
        for op in AclOperation::ALL_VALUES {
            assert_eq!(AclOperation::from_code(op.code()), *op);
        }
        assert_eq!(AclOperation::from_code(99), AclOperation::Unknown);
        assert_eq!(ResourceType::from_code(-1), ResourceType::Unknown);
        assert_eq!(PatternType::from_code(4), PatternType::Prefixed);
    }
}

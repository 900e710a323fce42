//! DescribeAcls (29), CreateAcls (30) and DeleteAcls (31), as Kafka's AclApis answers them:
//! DescribeAcls needs DESCRIBE on the cluster (else a top-level CLUSTER_AUTHORIZATION_FAILED),
//! CreateAcls and DeleteAcls need ALTER on the cluster (else every result carries it); with no
//! authorizer configured they answer SECURITY_DISABLED ("No Authorizer is configured.").
//! Invalid ACLs and filters get INVALID_REQUEST per result. Changes go to the metadata log.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;
use oxka_metadata::acl::{
    AclBinding, AclBindingFilter, AclOperation, AclPermissionType, PatternType, ResourceType,
};
use oxka_protocol::kafka_protocol;

use super::{blocking, RequestContext};
use crate::errors::controller_error_code;
use crate::Broker;

const NO_AUTHORIZER: &str = "No Authorizer is configured.";

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn opt(v: &Option<StrBytes>) -> Option<String> {
    v.as_ref().map(|s| s.to_string())
}

pub(super) fn describe_acls(
    broker: &Broker,
    ctx: &RequestContext,
    r: DescribeAclsRequest,
) -> DescribeAclsResponse {
    let mut response = DescribeAclsResponse::default();
    if !broker.authorize_cluster(ctx, AclOperation::Describe) {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return response;
    }
    if !broker.authorizer_enabled() {
        response.error_code = ResponseError::SecurityDisabled.code();
        response.error_message = Some(s(NO_AUTHORIZER));
        return response;
    }
    let filter = AclBindingFilter {
        resource_type: ResourceType::from_code(r.resource_type_filter),
        resource_name: opt(&r.resource_name_filter),
        pattern_type: PatternType::from_code(r.pattern_type_filter),
        principal: opt(&r.principal_filter),
        host: opt(&r.host_filter),
        operation: AclOperation::from_code(r.operation),
        permission_type: AclPermissionType::from_code(r.permission_type),
    };
    if let Err(e) = filter.validate() {
        response.error_code = ResponseError::InvalidRequest.code();
        response.error_message = Some(s(&e.0));
        return response;
    }
    // Grouped by resource pattern, as Kafka's response is.
    let image = broker.image();
    let mut by_pattern: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for acl in image.acls.by_id.values().filter(|a| filter.matches(a)) {
        let mut d = AclDescription::default();
        d.principal = s(&acl.principal);
        d.host = s(&acl.host);
        d.operation = acl.operation.code();
        d.permission_type = acl.permission_type.code();
        by_pattern
            .entry((
                acl.resource_type.code(),
                acl.resource_name.clone(),
                acl.pattern_type.code(),
            ))
            .or_default()
            .push(d);
    }
    response.resources = by_pattern
        .into_iter()
        .map(|((rt, name, pt), acls)| {
            let mut res = DescribeAclsResource::default();
            res.resource_type = rt;
            res.resource_name = s(&name);
            res.pattern_type = pt;
            res.acls = acls;
            res
        })
        .collect();
    response
}

pub(super) async fn create_acls(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    r: CreateAclsRequest,
) -> CreateAclsResponse {
    let mut response = CreateAclsResponse::default();
    let every = |code: i16, message: Option<&str>| {
        r.creations
            .iter()
            .map(|_| {
                let mut c = AclCreationResult::default();
                c.error_code = code;
                c.error_message = message.map(s);
                c
            })
            .collect()
    };
    if !broker.authorize_cluster(ctx, AclOperation::Alter) {
        response.results = every(ResponseError::ClusterAuthorizationFailed.code(), None);
        return response;
    }
    if !broker.authorizer_enabled() {
        response.results = every(ResponseError::SecurityDisabled.code(), Some(NO_AUTHORIZER));
        return response;
    }
    let acls: Vec<AclBinding> = r
        .creations
        .iter()
        .map(|c| AclBinding {
            resource_type: ResourceType::from_code(c.resource_type),
            resource_name: c.resource_name.to_string(),
            pattern_type: PatternType::from_code(c.resource_pattern_type),
            principal: c.principal.to_string(),
            host: c.host.to_string(),
            operation: AclOperation::from_code(c.operation),
            permission_type: AclPermissionType::from_code(c.permission_type),
        })
        .collect();
    let n = acls.len();
    match blocking(broker, move |b| b.change_metadata(|c| c.create_acls(&acls))).await {
        Ok(results) => {
            response.results = results
                .into_iter()
                .map(|res| {
                    let mut c = AclCreationResult::default();
                    if let Err(e) = res {
                        c.error_code = ResponseError::InvalidRequest.code();
                        c.error_message = Some(s(&e.0));
                    }
                    c
                })
                .collect();
        }
        Err(e) => {
            let code = controller_error_code(&e);
            let message = e.to_string();
            response.results = (0..n)
                .map(|_| {
                    let mut c = AclCreationResult::default();
                    c.error_code = code;
                    c.error_message = Some(s(&message));
                    c
                })
                .collect();
        }
    }
    response
}

pub(super) async fn delete_acls(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    r: DeleteAclsRequest,
) -> DeleteAclsResponse {
    let mut response = DeleteAclsResponse::default();
    let every = |code: i16, message: Option<&str>| {
        r.filters
            .iter()
            .map(|_| {
                let mut f = DeleteAclsFilterResult::default();
                f.error_code = code;
                f.error_message = message.map(s);
                f
            })
            .collect()
    };
    if !broker.authorize_cluster(ctx, AclOperation::Alter) {
        response.filter_results = every(ResponseError::ClusterAuthorizationFailed.code(), None);
        return response;
    }
    if !broker.authorizer_enabled() {
        response.filter_results =
            every(ResponseError::SecurityDisabled.code(), Some(NO_AUTHORIZER));
        return response;
    }
    let filters: Vec<AclBindingFilter> = r
        .filters
        .iter()
        .map(|f| AclBindingFilter {
            resource_type: ResourceType::from_code(f.resource_type_filter),
            resource_name: opt(&f.resource_name_filter),
            pattern_type: PatternType::from_code(f.pattern_type_filter),
            principal: opt(&f.principal_filter),
            host: opt(&f.host_filter),
            operation: AclOperation::from_code(f.operation),
            permission_type: AclPermissionType::from_code(f.permission_type),
        })
        .collect();
    let n = filters.len();
    match blocking(broker, move |b| {
        b.change_metadata(|c| c.delete_acls(&filters))
    })
    .await
    {
        Ok(results) => {
            response.filter_results = results
                .into_iter()
                .map(|res| {
                    let mut f = DeleteAclsFilterResult::default();
                    match res {
                        Ok(matched) => f.matching_acls = matched.iter().map(matching).collect(),
                        Err(e) => {
                            f.error_code = ResponseError::InvalidRequest.code();
                            f.error_message = Some(s(&e.0));
                        }
                    }
                    f
                })
                .collect();
        }
        Err(e) => {
            let code = controller_error_code(&e);
            let message = e.to_string();
            response.filter_results = (0..n)
                .map(|_| {
                    let mut f = DeleteAclsFilterResult::default();
                    f.error_code = code;
                    f.error_message = Some(s(&message));
                    f
                })
                .collect();
        }
    }
    response
}

fn matching(acl: &AclBinding) -> DeleteAclsMatchingAcl {
    let mut m = DeleteAclsMatchingAcl::default();
    m.resource_type = acl.resource_type.code();
    m.resource_name = s(&acl.resource_name);
    m.pattern_type = acl.pattern_type.code();
    m.principal = s(&acl.principal);
    m.host = s(&acl.host);
    m.operation = acl.operation.code();
    m.permission_type = acl.permission_type.code();
    m
}

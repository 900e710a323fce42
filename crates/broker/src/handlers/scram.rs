//! DescribeUserScramCredentials (50) and AlterUserScramCredentials (51): SCRAM credentials kept
//! in the metadata log. As in Kafka, the client sends the salted password (the admin client
//! salts it), the broker stores only the derived StoredKey and ServerKey, and Describe reports
//! mechanisms and iteration counts, never key material.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use oxka_metadata::acl::AclOperation;
use oxka_metadata::{MetadataImage, MetadataRecord, ScramMechanism};
use oxka_protocol::kafka_protocol;

use super::RequestContext;
use crate::errors::controller_error_code;
use crate::sasl::scram::{credential_from_salted_password, MAX_ITERATIONS, MIN_ITERATIONS};
use crate::Broker;

type UserError = (i16, String);

/// DESCRIBE on the cluster, else the request fails as a whole (Kafka's KafkaApis).
pub(super) fn describe(
    broker: &Broker,
    ctx: &RequestContext,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let image = broker.image();
    let mut response = DescribeUserScramCredentialsResponse::default();
    if !broker.authorize_cluster(ctx, AclOperation::Describe) {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        response.error_message = Some("Cluster authorization failed.".into());
        return response;
    }
    let users: Vec<String> = match &request.users {
        Some(users) if !users.is_empty() => users.iter().map(|u| u.name.to_string()).collect(),
        _ => image.scram_credentials.keys().cloned().collect(),
    };
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for u in &users {
        *counts.entry(u).or_default() += 1;
    }
    let mut reported = BTreeSet::new();
    for user in &users {
        if !reported.insert(user.as_str()) {
            continue;
        }
        let mut result = DescribeUserScramCredentialsResult::default();
        result.user = user.clone().into();
        match describe_user(&image, user, counts[user.as_str()]) {
            Ok(infos) => result.credential_infos = infos,
            Err((code, message)) => {
                result.error_code = code;
                result.error_message = Some(message.into());
            }
        }
        response.results.push(result);
    }
    response
}

fn describe_user(
    image: &MetadataImage,
    user: &str,
    times_asked: usize,
) -> Result<Vec<CredentialInfo>, UserError> {
    if times_asked > 1 {
        return Err((
            ResponseError::DuplicateResource.code(),
            format!("Cannot describe SCRAM credentials for the same user twice in a single request: {user}"),
        ));
    }
    let Some(by_mechanism) = image.scram_credentials.get(user) else {
        return Err((
            ResponseError::ResourceNotFound.code(),
            format!("Attempt to describe a user credential that does not exist: {user}"),
        ));
    };
    Ok(by_mechanism
        .iter()
        .map(|(m, c)| {
            let mut info = CredentialInfo::default();
            info.mechanism = m.type_id();
            info.iterations = c.iterations;
            info
        })
        .collect())
}

/// ALTER on the cluster, else every user named is answered CLUSTER_AUTHORIZATION_FAILED (as
/// Kafka's controller answers a request it refuses).
pub(super) async fn alter(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    if !broker.authorize_cluster(ctx, AclOperation::Alter) {
        let mut response = AlterUserScramCredentialsResponse::default();
        let names = request
            .deletions
            .iter()
            .map(|d| &d.name)
            .chain(request.upsertions.iter().map(|u| &u.name));
        let mut seen = BTreeSet::new();
        for name in names {
            if seen.insert(name.to_string()) {
                let mut result = AlterUserScramCredentialsResult::default();
                result.user = name.clone();
                result.error_code = ResponseError::ClusterAuthorizationFailed.code();
                result.error_message = Some("Cluster authorization failed.".into());
                response.results.push(result);
            }
        }
        return response;
    }
    super::blocking(broker, move |b| alter_blocking(b, request)).await
}

fn alter_blocking(
    broker: &Broker,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let image = broker.image();
    // Users in request order; a user's changes apply only if all of them are valid.
    let mut order: Vec<String> = Vec::new();
    let mut errors: BTreeMap<String, UserError> = BTreeMap::new();
    let mut records: BTreeMap<String, Vec<MetadataRecord>> = BTreeMap::new();
    let mut seen: BTreeMap<(String, i8), usize> = BTreeMap::new();
    let changes = request
        .deletions
        .iter()
        .map(|d| (d.name.to_string(), d.mechanism, None))
        .chain(
            request
                .upsertions
                .iter()
                .map(|u| (u.name.to_string(), u.mechanism, Some(u))),
        );
    for (user, mechanism_id, upsertion) in changes {
        if !order.contains(&user) {
            order.push(user.clone());
        }
        *seen.entry((user.clone(), mechanism_id)).or_default() += 1;
        if errors.contains_key(&user) {
            continue;
        }
        let checked = check_change(&image, &user, mechanism_id, upsertion);
        match checked {
            Ok(record) => records.entry(user).or_default().push(record),
            Err(e) => {
                errors.insert(user, e);
            }
        }
    }
    for ((user, _), n) in &seen {
        if *n > 1 {
            errors.insert(
                user.clone(),
                (
                    ResponseError::DuplicateResource.code(),
                    "A user credential cannot be altered twice in the same request".into(),
                ),
            );
        }
    }
    let accepted: Vec<MetadataRecord> = order
        .iter()
        .filter(|u| !errors.contains_key(*u))
        .flat_map(|u| records.remove(u).unwrap_or_default())
        .collect();
    let commit_error = broker
        .change_metadata(|c| c.alter_scram_credentials(accepted.clone()))
        .err()
        .map(|e| (controller_error_code(&e), e.to_string()));
    let mut response = AlterUserScramCredentialsResponse::default();
    for user in order {
        let mut result = AlterUserScramCredentialsResult::default();
        let error = errors.remove(&user).or_else(|| commit_error.clone());
        if let Some((code, message)) = error {
            result.error_code = code;
            result.error_message = Some(message.into());
        }
        result.user = user.into();
        response.results.push(result);
    }
    response
}

fn check_change(
    image: &MetadataImage,
    user: &str,
    mechanism_id: i8,
    upsertion: Option<
        &kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion,
    >,
) -> Result<MetadataRecord, UserError> {
    let unacceptable = |m: &str| (ResponseError::UnacceptableCredential.code(), m.to_owned());
    if user.is_empty() {
        return Err(unacceptable("Username must not be empty"));
    }
    let Some(mechanism) = ScramMechanism::from_type_id(mechanism_id) else {
        return Err((
            ResponseError::UnsupportedSaslMechanism.code(),
            "Unknown SCRAM mechanism".into(),
        ));
    };
    let Some(u) = upsertion else {
        if image.scram_credential(user, mechanism).is_none() {
            return Err((
                ResponseError::ResourceNotFound.code(),
                "Attempt to delete a user credential that does not exist".into(),
            ));
        }
        return Ok(MetadataRecord::RemoveUserScramCredential {
            name: user.to_owned(),
            mechanism,
        });
    };
    if u.iterations < MIN_ITERATIONS {
        return Err(unacceptable("Too few iterations"));
    }
    if u.iterations > MAX_ITERATIONS {
        return Err(unacceptable("Too many iterations"));
    }
    if u.salt.is_empty() {
        return Err(unacceptable("Salt must not be empty"));
    }
    if u.salted_password.is_empty() {
        return Err(unacceptable("Salted password must not be empty"));
    }
    Ok(MetadataRecord::UserScramCredential {
        name: user.to_owned(),
        mechanism,
        credential: credential_from_salted_password(
            mechanism,
            u.salt.to_vec(),
            u.iterations,
            &u.salted_password,
        ),
    })
}

impl Broker {
    /// Creates SCRAM-SHA-256 and SCRAM-SHA-512 credentials (4096 iterations, random salt) for
    /// each `(user, password)` that has none for that mechanism yet; existing credentials are
    /// never overwritten. Oxka's stand-in for `kafka-storage format --add-scram`. Blocking.
    pub fn seed_scram_users(
        &self,
        users: &[(String, String)],
    ) -> Result<usize, oxka_metadata::ControllerError> {
        let image = self.image();
        let mut records = Vec::new();
        for (user, password) in users {
            for mechanism in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
                if image.scram_credential(user, mechanism).is_some() {
                    continue;
                }
                let salt: [u8; 32] = rand::random();
                let salted = crate::sasl::scram::salted_password(
                    mechanism,
                    password.as_bytes(),
                    &salt,
                    MIN_ITERATIONS,
                );
                records.push(MetadataRecord::UserScramCredential {
                    name: user.clone(),
                    mechanism,
                    credential: credential_from_salted_password(
                        mechanism,
                        salt.to_vec(),
                        MIN_ITERATIONS,
                        &salted,
                    ),
                });
            }
        }
        let n = records.len();
        self.change_metadata(|c| c.alter_scram_credentials(records.clone()))?;
        Ok(n)
    }
}

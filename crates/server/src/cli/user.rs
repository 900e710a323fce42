//! `oxka user list|set|delete`: SCRAM credentials (DescribeUserScramCredentials,
//! AlterUserScramCredentials). See [`super::scram`] for how the salted password is made.

use bytes::Bytes;
use oxka_client::kafka_protocol::messages::alter_user_scram_credentials_request::{
    AlterUserScramCredentialsRequest, ScramCredentialDeletion, ScramCredentialUpsertion,
};
use oxka_client::kafka_protocol::messages::describe_user_scram_credentials_request::{
    DescribeUserScramCredentialsRequest, UserName,
};
use oxka_client::kafka_protocol::protocol::StrBytes;
use oxka_client::ClientError;
use serde_json::json;

use super::output::emit;
use super::scram::{random_salt, salted_password, Mechanism, MAX_ITERATIONS, MIN_ITERATIONS};
use super::{error_cell, failed, failure, Common, Table};

#[derive(Debug, clap::Args)]
pub(crate) struct UserArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Debug, clap::Subcommand)]
enum UserCommand {
    /// Users with SCRAM credentials, and their mechanisms and iterations.
    List {
        /// Only these users.
        users: Vec<String>,
    },
    /// Create or replace a user's SCRAM credential.
    Set {
        user: String,
        #[arg(long, default_value = "SCRAM-SHA-256")]
        mechanism: String,
        /// The password (or set OXKA_USER_PASSWORD).
        #[arg(long, env = "OXKA_USER_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long, default_value_t = MIN_ITERATIONS)]
        iterations: i32,
    },
    /// Remove a user's SCRAM credential for one mechanism.
    Delete {
        user: String,
        #[arg(long, default_value = "SCRAM-SHA-256")]
        mechanism: String,
    },
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

pub(crate) fn build_upsert(
    user: &str,
    mechanism: Mechanism,
    password: &str,
    iterations: i32,
    salt: Vec<u8>,
) -> AlterUserScramCredentialsRequest {
    let salted = salted_password(mechanism, password.as_bytes(), &salt, iterations as u32);
    AlterUserScramCredentialsRequest::default().with_upsertions(vec![
        ScramCredentialUpsertion::default()
            .with_name(sb(user))
            .with_mechanism(mechanism as i8)
            .with_iterations(iterations)
            .with_salt(Bytes::from(salt))
            .with_salted_password(Bytes::from(salted)),
    ])
}

pub(crate) fn build_delete(user: &str, mechanism: Mechanism) -> AlterUserScramCredentialsRequest {
    AlterUserScramCredentialsRequest::default().with_deletions(vec![
        ScramCredentialDeletion::default()
            .with_name(sb(user))
            .with_mechanism(mechanism as i8),
    ])
}

pub(crate) fn build_describe(users: &[String]) -> DescribeUserScramCredentialsRequest {
    DescribeUserScramCredentialsRequest::default().with_users((!users.is_empty()).then(|| {
        users
            .iter()
            .map(|u| UserName::default().with_name(sb(u)))
            .collect()
    }))
}

pub(crate) async fn run(args: UserArgs) -> anyhow::Result<()> {
    let common = args.common;
    match args.command {
        UserCommand::List { users } => {
            let mut client = common.connect().await?;
            let response = client.send(|_| build_describe(&users)).await?;
            ClientError::check(
                response.error_code,
                response.error_message.map(|m| m.to_string()),
                "DescribeUserScramCredentials",
            )?;
            let mut table = Table::new(&["USER", "MECHANISM", "ITERATIONS", "ERROR"]);
            let mut rows = Vec::new();
            let mut errors = Vec::new();
            for r in &response.results {
                if r.error_code != 0 {
                    errors.push(failure(r.error_code, r.user.as_str()));
                    let e = error_cell(r.error_code, r.error_message.as_deref());
                    table.row(vec![r.user.to_string(), "-".into(), "-".into(), e.clone()]);
                    rows.push(json!({"user": r.user.as_str(), "error": e}));
                    continue;
                }
                for c in &r.credential_infos {
                    table.row(vec![
                        r.user.to_string(),
                        Mechanism::name(c.mechanism).into(),
                        c.iterations.to_string(),
                        String::new(),
                    ]);
                    rows.push(json!({"user": r.user.as_str(), "mechanism": Mechanism::name(c.mechanism), "iterations": c.iterations}));
                }
            }
            emit(common.format, &table, json!(rows));
            failed(&errors, "user lookups")
        }
        UserCommand::Set {
            user,
            mechanism,
            password,
            iterations,
        } => {
            let mechanism = Mechanism::parse(&mechanism)?;
            if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
                anyhow::bail!("--iterations must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}");
            }
            let request = build_upsert(&user, mechanism, &password, iterations, random_salt());
            alter(&common, request, &user, "set").await
        }
        UserCommand::Delete { user, mechanism } => {
            let mechanism = Mechanism::parse(&mechanism)?;
            alter(&common, build_delete(&user, mechanism), &user, "deleted").await
        }
    }
}

async fn alter(
    common: &Common,
    request: AlterUserScramCredentialsRequest,
    user: &str,
    done: &str,
) -> anyhow::Result<()> {
    let mut client = common.connect().await?;
    let response = client.send(|_| request).await?;
    let mut table = Table::new(&["USER", "RESULT"]);
    let mut errors = Vec::new();
    let mut result = String::from(done);
    for r in &response.results {
        if r.error_code != 0 {
            errors.push(failure(r.error_code, user));
            result = error_cell(r.error_code, r.error_message.as_deref());
        }
    }
    table.row(vec![user.to_owned(), result.clone()]);
    emit(
        common.format,
        &table,
        json!({"user": user, "result": result}),
    );
    failed(&errors, "credential changes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use oxka_client::kafka_protocol::protocol::{Decodable, Encodable};

    #[test]
    fn upsert_carries_salt_and_the_salted_password_not_the_password() {
        let salt = b"0123456789abcdef".to_vec();
        let req = build_upsert("alice", Mechanism::Sha512, "secret", 8192, salt.clone());
        let mut buf = BytesMut::new();
        req.encode(&mut buf, 0).unwrap();
        assert!(!buf.windows(6).any(|w| w == b"secret"));
        let back = AlterUserScramCredentialsRequest::decode(&mut buf.freeze(), 0).unwrap();
        let u = &back.upsertions[0];
        assert_eq!(
            (u.name.as_str(), u.mechanism, u.iterations),
            ("alice", 2, 8192)
        );
        assert_eq!(&u.salt[..], &salt[..]);
        assert_eq!(
            &u.salted_password[..],
            &salted_password(Mechanism::Sha512, b"secret", &salt, 8192)[..]
        );
    }

    #[test]
    fn describe_all_is_a_null_user_list_and_delete_names_the_mechanism() {
        let mut buf = BytesMut::new();
        build_describe(&[]).encode(&mut buf, 0).unwrap();
        let back = DescribeUserScramCredentialsRequest::decode(&mut buf.freeze(), 0).unwrap();
        assert_eq!(back.users, None);
        let mut buf = BytesMut::new();
        build_delete("bob", Mechanism::Sha256)
            .encode(&mut buf, 0)
            .unwrap();
        let back = AlterUserScramCredentialsRequest::decode(&mut buf.freeze(), 0).unwrap();
        assert_eq!(
            (back.deletions[0].name.as_str(), back.deletions[0].mechanism),
            ("bob", 1)
        );
    }
}

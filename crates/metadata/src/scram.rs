//! SCRAM credentials as the metadata log keeps them (KRaft's `UserScramCredentialRecord`):
//! per user and mechanism, the salt, the iteration count and the two keys derived from the
//! salted password (RFC 5802 `StoredKey` and `ServerKey`). The password and the salted password
//! are never stored.

use serde::{Deserialize, Serialize};

/// A SCRAM mechanism, numbered as Kafka's `ScramMechanism` (1 = SHA-256, 2 = SHA-512).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScramMechanism {
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

impl ScramMechanism {
    /// Kafka's wire number for the mechanism.
    pub fn type_id(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn from_type_id(id: i8) -> Option<Self> {
        match id {
            1 => Some(ScramMechanism::Sha256),
            2 => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    /// The SASL mechanism name (`SCRAM-SHA-256`).
    pub fn mechanism_name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_mechanism_name(name: &str) -> Option<Self> {
        match name {
            "SCRAM-SHA-256" => Some(ScramMechanism::Sha256),
            "SCRAM-SHA-512" => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }
}

/// What a server needs to verify a SCRAM client: never the password itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MetadataImage, MetadataRecord};

    fn credential(iterations: i32) -> ScramCredential {
        ScramCredential {
            salt: vec![1, 2],
            stored_key: vec![3],
            server_key: vec![4],
            iterations,
        }
    }

    #[test]
    fn records_set_replace_and_remove_credentials() {
        let mut image = MetadataImage::default();
        let set = |m, i| MetadataRecord::UserScramCredential {
            name: "alice".into(),
            mechanism: m,
            credential: credential(i),
        };
        image.apply(&[
            set(ScramMechanism::Sha256, 4096),
            set(ScramMechanism::Sha512, 4096),
            set(ScramMechanism::Sha256, 8192),
        ]);
        assert_eq!(
            image
                .scram_credential("alice", ScramMechanism::Sha256)
                .map(|c| c.iterations),
            Some(8192)
        );
        image.apply(&[MetadataRecord::RemoveUserScramCredential {
            name: "alice".into(),
            mechanism: ScramMechanism::Sha256,
        }]);
        assert!(image
            .scram_credential("alice", ScramMechanism::Sha256)
            .is_none());
        image.apply(&[MetadataRecord::RemoveUserScramCredential {
            name: "alice".into(),
            mechanism: ScramMechanism::Sha512,
        }]);
        assert!(image.scram_credentials.is_empty());
    }

    #[test]
    fn records_round_trip_through_json() {
        let r = MetadataRecord::UserScramCredential {
            name: "bob".into(),
            mechanism: ScramMechanism::Sha512,
            credential: credential(4096),
        };
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("SCRAM-SHA-512"));
        assert_eq!(serde_json::from_str::<MetadataRecord>(&text).unwrap(), r);
        assert_eq!(
            ScramMechanism::from_type_id(2),
            Some(ScramMechanism::Sha512)
        );
        assert_eq!(ScramMechanism::from_type_id(3), None);
    }
}

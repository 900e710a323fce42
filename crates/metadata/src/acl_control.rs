//! The controller's ACL operations (Kafka's AclControlManager): CreateAcls and DeleteAcls turn
//! into AccessControlEntry / RemoveAccessControlEntry records, committed to the metadata log
//! in one append per request, so ACLs survive restarts and a request is applied whole.
//!
//! Per-ACL and per-filter errors are returned beside the results, as Kafka answers them; only
//! a failed log write fails the whole request.

use uuid::Uuid;

use crate::acl::{AclBinding, AclBindingFilter, InvalidAcl};
use crate::controller::{Controller, ControllerError};
use crate::record::MetadataRecord;

impl Controller {
    /// Creates ACLs. Each entry is validated on its own; an ACL equal to an existing one (or
    /// to an earlier entry of the same request) succeeds without a new record.
    pub fn create_acls(
        &self,
        acls: &[AclBinding],
    ) -> Result<Vec<Result<(), InvalidAcl>>, ControllerError> {
        let image = self.image();
        let mut results = Vec::with_capacity(acls.len());
        let mut records: Vec<MetadataRecord> = Vec::new();
        for acl in acls {
            if let Err(e) = acl.validate() {
                results.push(Err(e));
                continue;
            }
            let duplicate = image.acls.find(acl).is_some()
                || records.iter().any(
                    |r| matches!(r, MetadataRecord::AccessControlEntry { acl: a, .. } if a == acl),
                );
            if !duplicate {
                records.push(MetadataRecord::AccessControlEntry {
                    id: Uuid::new_v4(),
                    acl: acl.clone(),
                });
            }
            results.push(Ok(()));
        }
        if !records.is_empty() {
            self.commit(&image, records)?;
        }
        Ok(results)
    }

    /// Deletes the ACLs each filter matches, returning them per filter. An ACL matched by
    /// several filters is reported (and removed) under the first.
    pub fn delete_acls(
        &self,
        filters: &[AclBindingFilter],
    ) -> Result<Vec<Result<Vec<AclBinding>, InvalidAcl>>, ControllerError> {
        let image = self.image();
        let mut removed: Vec<Uuid> = Vec::new();
        let mut results = Vec::with_capacity(filters.len());
        for filter in filters {
            if let Err(e) = filter.validate() {
                results.push(Err(e));
                continue;
            }
            let mut matched = Vec::new();
            for (id, acl) in &image.acls.by_id {
                if filter.matches(acl) && !removed.contains(id) {
                    removed.push(*id);
                    matched.push(acl.clone());
                }
            }
            results.push(Ok(matched));
        }
        if !removed.is_empty() {
            self.commit(
                &image,
                removed
                    .into_iter()
                    .map(|id| MetadataRecord::RemoveAccessControlEntry { id })
                    .collect(),
            )?;
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use crate::acl::*;
    use crate::Controller;

    fn topic_acl(name: &str, op: AclOperation) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.into(),
            pattern_type: PatternType::Literal,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: op,
            permission_type: AclPermissionType::Allow,
        }
    }

    #[test]
    fn acls_survive_reopening_the_metadata_log() {
        let dir = tempfile::tempdir().unwrap();
        let c = Controller::open(dir.path(), 1, None).unwrap();
        let a = topic_acl("t", AclOperation::Read);
        let b = topic_acl("u", AclOperation::Write);
        let mut bad = topic_acl("", AclOperation::Read);
        bad.resource_name.clear();
        let r = c
            .create_acls(&[a.clone(), b.clone(), bad, a.clone()])
            .unwrap();
        assert!(r[0].is_ok() && r[1].is_ok() && r[2].is_err() && r[3].is_ok());
        assert_eq!(c.image().acls.len(), 2);
        // Creating it again adds nothing.
        c.create_acls(std::slice::from_ref(&a)).unwrap();
        assert_eq!(c.image().acls.len(), 2);
        drop(c);
        let c = Controller::open(dir.path(), 1, None).unwrap();
        assert_eq!(c.image().acls.len(), 2);
        let mut f = AclBindingFilter::any();
        f.resource_name = Some("t".into());
        let out = c.delete_acls(&[f, AclBindingFilter::any()]).unwrap();
        assert_eq!(out[0].as_ref().unwrap(), &vec![a]);
        assert_eq!(out[1].as_ref().unwrap(), &vec![b]);
        drop(c);
        let c = Controller::open(dir.path(), 1, None).unwrap();
        assert!(c.image().acls.is_empty());
    }

    #[test]
    fn an_unknown_filter_is_refused_per_filter() {
        let dir = tempfile::tempdir().unwrap();
        let c = Controller::open(dir.path(), 1, None).unwrap();
        let mut f = AclBindingFilter::any();
        f.pattern_type = PatternType::Unknown;
        let out = c.delete_acls(&[f, AclBindingFilter::any()]).unwrap();
        assert!(out[0].is_err());
        assert_eq!(out[1].as_ref().unwrap().len(), 0);
    }
}

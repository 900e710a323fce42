//! Log directories at start-up, as Kafka's LogManager and MetaPropertiesEnsemble check them:
//! each must be a directory this process can write; each is locked through its `.lock` file
//! (an exclusive `flock`, held until the process exits) so a second broker on the same
//! directory refuses to start instead of corrupting it; and each `meta.properties` must name
//! this broker's `node.id` and the cluster's `cluster.id`.
//!
//! `meta.properties` is Kafka's Java properties file (`version=1`, `node.id`, `cluster.id`);
//! it is written once, when a directory is first used, and never rewritten.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::StartError;

/// The `.lock` files of every directory, held for as long as this value lives.
#[derive(Debug)]
pub struct LogDirLocks {
    _locks: Vec<Flock<File>>,
}

/// Makes sure every directory in `dirs` exists, is a writable directory, and is locked by this
/// process. Duplicates are locked once.
pub fn lock_all(dirs: &[PathBuf]) -> Result<LogDirLocks, StartError> {
    let mut locks = Vec::new();
    let mut seen: Vec<&PathBuf> = Vec::new();
    for dir in dirs {
        if seen.contains(&dir) {
            continue;
        }
        seen.push(dir);
        if dir.exists() && !dir.is_dir() {
            return Err(StartError::NotADirectory { path: dir.clone() });
        }
        std::fs::create_dir_all(dir).map_err(|source| dir_error(dir, source))?;
        let path = dir.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| dir_error(dir, source))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => locks.push(lock),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                return Err(StartError::LogDirLocked { path: dir.clone() })
            }
            Err((_, errno)) => return Err(dir_error(dir, std::io::Error::from(errno))),
        }
    }
    Ok(LogDirLocks { _locks: locks })
}

fn dir_error(dir: &Path, source: std::io::Error) -> StartError {
    if source.kind() == ErrorKind::PermissionDenied || source.raw_os_error() == Some(30) {
        // EACCES, EPERM or EROFS: say so plainly rather than "Permission denied (os error 13)".
        StartError::NotWritable {
            path: dir.to_path_buf(),
            source,
        }
    } else {
        StartError::LogDir {
            path: dir.to_path_buf(),
            source,
        }
    }
}

/// The cluster id recorded in the `meta.properties` files of `dirs`, after checking that every
/// file names `node_id`, that they agree on the cluster id, and that it is `expected_cluster`
/// when one is configured. `None` when no directory has the file yet.
pub fn check_meta_properties(
    dirs: &[PathBuf],
    node_id: i32,
    expected_cluster: Option<&str>,
) -> Result<Option<String>, StartError> {
    let mut found: Option<(String, PathBuf)> = None;
    for dir in dirs {
        let path = dir.join("meta.properties");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(source) => return Err(StartError::LogDir { path, source }),
        };
        let props = parse(&text);
        let bad = |reason: String| StartError::MetaProperties {
            path: path.clone(),
            reason,
        };
        let stored = props.get("node.id").or_else(|| props.get("broker.id"));
        match stored.map(|v| v.parse::<i32>()) {
            Some(Ok(stored)) if stored == node_id => {}
            Some(Ok(stored)) => {
                return Err(bad(format!(
                    "Stored node id {stored} doesn't match previous node id {node_id}. If you moved your data, make sure your configured node id matches. If you intend to create a new node, you should remove all data in your data directories."
                )))
            }
            Some(Err(_)) | None => return Err(bad("no valid node.id".into())),
        }
        let Some(cluster) = props.get("cluster.id").filter(|c| !c.is_empty()) else {
            return Err(bad("no cluster.id".into()));
        };
        if let Some(expected) = expected_cluster {
            if cluster != expected {
                return Err(bad(format!(
                    "Invalid cluster.id. Expected {expected}, but read {cluster}"
                )));
            }
        }
        if let Some((first, first_path)) = &found {
            if first != cluster {
                return Err(bad(format!(
                    "Invalid cluster.id. Expected {first} (as in {}), but read {cluster}",
                    first_path.display()
                )));
            }
        } else {
            found = Some((cluster.clone(), path.clone()));
        }
    }
    Ok(found.map(|(c, _)| c))
}

/// Writes Kafka's `meta.properties` in a log dir if it is not there yet.
pub fn write_meta_properties(dir: &Path, node_id: i32, cluster_id: &str) -> std::io::Result<()> {
    let path = dir.join("meta.properties");
    if path.exists() {
        return Ok(());
    }
    let text =
        format!("#\n#Written by oxka\nversion=1\nnode.id={node_id}\ncluster.id={cluster_id}\n");
    std::fs::write(path, text)
}

/// `key=value` lines; `#` and `!` comments. (meta.properties never uses escapes.)
fn parse(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = vec![dir.path().join("a")];
        let first = lock_all(&dirs).unwrap();
        assert!(matches!(
            lock_all(&dirs),
            Err(StartError::LogDirLocked { .. })
        ));
        drop(first);
        lock_all(&dirs).unwrap();
    }

    #[test]
    fn a_file_is_not_a_log_dir() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(
            lock_all(&[file]),
            Err(StartError::NotADirectory { .. })
        ));
    }

    #[test]
    fn meta_properties_must_match_node_and_cluster() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = vec![dir.path().to_path_buf()];
        assert_eq!(check_meta_properties(&dirs, 1, None).unwrap(), None);
        write_meta_properties(dir.path(), 1, "abc").unwrap();
        assert_eq!(
            check_meta_properties(&dirs, 1, None).unwrap().as_deref(),
            Some("abc")
        );
        assert_eq!(
            check_meta_properties(&dirs, 1, Some("abc"))
                .unwrap()
                .as_deref(),
            Some("abc")
        );
        let err = check_meta_properties(&dirs, 2, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Stored node id 1 doesn't match"), "{err}");
        let err = check_meta_properties(&dirs, 1, Some("xyz"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("Expected xyz, but read abc"), "{err}");
    }
}

//! Exclusive ownership of one topic partition of the lake, across sink
//! instances on one machine: an advisory lock on a file under
//! `data_lake/_sink/locks/`. The kernel releases it when its owner dies,
//! even by kill -9, so a new owner never writes next to a live old one.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::sink::{SinkError, TopicPartition};

#[derive(Debug)]
pub struct PartitionLock {
    _lock: Flock<File>,
}

fn lock_path(lake_root: &Path, partition: &TopicPartition) -> PathBuf {
    lakehouse::lake::lock_dir(lake_root)
        .join(format!("{}-{}.lock", partition.topic, partition.partition))
}

/// Whether a live sink instance owns the partition now. Probing takes the
/// lock for an instant when it is free; an instance acquiring it meanwhile
/// retries (see [`PartitionLock::acquire`]).
pub fn is_owned(lake_root: &Path, partition: &TopicPartition) -> std::io::Result<bool> {
    let file = match File::open(lock_path(lake_root, partition)) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(_released_on_drop) => Ok(false),
        Err((_, Errno::EWOULDBLOCK)) => Ok(true),
        Err((_, errno)) => Err(errno.into()),
    }
}

impl PartitionLock {
    /// Waits up to `timeout` for the partition's previous owner to let go.
    pub fn acquire(
        lake_root: &Path,
        partition: &TopicPartition,
        timeout: Duration,
    ) -> Result<Self, SinkError> {
        let dir = lakehouse::lake::lock_dir(lake_root);
        std::fs::create_dir_all(&dir)
            .map_err(SinkError::io(format!("cannot create {}", dir.display())))?;
        let path = lock_path(lake_root, partition);
        let started = Instant::now();
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(SinkError::io(format!("cannot open {}", path.display())))?;
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => return Ok(Self { _lock: lock }),
                Err((returned, Errno::EWOULDBLOCK)) if started.elapsed() < timeout => {
                    file = returned;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err((_, errno)) => {
                    return Err(SinkError::Storage(format!(
                        "{partition} is still held by another sink instance after {timeout:?} ({})",
                        errno.desc()
                    )))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_has_one_owner_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let tp = TopicPartition::new("T", 0);
        let first = PartitionLock::acquire(dir.path(), &tp, Duration::ZERO).unwrap();
        let err = PartitionLock::acquire(dir.path(), &tp, Duration::from_millis(100)).unwrap_err();
        assert!(err.to_string().contains("still held"), "{err}");
        PartitionLock::acquire(dir.path(), &TopicPartition::new("T", 1), Duration::ZERO).unwrap();
        drop(first);
        PartitionLock::acquire(dir.path(), &tp, Duration::ZERO).unwrap();
    }

    #[test]
    fn ownership_is_seen_from_another_holder_and_probing_takes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let tp = TopicPartition::new("T", 0);
        assert!(!is_owned(dir.path(), &tp).unwrap(), "never owned");
        let owner = PartitionLock::acquire(dir.path(), &tp, Duration::ZERO).unwrap();
        assert!(is_owned(dir.path(), &tp).unwrap());
        drop(owner);
        assert!(!is_owned(dir.path(), &tp).unwrap(), "released");
        PartitionLock::acquire(dir.path(), &tp, Duration::ZERO).unwrap();
    }
}

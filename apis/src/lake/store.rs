//! The object store DataFusion reads the lake through: the local file
//! system, read-only, limited to the lake's own folder, and blind to
//! symbolic links (the local store follows them, so a link planted inside
//! the lake could otherwise expose any file of the machine to a query).

use std::path::{Component, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::execution::object_store::ObjectStoreUrl;
use futures::stream::{BoxStream, StreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

#[derive(Debug)]
pub struct LakeStore {
    root: Arc<PathBuf>,
    inner: LocalFileSystem,
}

impl std::fmt::Display for LakeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LakeStore({})", self.root.display())
    }
}

/// The URL DataFusion finds this store under (local paths are `file://`).
pub fn url() -> ObjectStoreUrl {
    ObjectStoreUrl::local_filesystem()
}

impl LakeStore {
    /// `root` must be canonical (no links in it).
    pub fn new(root: PathBuf) -> Self {
        Self {
            root: Arc::new(root),
            inner: LocalFileSystem::new(),
        }
    }
}

/// True when `location` is inside `root` and no part of it below `root` is a link.
fn inside(root: &std::path::Path, location: &Path) -> bool {
    let full = PathBuf::from("/").join(location.as_ref());
    let Ok(rest) = full.strip_prefix(root) else {
        return false;
    };
    let mut current = root.to_path_buf();
    for part in rest.components() {
        let Component::Normal(name) = part else {
            return false;
        };
        current.push(name);
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if !meta.file_type().is_symlink() => {}
            _ => return false,
        }
    }
    true
}

fn not_found(location: &Path) -> object_store::Error {
    object_store::Error::NotFound {
        path: location.to_string(),
        source: "not a file of the data lake".into(),
    }
}

fn read_only() -> object_store::Error {
    object_store::Error::NotSupported {
        source: "the data lake is read-only here".into(),
    }
}

#[async_trait]
impl ObjectStore for LakeStore {
    async fn put_opts(&self, _: &Path, _: PutPayload, _: PutOptions) -> Result<PutResult> {
        Err(read_only())
    }

    async fn put_multipart_opts(
        &self,
        _: &Path,
        _: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        Err(read_only())
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        if !inside(&self.root, location) {
            return Err(not_found(location));
        }
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        locations.map(|_| Err(read_only())).boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let root = Arc::clone(&self.root);
        self.inner
            .list(prefix)
            .filter(move |entry| {
                let keep = match entry {
                    Ok(meta) => inside(&root, &meta.location),
                    Err(_) => true,
                };
                futures::future::ready(keep)
            })
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let mut listed = self.inner.list_with_delimiter(prefix).await?;
        listed
            .objects
            .retain(|meta| inside(&self.root, &meta.location));
        listed
            .common_prefixes
            .retain(|path| inside(&self.root, path));
        Ok(listed)
    }

    async fn copy_opts(&self, _: &Path, _: &Path, _: CopyOptions) -> Result<()> {
        Err(read_only())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_paths_outside_the_lake_are_not_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap().join("lake");
        std::fs::create_dir_all(root.join("S/ingestion_date=2026-12-01")).unwrap();
        std::fs::write(root.join("S/ingestion_date=2026-12-01/part.parquet"), b"x").unwrap();
        std::fs::write(dir.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("S/link.parquet")).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("LINKED")).unwrap();
        let path = |p: &std::path::Path| Path::from_filesystem_path(p).unwrap();
        assert!(inside(
            &root,
            &path(&root.join("S/ingestion_date=2026-12-01/part.parquet"))
        ));
        assert!(!inside(&root, &path(&root.join("S/link.parquet"))));
        assert!(!inside(&root, &path(&root.join("LINKED/secret"))));
        assert!(!inside(&root, &path(&dir.path().join("secret"))));
    }
}

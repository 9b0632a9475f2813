//! The embedded backend: one file per request and content hash,
//! `<data_dir>/media/<request id>/<sha256>`, written to a temporary name, fsynced and renamed
//! into place, so a reader never sees half a file.

use std::path::{Path, PathBuf};

use schemas::RequestId;
use tokio::io::AsyncWriteExt;

use super::MediaError;

/// Files under one root directory.
#[derive(Debug, Clone)]
pub struct FileMedia {
    root: PathBuf,
}

impl FileMedia {
    /// The store under `<data_dir>/media`.
    pub fn in_data_dir(data_dir: &Path) -> FileMedia {
        FileMedia {
            root: data_dir.join("media"),
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, request_id: RequestId, sha256: &str) -> PathBuf {
        self.root.join(request_id.to_string()).join(sha256)
    }

    pub(super) async fn put(
        &self,
        request_id: RequestId,
        sha256: &str,
        bytes: &[u8],
    ) -> Result<(), MediaError> {
        let path = self.path(request_id, sha256);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| MediaError::Io { path, source }
        };
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        tokio::fs::create_dir_all(&dir).await.map_err(io(&dir))?;
        let partial = path.with_extension("partial");
        let mut file = tokio::fs::File::create(&partial)
            .await
            .map_err(io(&partial))?;
        file.write_all(bytes).await.map_err(io(&partial))?;
        file.sync_all().await.map_err(io(&partial))?;
        drop(file);
        tokio::fs::rename(&partial, &path).await.map_err(io(&path))
    }

    pub(super) async fn get(
        &self,
        request_id: RequestId,
        sha256: &str,
    ) -> Result<Option<bytes::Bytes>, MediaError> {
        let path = self.path(request_id, sha256);
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes.into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(MediaError::Io { path, source }),
        }
    }

    pub(super) async fn delete(
        &self,
        request_id: RequestId,
        sha256: &str,
    ) -> Result<bool, MediaError> {
        let path = self.path(request_id, sha256);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(MediaError::Io { path, source }),
        }
    }
}

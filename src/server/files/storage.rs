//! Where files' bytes live: a content-addressed directory (`DATA_DIR/files` by default) or an
//! S3-compatible bucket (`s3://bucket/prefix`), both through `object_store`. Contents are stored
//! once under their SHA-256 (`blobs/ab/abcd...`); an upload is written to `tmp/` first and moved
//! to its address once its digest is known.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt, WriteMultipart,
};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot use {dir} for files: {source}")]
    Directory {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("file store {spec}: {source}")]
    Open {
        spec: String,
        #[source]
        source: object_store::Error,
    },
    #[error("--file-store s3://BUCKET[/PREFIX] needs a bucket name")]
    NoBucket,
}

/// The file store, cheap to clone.
#[derive(Clone)]
pub struct FileStorage {
    objects: Arc<dyn ObjectStore>,
    /// Where it is, for the log.
    pub description: String,
}

impl FileStorage {
    /// `spec` is `s3://bucket/prefix` (endpoint, region and credentials from the usual AWS_*
    /// variables) or a directory; without one, `data_dir/files`.
    pub fn open(spec: Option<&str>, data_dir: &FsPath) -> Result<FileStorage, StorageError> {
        match spec {
            Some(spec) if spec.starts_with("s3://") => Self::s3(spec),
            Some(dir) => Self::directory(FsPath::new(dir.trim_start_matches("file://"))),
            None => Self::directory(&data_dir.join("files")),
        }
    }

    fn directory(dir: &FsPath) -> Result<FileStorage, StorageError> {
        let failed = |source| StorageError::Directory {
            dir: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(failed)?;
        let local = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|source| StorageError::Open {
                spec: dir.display().to_string(),
                source,
            })?
            .with_automatic_cleanup(true);
        Ok(FileStorage {
            objects: Arc::new(local),
            description: dir.display().to_string(),
        })
    }

    fn s3(spec: &str) -> Result<FileStorage, StorageError> {
        let rest = spec.trim_start_matches("s3://");
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(StorageError::NoBucket);
        }
        // object_store's HTTP client speaks rustls with the process's provider: ring, as everywhere.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let s3 = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(|source| StorageError::Open {
                spec: spec.into(),
                source,
            })?;
        let prefix = prefix.trim_matches('/');
        let objects: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(s3, prefix))
        };
        Ok(FileStorage {
            objects,
            description: spec.into(),
        })
    }

    /// Where content `sha256` (hex) is kept.
    pub fn blob(sha256: &str) -> Path {
        Path::from(format!("blobs/{}/{sha256}", &sha256[..2.min(sha256.len())]))
    }

    /// Where an upload in progress is written.
    pub fn temporary(id: uuid::Uuid) -> Path {
        Path::from(format!("tmp/{id}"))
    }

    /// A writer for an upload in progress at `at`, in parts written as they fill.
    pub async fn writer(&self, at: &Path) -> Result<WriteMultipart, object_store::Error> {
        Ok(WriteMultipart::new(self.objects.put_multipart(at).await?))
    }

    /// Moves an upload to its content address (the same bytes may be there already).
    pub async fn settle(&self, from: &Path, sha256: &str) -> Result<(), object_store::Error> {
        self.objects.rename(from, &Self::blob(sha256)).await
    }

    /// Stores small content whole (a preview).
    pub async fn put(&self, sha256: &str, bytes: Bytes) -> Result<(), object_store::Error> {
        self.objects
            .put(&Self::blob(sha256), bytes.into())
            .await
            .map(|_| ())
    }

    /// Content `sha256` (or an upload in progress), whole, into memory: for small files only.
    pub async fn read_all(&self, at: &Path) -> Result<Bytes, object_store::Error> {
        self.objects.get(at).await?.bytes().await
    }

    /// Bytes `range` (or all) of content `sha256`, as they are read.
    pub async fn read(
        &self,
        sha256: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<BoxStream<'static, Result<Bytes, object_store::Error>>, object_store::Error> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..Default::default()
        };
        let got = self.objects.get_opts(&Self::blob(sha256), options).await?;
        match got.payload {
            // A local file is read in large chunks: object_store's own stream reads 8 KiB at a
            // time, a quarter of the speed (measured: 245 MB/s for a 1 GiB download).
            GetResultPayload::File(file, path) => Ok(read_file(file, path, got.range)),
            GetResultPayload::Stream(stream) => Ok(stream),
        }
    }

    /// Removes what is at `at`; already gone is fine.
    pub async fn remove(&self, at: &Path) -> Result<(), object_store::Error> {
        match self.objects.delete(at).await {
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            other => other,
        }
    }

    /// The size of content `sha256`.
    pub async fn size(&self, sha256: &str) -> Result<u64, object_store::Error> {
        Ok(self.objects.head(&Self::blob(sha256)).await?.size)
    }

    /// Whether content `sha256` is stored (for tests and checks).
    pub async fn has(&self, sha256: &str) -> Result<bool, object_store::Error> {
        match self.objects.head(&Self::blob(sha256)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Uploads in progress last written before `cutoff`: left by a server that stopped mid-upload.
    pub async fn stale_uploads(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Path>, object_store::Error> {
        let mut listed = self.objects.list(Some(&Path::from("tmp")));
        let mut stale = Vec::new();
        while let Some(meta) = listed.next().await {
            let meta = meta?;
            if meta.last_modified < cutoff {
                stale.push(meta.location);
            }
        }
        Ok(stale)
    }
}

/// Bytes `range` of a local `file`, in chunks of 256 KiB.
fn read_file(
    file: std::fs::File,
    path: PathBuf,
    range: std::ops::Range<u64>,
) -> BoxStream<'static, Result<Bytes, object_store::Error>> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let opened = async move {
        let mut file = tokio::fs::File::from_std(file);
        file.seek(std::io::SeekFrom::Start(range.start)).await?;
        Ok::<_, std::io::Error>(tokio_util::io::ReaderStream::with_capacity(
            file.take(range.end - range.start),
            256 * 1024,
        ))
    };
    let failed = move |source: std::io::Error| object_store::Error::Generic {
        store: "LocalFileSystem",
        source: format!("reading {}: {source}", path.display()).into(),
    };
    let failed_too = failed.clone();
    futures_util::stream::once(opened)
        .map(move |opened| opened.map_err(failed.clone()))
        .map_ok(move |chunks| chunks.map_err(failed_too.clone()))
        .try_flatten()
        .boxed()
}

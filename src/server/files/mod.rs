//! Files in chats: the service both doors use. Uploads are streamed into storage (`upload`),
//! attached to messages by `commands::messaging`, read back by the download route, and removed by
//! the sweep once nothing refers to them (`sweep`). Bytes live in `storage`; images get their
//! dimensions and a preview (`images`).

pub mod images;
pub mod storage;
pub(crate) mod sweep;
pub(crate) mod upload;

use std::time::Duration;

use tokio::sync::Notify;

pub use storage::{FileStorage, StorageError};

/// The limits on files (`--max-upload-size`, `--upload-quota`, and the sweep's clocks).
#[derive(Debug, Clone, Copy)]
pub struct FileLimits {
    /// Largest upload, in bytes.
    pub max_upload: u64,
    /// Bytes one user's files may take in all; 0: no quota.
    pub quota: u64,
    /// An upload never attached is removed this long after it was made.
    pub unattached_for: Duration,
    /// How often the sweep runs (it also runs soon after a message with files is deleted).
    pub sweep_every: Duration,
}

/// The file service: where bytes go and the limits they are held to.
pub struct Files {
    pub storage: FileStorage,
    pub limits: FileLimits,
    /// Wakes the sweep early (a message with files was deleted).
    sweep_soon: Notify,
}

impl Files {
    pub fn new(storage: FileStorage, limits: FileLimits) -> Files {
        Files {
            storage,
            limits,
            sweep_soon: Notify::new(),
        }
    }

    /// Asks the sweep to run now: files lost their message.
    pub fn sweep_soon(&self) {
        self.sweep_soon.notify_one();
    }
}

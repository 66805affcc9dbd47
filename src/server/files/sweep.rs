//! The sweep: removes uploads never attached once they are old enough, the bytes no file refers to
//! any more (after a message with files is deleted), and uploads a stopped server left midway.
//! Every instance may sweep; the database decides which removal happens (`Store::remove_blob_if_unused`).

use std::sync::Arc;

use super::Files;
use crate::server::store::Store;

/// Contents removed per round; the rest wait for the next.
const BATCH: i64 = 500;

/// What one round removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub unattached: u64,
    pub contents: u64,
    pub abandoned: u64,
}

impl Files {
    /// One round of the sweep.
    pub async fn sweep(&self, store: &Store) -> Result<Swept, crate::server::store::StoreError> {
        let mut swept = Swept {
            unattached: store.remove_unattached(self.limits.unattached_for).await?,
            ..Swept::default()
        };
        for sha in store.unused_blobs(BATCH).await? {
            let at = super::FileStorage::blob(&sha);
            if store
                .remove_blob_if_unused(&sha, self.storage.remove(&at))
                .await?
            {
                swept.contents += 1;
            }
        }
        let cutoff = chrono::Utc::now()
            - chrono::Duration::from_std(self.limits.unattached_for).unwrap_or_default();
        for at in self.storage.stale_uploads(cutoff).await? {
            self.storage.remove(&at).await?;
            swept.abandoned += 1;
        }
        Ok(swept)
    }
}

/// Sweeps every `sweep_every`, and soon after a message with files is deleted.
pub async fn run(files: Arc<Files>, store: Store) {
    let mut every = tokio::time::interval(files.limits.sweep_every);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = files.sweep_soon.notified() => {}
        }
        match files.sweep(&store).await {
            Ok(swept) if swept != Swept::default() => tracing::info!(?swept, "swept files"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "sweeping files failed"),
        }
    }
}

//! Files on the command line: `send --file` and the REPL's `/upload` (uploads, then the message),
//! `download` and `/download`, with a progress bar on a terminal.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::api::Api;
use super::error::CliError;
use super::files::Progress;
use crate::proto::files::human_size;
use crate::proto::{FileId, Uploaded};

/// A bar on standard error for a transfer of `label`, drawn only on a terminal (never into a
/// pipe or a log), and only once it has taken a moment.
fn bar(label: &str) -> (ProgressBar, Progress) {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr_with_hz(8)
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(None, target);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} {wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}",
        )
        .expect("a valid template"),
    );
    bar.set_message(label.to_string());
    let shown = bar.clone();
    let started = std::time::Instant::now();
    let progress: Progress = Arc::new(move |done, total| {
        if let Some(total) = total {
            shown.set_length(total);
        }
        // Quick transfers finish before a bar would be seen: it appears after half a second.
        if started.elapsed() > std::time::Duration::from_millis(500) {
            shown.set_position(done);
        }
    });
    (bar, progress)
}

/// Uploads each of `paths` in turn; their ids, to attach.
pub(crate) async fn upload_all(api: &Api, paths: &[PathBuf]) -> Result<Vec<FileId>, CliError> {
    let mut ids = Vec::with_capacity(paths.len());
    for path in paths {
        ids.push(upload(api, path).await?.file.id);
    }
    Ok(ids)
}

/// Uploads `path` with a progress bar.
pub(crate) async fn upload(api: &Api, path: &Path) -> Result<Uploaded, CliError> {
    if !path.is_file() {
        return Err(CliError::Local(format!(
            "{}: not a file you can read",
            path.display()
        )));
    }
    let (bar, progress) = bar(&path.display().to_string());
    let uploaded = api.upload(path, progress).await;
    bar.finish_and_clear();
    uploaded
}

/// Downloads file `id` to `to` (a directory or a file name; default the current directory).
/// Where it went and how big it is.
pub(crate) async fn download(
    api: &Api,
    id: FileId,
    to: Option<&Path>,
) -> Result<(PathBuf, u64), CliError> {
    let to = to.unwrap_or(Path::new("."));
    let (bar, progress) = bar(&format!("file {id}"));
    let saved = api.download(id, to, progress).await;
    bar.finish_and_clear();
    saved
}

/// `saved report.pdf (1.2 MB)`.
pub(crate) fn saved_line(path: &Path, size: u64) -> String {
    format!(
        "saved {} ({})",
        path.display(),
        human_size(size.min(i64::MAX as u64) as i64)
    )
}

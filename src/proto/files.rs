//! Files on the wire: an attachment as messages carry it, the reply to an upload, and the one rule
//! both sides use to make a file name safe (the server before storing it, the client before
//! saving under it).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A file's id (`[file 17]`).
pub type FileId = i64;

/// A file attached to a message, as history, live frames, sync and search carry it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct Attachment {
    pub id: FileId,
    /// Safe to show and to save under (see `safe_file_name`).
    pub name: String,
    /// Bytes.
    pub size: i64,
    /// From the file's bytes where they say (images, archives, PDFs...), else from its name.
    pub content_type: String,
    /// Images: pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<i32>,
    /// Images: a preview at most 320 px on its longer side is at `/files/{id}/preview`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub preview: bool,
}

/// `POST /files`: the upload, stored and ready to attach (send its `id` in `attachments`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct Uploaded {
    #[serde(flatten)]
    pub file: Attachment,
    /// Hex SHA-256 of the bytes, for checking a download.
    pub sha256: String,
}

/// Longest file name kept, in characters (most file systems allow 255 bytes).
pub const MAX_FILE_NAME: usize = 120;

/// `name` as a single, harmless file name: its last path component only (no `../`, no absolute
/// path, no drive), without control or invisible characters, with reserved characters replaced,
/// never empty, hidden (leading dot) or longer than `MAX_FILE_NAME` characters (the extension is
/// kept when shortening).
pub fn safe_file_name(name: &str) -> String {
    let last = name
        .rsplit(['/', '\\'])
        .find(|part| !part.trim().is_empty())
        .unwrap_or("");
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !is_invisible(*c))
        .map(|c| match c {
            ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c => c,
        })
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    let name = if trimmed.is_empty() || trimmed.chars().all(|c| c == '.') {
        "file".to_string()
    } else {
        trimmed.to_string()
    };
    shorten(&name)
}

/// Characters that change how text around them is shown (bidirectional overrides, zero-width
/// joiners): a name like `invoice\u{202E}fdp.exe` shows as `invoiceexe.pdf`.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

fn shorten(name: &str) -> String {
    if name.chars().count() <= MAX_FILE_NAME {
        return name.to_string();
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.chars().count() <= 10 => (stem, ext),
        _ => (name, ""),
    };
    let keep = MAX_FILE_NAME - ext.chars().count() - usize::from(!ext.is_empty());
    let stem: String = stem.chars().take(keep).collect();
    if ext.is_empty() {
        stem
    } else {
        format!("{stem}.{ext}")
    }
}

/// A size for people: `512 B`, `1.2 kB`, `3.4 MB`, `1.1 GB` (decimal units, as file managers show).
pub fn human_size(bytes: i64) -> String {
    let b = bytes.max(0) as f64;
    match bytes {
        ..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} kB", b / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", b / 1e6),
        _ => format!("{:.1} GB", b / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_hidden_names_become_plain_names() {
        assert_eq!(safe_file_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_file_name("/etc/shadow"), "shadow");
        assert_eq!(safe_file_name("C:\\Windows\\evil.dll"), "evil.dll");
        assert_eq!(safe_file_name("dir/"), "dir");
        assert_eq!(safe_file_name(".bashrc"), "bashrc");
        assert_eq!(safe_file_name(".."), "file");
        assert_eq!(safe_file_name(""), "file");
        assert_eq!(safe_file_name("   "), "file");
        assert_eq!(safe_file_name("report.pdf"), "report.pdf");
        assert_eq!(safe_file_name("Résumé 2026.pdf"), "Résumé 2026.pdf");
    }

    #[test]
    fn control_and_invisible_characters_go() {
        assert_eq!(safe_file_name("a\nb\r\u{1b}[31m.txt"), "ab[31m.txt");
        assert_eq!(safe_file_name("invoice\u{202E}fdp.exe"), "invoicefdp.exe");
        assert_eq!(safe_file_name("x\0y"), "xy");
        assert_eq!(safe_file_name("a:b*c?.txt"), "a_b_c_.txt");
    }

    #[test]
    fn long_names_keep_their_extension() {
        let long = format!("{}.tar", "x".repeat(500));
        let safe = safe_file_name(&long);
        assert_eq!(safe.chars().count(), MAX_FILE_NAME);
        assert!(safe.ends_with(".tar"));
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(1), "1 B");
        assert_eq!(human_size(1_234), "1.2 kB");
        assert_eq!(human_size(1_200_000), "1.2 MB");
        assert_eq!(human_size(52_428_800), "52.4 MB");
    }
}

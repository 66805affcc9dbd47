//! `/files`: uploading a file (streamed into storage) and downloading one, whole or by `Range`,
//! with headers that keep a hostile file from ever running in the server's origin.

use futures_util::TryStreamExt;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, HeaderValue, StatusCode, header};
use warp::reply::{Reply, Response};

use super::responses::{
    BadRequest, Invalid, NotFound, PayloadTooLarge, RequestTimeout, Unauthorized, Unavailable,
};
use super::{created, one_of, signed_in};
use crate::proto::{FileId, Uploaded};
use crate::server::commands::ApiError;
use crate::server::commands::validate::UploadQuery;
use crate::server::files::images::{preview_type, shown_inline};
use crate::server::files::upload::UploadRequest;
use crate::server::http::error::respond;
use crate::server::http::extract::{path_id, query, timed_out};
use crate::server::http::streamed_body::{BoxError, streamed};
use crate::server::state::{AppState, CurrentUser};
use crate::server::store::StoredFile;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let me = || signed_in(state.clone());
    one_of([
        warp::path!("files")
            .and(warp::post())
            .and(me())
            .and(query::<UploadQuery>())
            .and(warp::header::optional::<u64>("content-length"))
            .and(warp::body::stream())
            .then(
                |state: AppState, me: CurrentUser, q: UploadQuery, length, body| async move {
                    let request = UploadRequest {
                        uploader: me.id(),
                        name: q.name.unwrap_or_else(|| "file".into()),
                        length,
                    };
                    upload(state, request, body).await
                },
            )
            .map(respond)
            .boxed(),
        warp::path!("files" / String)
            .and(warp::get())
            .and(me())
            .and(warp::header::headers_cloned())
            .then(download)
            .map(respond)
            .boxed(),
        warp::path!("files" / String / "preview")
            .and(warp::get())
            .and(me())
            .and(warp::header::headers_cloned())
            .then(preview)
            .map(respond)
            .boxed(),
    ])
}

/// Upload a file, to attach to a message (send its `id` in `attachments`).
///
/// The body is the file's bytes, as they are (not a form); its type is read from the bytes.
/// Refused with 413 over `--max-upload-size` (before a byte is read when Content-Length says
/// so) or over the uploader's storage quota. An upload never attached is removed after a day.
#[utoipa::path(post, path = "/files", tag = "files",
    security(("bearer" = [])),
    params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "Stored; attach it by its id", body = Uploaded),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 408, response = RequestTimeout),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn upload<S, B>(
    state: AppState,
    request: UploadRequest,
    body: S,
) -> Result<Response, ApiError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: bytes::Buf,
{
    let body = body.map_err(|e| {
        if timed_out(&e) {
            ApiError::RequestTimeout
        } else {
            ApiError::BadRequest("The upload was cut off before its end".into())
        }
    });
    let uploaded = state.files.upload(&state.store, request, body).await?;
    Ok(created(&uploaded))
}

/// Download a file.
///
/// Only for members of a room where it was sent, and for its uploader until then; 404 for anyone
/// else. `Range` (one range) and `If-None-Match` are honoured. Images of a raster type are served
/// inline, anything else as an attachment; every answer is `nosniff` with a sandboxing CSP.
#[utoipa::path(get, path = "/files/{id}", tag = "files",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The file's id")),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream"),
        (status = 206, description = "The requested range"),
        (status = 304, description = "Unchanged (If-None-Match)"),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 416, description = "The range is outside the file"),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn download(
    segment: String,
    state: AppState,
    me: CurrentUser,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    serve(segment, state, me, headers, false).await
}

/// An image's preview: at most 320 px on its longer side (JPEG, or PNG when it has transparency).
#[utoipa::path(get, path = "/files/{id}/preview", tag = "files",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The image's file id")),
    responses(
        (status = 200, description = "The preview", content_type = "image/jpeg"),
        (status = 304, description = "Unchanged (If-None-Match)"),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn preview(
    segment: String,
    state: AppState,
    me: CurrentUser,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    serve(segment, state, me, headers, true).await
}

/// A file, or its preview, to someone who may read it.
async fn serve(
    segment: String,
    state: AppState,
    me: CurrentUser,
    headers: HeaderMap,
    preview: bool,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound("File not found".into());
    let id: FileId = path_id(&segment, "file_id")?.ok_or_else(not_found)?;
    let file = state
        .store
        .readable_file(id, me.id())
        .await?
        .ok_or_else(not_found)?;
    let served = if preview {
        let sha = file.preview_sha256.clone().ok_or_else(not_found)?;
        let head = state
            .files
            .storage
            .read(&sha, Some(0..8))
            .await
            .map_err(unavailable)?
            .try_fold(Vec::new(), |mut all, part| async move {
                all.extend_from_slice(&part);
                Ok(all)
            })
            .await
            .map_err(unavailable)?;
        let size = state.files.storage.size(&sha).await.map_err(unavailable)?;
        Served {
            sha256: sha,
            size,
            content_type: preview_type(&head).into(),
            disposition: disposition("inline", &format!("preview-{}", file.name)),
        }
    } else {
        Served::file(&file)
    };
    served.respond(&state, &headers).await
}

/// Storage failed; bytes gone under a file (its message deleted a moment ago) are a file gone.
fn unavailable(e: object_store::Error) -> ApiError {
    match e {
        object_store::Error::NotFound { .. } => ApiError::NotFound("File not found".into()),
        e => ApiError::Unavailable(crate::server::commands::Cause::of(e)),
    }
}

/// Types a browser would run or render as a document: always sent as plain bytes.
fn runnable(content_type: &str) -> bool {
    let t = content_type.to_ascii_lowercase();
    t.contains("html")
        || t.contains("xml")
        || t.contains("javascript")
        || t.contains("ecmascript")
        || t == "text/css"
        || t == "application/pdf"
}

/// A file (or preview) as it is answered.
struct Served {
    sha256: String,
    size: u64,
    content_type: String,
    disposition: String,
}

impl Served {
    fn file(file: &StoredFile) -> Served {
        let inline = shown_inline(&file.content_type);
        let content_type = if runnable(&file.content_type) {
            "application/octet-stream".to_string()
        } else {
            file.content_type.clone()
        };
        Served {
            sha256: file.sha256.clone(),
            size: file.size.max(0) as u64,
            content_type,
            disposition: disposition(if inline { "inline" } else { "attachment" }, &file.name),
        }
    }

    async fn respond(self, state: &AppState, headers: &HeaderMap) -> Result<Response, ApiError> {
        let etag = format!("\"{}\"", self.sha256);
        let header = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        let mut response = if header(header::IF_NONE_MATCH)
            .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
        {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            // A Range with an If-Range naming another version gets the whole file.
            let range = header(header::RANGE)
                .filter(|_| header(header::IF_RANGE).is_none_or(|tag| tag.trim() == etag));
            match parse_range(range, self.size) {
                Ranged::Unsatisfiable => {
                    let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
                    set(
                        &mut r,
                        header::CONTENT_RANGE,
                        &format!("bytes */{}", self.size),
                    );
                    r
                }
                Ranged::Whole => self.body(state, None).await?,
                Ranged::Part(part) => {
                    let content_range =
                        format!("bytes {}-{}/{}", part.start, part.end - 1, self.size);
                    let mut r = self.body(state, Some(part)).await?;
                    *r.status_mut() = StatusCode::PARTIAL_CONTENT;
                    set(&mut r, header::CONTENT_RANGE, &content_range);
                    r
                }
            }
        };
        set(&mut response, header::ETAG, &etag);
        set(&mut response, header::ACCEPT_RANGES, "bytes");
        // Access can be taken away (a member removed): ask every time, answer 304 when unchanged.
        set(&mut response, header::CACHE_CONTROL, "private, no-cache");
        set(&mut response, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
        set(
            &mut response,
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; sandbox",
        );
        set(&mut response, "cross-origin-resource-policy", "same-origin");
        set(&mut response, header::REFERRER_POLICY, "no-referrer");
        Ok(response)
    }

    /// A 200 with the bytes of `part` (or all), streamed from storage.
    async fn body(
        &self,
        state: &AppState,
        part: Option<std::ops::Range<u64>>,
    ) -> Result<Response, ApiError> {
        let length = part.as_ref().map_or(self.size, |p| p.end - p.start);
        let stream = state
            .files
            .storage
            .read(&self.sha256, part)
            .await
            .map_err(unavailable)?
            .map_err(BoxError::from);
        let mut response = streamed(warp::reply().into_response(), Box::pin(stream));
        set(&mut response, header::CONTENT_TYPE, &self.content_type);
        set(&mut response, header::CONTENT_LENGTH, &length.to_string());
        set(
            &mut response,
            header::CONTENT_DISPOSITION,
            &self.disposition,
        );
        Ok(response)
    }
}

fn set(response: &mut Response, name: impl header::IntoHeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

/// `Content-Disposition` with `name` both as a plain ASCII fallback and, exactly, as UTF-8
/// (RFC 6266): quotes, backslashes and anything outside printable ASCII never reach the header raw.
fn disposition(kind: &str, name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
enum Ranged {
    Whole,
    Part(std::ops::Range<u64>),
    Unsatisfiable,
}

/// One `bytes=` range (`a-b`, `a-`, `-n`); several ranges, another unit or nonsense get the whole
/// file, as RFC 9110 allows.
fn parse_range(header: Option<&str>, size: u64) -> Ranged {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ranged::Whole;
    };
    if spec.contains(',') {
        return Ranged::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ranged::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let range = if first.is_empty() {
        match last.parse::<u64>() {
            Ok(0) => return Ranged::Unsatisfiable,
            Ok(n) => size.saturating_sub(n)..size,
            Err(_) => return Ranged::Whole,
        }
    } else {
        let Ok(start) = first.parse::<u64>() else {
            return Ranged::Whole;
        };
        let end = match last {
            "" => size,
            last => match last.parse::<u64>() {
                Ok(l) if l >= start => (l + 1).min(size),
                _ => return Ranged::Whole,
            },
        };
        start..end
    };
    if range.start >= size || range.is_empty() {
        Ranged::Unsatisfiable
    } else {
        Ranged::Part(range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_read_as_rfc_9110_says() {
        assert_eq!(parse_range(None, 10), Ranged::Whole);
        assert_eq!(parse_range(Some("bytes=0-3"), 10), Ranged::Part(0..4));
        assert_eq!(parse_range(Some("bytes=5-"), 10), Ranged::Part(5..10));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Ranged::Part(7..10));
        assert_eq!(parse_range(Some("bytes=-30"), 10), Ranged::Part(0..10));
        assert_eq!(parse_range(Some("bytes=8-100"), 10), Ranged::Part(8..10));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Ranged::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), Ranged::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), Ranged::Whole);
        assert_eq!(parse_range(Some("items=0-1"), 10), Ranged::Whole);
        assert_eq!(parse_range(Some("bytes=5-2"), 10), Ranged::Whole);
        assert_eq!(parse_range(Some("bytes=x-"), 10), Ranged::Whole);
    }

    #[test]
    fn a_hostile_name_never_reaches_the_header_raw() {
        let d = disposition("attachment", "a\"; filename=evil.html\\.txt");
        assert!(
            d.starts_with("attachment; filename=\"a_; filename=evil.html_.txt\""),
            "{d}"
        );
        assert_eq!(
            disposition("inline", "Résumé.pdf"),
            "inline; filename=\"R_sum_.pdf\"; filename*=UTF-8''R%C3%A9sum%C3%A9.pdf"
        );
    }
}

//! The web client, served from inside the binary: `/app/` and its files (from `web/`, embedded at
//! build time, nothing fetched from elsewhere), and `/` for a browser, which is sent to it (an
//! API client asking `/` for JSON keeps the seed's answer). Every file goes out with a strict
//! Content-Security-Policy: scripts and styles from this origin only, no inline script, no
//! framing.

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::header::{self, HeaderValue};
use warp::http::{StatusCode, Uri};
use warp::reply::{Reply, Response};

/// The app's files: name, content type, bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../../web/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/api.js"),
    ),
    (
        "live.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/live.js"),
    ),
    (
        "files.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/files.js"),
    ),
    (
        "text.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/text.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../web/style.css"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_bytes!("../../../web/icon.svg"),
    ),
];

/// What the app may load and where it may connect: its own origin, nothing else.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; manifest-src 'self'; \
frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

pub fn routes() -> BoxedFilter<(Response,)> {
    let browser_at_root = warp::path::end()
        .and(warp::get())
        .and(wants_html())
        .map(|| redirect("/app/"));
    let app = warp::path!("app" / ..)
        .and(warp::path::full())
        .and(warp::path::tail())
        .and(warp::get().or(warp::head()).unify())
        .map(|full: warp::path::FullPath, tail: warp::path::Tail| {
            // `/app` itself: relative addresses in the page need the slash.
            if full.as_str() == "/app" {
                redirect("/app/")
            } else {
                file(tail.as_str())
            }
        });
    browser_at_root.or(app).unify().boxed()
}

/// A browser's navigation: it asks for HTML before JSON. (The seed's clients ask for JSON or
/// anything, and keep getting JSON.)
fn wants_html() -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("accept")
        .and_then(|accept: Option<String>| async move {
            let accept = accept.unwrap_or_default();
            let html = accept.find("text/html");
            let json = accept.find("application/json");
            match (html, json) {
                (Some(h), Some(j)) if h < j => Ok(()),
                (Some(_), None) => Ok(()),
                _ => Err(warp::reject::not_found()),
            }
        })
        .untuple_one()
}

fn redirect(to: &'static str) -> Response {
    warp::redirect::see_other(Uri::from_static(to)).into_response()
}

/// A file of the app (`index.html` for the app's root), with the app's security headers.
fn file(name: &str) -> Response {
    let name = if name.is_empty() { "index.html" } else { name };
    let Some((_, content_type, bytes)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        let mut missing =
            warp::reply::with_status("not found", StatusCode::NOT_FOUND).into_response();
        secure(&mut missing);
        return missing;
    };
    let mut reply = Response::new((*bytes).into());
    let headers = reply.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Small files, changed with every release: always revalidated, never stale.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secure(&mut reply);
    reply
}

fn secure(reply: &mut Response) {
    let headers = reply.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

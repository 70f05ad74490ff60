//! The web UI at `/ui/`: one page per screen (overview, snapshots, snapshot detail, restore,
//! retention preview, jobs, attachments), each with its own URL.
//!
//! Pages are rendered on the server from templates compiled into the binary (minijinja,
//! sources in `crates/server/ui/` embedded with `include_str!`) with one hand-written
//! script and style sheet, also embedded: no build step, no CDN, nothing fetched from
//! elsewhere. A page holds the screen's structure only, never data: the script fills it
//! from the public HTTP API (`/api/v1/...`) with the token the operator typed once (kept in
//! the browser's `sessionStorage`). That is why these routes are served without the token
//! check (`lib.rs` merges them outside it) while every API call they make goes through it.
//! No page ever holds the repository password.

mod pages;

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use minijinja::Environment;

pub use pages::{PAGES, Page};

/// Template sources, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../ui/base.html")),
    ("overview.html", include_str!("../../ui/overview.html")),
    ("snapshots.html", include_str!("../../ui/snapshots.html")),
    ("snapshot.html", include_str!("../../ui/snapshot.html")),
    ("restore.html", include_str!("../../ui/restore.html")),
    ("retention.html", include_str!("../../ui/retention.html")),
    ("jobs.html", include_str!("../../ui/jobs.html")),
    (
        "attachments.html",
        include_str!("../../ui/attachments.html"),
    ),
];

const SCRIPT: &str = include_str!("../../ui/app.js");
const STYLE: &str = include_str!("../../ui/app.css");

/// Security headers of every UI answer: scripts and styles from this server only (none
/// inline), no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        // A template that does not parse is a bug the unit tests catch; the page then
        // answers 500 with the reason instead of taking the server down.
        if let Err(e) = env.add_template(name, source) {
            tracing::error!(template = name, error = %e, "web UI template does not parse");
        }
    }
    env
});

/// Renders `page`; `id` is the snapshot of the detail page.
pub fn render(page: &Page, id: Option<&str>) -> Result<String, minijinja::Error> {
    let t = ENV.get_template(page.template)?;
    t.render(minijinja::context! {
        page => page.key,
        title => page.title,
        nav => PAGES.iter().filter(|p| p.in_nav).map(|p| minijinja::context! {
            key => p.key, title => p.title, path => p.path,
        }).collect::<Vec<_>>(),
        section => page.section,
        snapshot => id,
        version => env!("CARGO_PKG_VERSION"),
    })
}

fn html(page: &Page, id: Option<&str>) -> Response {
    match render(page, id) {
        Ok(body) => with_headers(body, "text/html; charset=utf-8"),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("web UI page {} cannot be rendered: {e}", page.key),
        )
            .into_response(),
    }
}

fn with_headers(body: impl IntoResponse, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

fn page(key: &str) -> &'static Page {
    PAGES.iter().find(|p| p.key == key).unwrap_or(&PAGES[0])
}

/// The UI's routes (no state, no data: see the module documentation).
pub fn routes() -> Router {
    let mut r = Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route(
            "/ui/snapshots/{id}",
            get(|Path(id): Path<String>| async move { html(page("snapshot"), Some(&id)) }),
        )
        .route(
            "/ui/assets/app.js",
            get(|| async { with_headers(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/ui/assets/app.css",
            get(|| async { with_headers(STYLE, "text/css; charset=utf-8") }),
        );
    for p in PAGES.iter().filter(|p| p.in_nav) {
        r = r.route(p.path, get(move || async move { html(p, None) }));
    }
    r
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_page_renders_with_its_nav_and_script() {
        for p in PAGES {
            let body = render(p, Some("20260101T000000Z-abc")).unwrap();
            assert!(body.contains("/ui/assets/app.js"), "{}", p.key);
            assert!(
                body.contains(&format!("data-page=\"{}\"", p.key)),
                "{}",
                p.key
            );
            for n in PAGES.iter().filter(|n| n.in_nav) {
                assert!(body.contains(&format!("href=\"{}\"", n.path)), "{}", p.key);
            }
            // Nothing inline: the CSP allows scripts and styles from files only.
            assert!(!body.contains("<script>"), "{}", p.key);
            assert!(!body.contains("style=\""), "{}", p.key);
        }
    }

    #[test]
    fn a_snapshot_id_in_the_url_is_escaped() {
        let body = render(page("snapshot"), Some("<script>alert(1)</script>")).unwrap();
        assert!(!body.contains("<script>alert"), "{body}");
        assert!(body.contains("&lt;script&gt;"), "{body}");
    }
}

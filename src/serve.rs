//! `mini-mirror serve`: the published trees over HTTP, with the rules the image's nginx
//! follows (`nginx/mini-mirror.conf`): Release files and indices never cached, pool and
//! by-hash files immutable, `HEAD` and byte ranges, `/healthz`, dot-files and anything
//! outside the output refused, one access-log line per request. For a first look, small
//! sites and tests; the image is the production server.

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;
use tower_http::services::ServeDir;

/// Files clients must revalidate every time: they name everything else.
fn is_index(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or("");
    let base = name
        .strip_suffix(".gz")
        .or_else(|| name.strip_suffix(".xz"))
        .or_else(|| name.strip_suffix(".bz2"))
        .or_else(|| name.strip_suffix(".lzma"))
        .or_else(|| name.strip_suffix(".zst"))
        .unwrap_or(name);
    matches!(name, "InRelease" | "Release" | "Release.gpg" | "Index")
        || matches!(base, "Packages" | "Sources")
        || base.starts_with("Translation-")
        || base.starts_with("Contents-")
}

/// The Cache-Control a path gets, as nginx/mini-mirror.conf sets it.
fn cache_control(path: &str) -> Option<&'static str> {
    if path.contains("/by-hash/") || path.contains("/pool/") {
        Some("public, max-age=31536000, immutable")
    } else if is_index(path) {
        Some("no-cache")
    } else {
        None
    }
}

async fn rules(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    // Dot-files (the tree's own state, staging directories) and `..` are never served.
    let refused = path.split('/').any(|part| part.starts_with('.'));
    let mut response = if refused {
        StatusCode::NOT_FOUND.into_response()
    } else {
        next.run(request).await
    };
    // (206 Partial Content is a success too.)
    if response.status().is_success()
        && let Some(value) = cache_control(&path)
    {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    }
    let bytes = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    // The access log: on stdout, one line a request (as the image's nginx writes it).
    println!(
        "{peer} \"{method} {path}\" {} {bytes} {:.3}",
        response.status().as_u16(),
        started.elapsed().as_secs_f64()
    );
    response
}

/// Serve `output` on `listen` until SIGINT or SIGTERM.
pub fn serve(output: PathBuf, listen: SocketAddr) -> Result<()> {
    let root = output
        .canonicalize()
        .with_context(|| format!("the output directory {}", output.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let app = Router::new()
            .route(
                "/healthz",
                axum::routing::get(|| async { ([(header::CACHE_CONTROL, "no-store")], "ok\n") }),
            )
            .fallback_service(ServeDir::new(&root).append_index_html_on_directories(false))
            .layer(axum::middleware::from_fn(rules));
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let bound = listener.local_addr()?;
        tracing::info!(
            "serving {} on http://{bound}/ (Ctrl-C stops)",
            root.display()
        );
        eprintln!("serving on http://{bound}/");
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stop_signal())
        .await
        .context("serving")?;
        tracing::info!("stopped");
        Ok(())
    })
}

async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("a SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_rules_follow_the_nginx_config() {
        assert_eq!(
            cache_control("/p/dists/bookworm/InRelease"),
            Some("no-cache")
        );
        assert_eq!(
            cache_control("/p/dists/bookworm/main/binary-amd64/Packages.xz"),
            Some("no-cache")
        );
        assert_eq!(
            cache_control("/p/dists/bookworm/main/binary-amd64/by-hash/SHA256/ab"),
            Some("public, max-age=31536000, immutable")
        );
        assert_eq!(
            cache_control("/p/pool/main/a/app/app_1_all.deb"),
            Some("public, max-age=31536000, immutable")
        );
        assert_eq!(cache_control("/p/mirror.lock"), None);
    }
}

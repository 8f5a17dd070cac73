//! `pocaduck-edge serve`: the proxy service on axum, over local or object-store datasets.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::body::Body as AxumBody;
use axum::extract::{Request, State};
use axum::response::Response;
use pocaduck_edge_proxy::cors::CorsPolicy;
use pocaduck_edge_proxy::{ApiError, Body, Limits, RangeStore, Service, ServiceConfig};

use crate::store::{ObjectRanges, SystemClock};

/// What to serve and where.
pub struct ServeOptions {
    /// Dataset locations (directories or URLs).
    pub data: Vec<String>,
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Origins allowed by CORS (`*` for any).
    pub cors_origins: Vec<String>,
    /// Request limits.
    pub limits: Limits,
}

/// Builds the service over the datasets (names must be distinct).
pub fn service(options: &ServeOptions) -> anyhow::Result<Arc<Service>> {
    let mut datasets: Vec<(String, Arc<dyn RangeStore>)> = Vec::new();
    for location in &options.data {
        let (name, store) = ObjectRanges::open(location)?;
        anyhow::ensure!(
            !datasets.iter().any(|(n, _)| *n == name),
            "two datasets are named {name:?}; give each a distinct last path segment"
        );
        datasets.push((name, Arc::new(store)));
    }
    Ok(Arc::new(Service::new(ServiceConfig {
        datasets,
        cors: CorsPolicy::new(options.cors_origins.clone()),
        limits: options.limits.clone(),
        clock: Arc::new(SystemClock::new()),
    })))
}

/// Serves until interrupted; prints `listening on http://ADDR` once the socket is bound.
pub async fn serve(options: ServeOptions) -> anyhow::Result<()> {
    let service = service(&options)?;
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .with_context(|| format!("binding {}", options.addr))?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}");
    tracing::info!(%addr, datasets = options.data.len(), "serving");
    let max_body = options.limits.max_body_bytes;
    let app = axum::Router::new()
        .fallback(
            move |State(service): State<Arc<Service>>, request: Request| {
                handle(service, request, max_body)
            },
        )
        .with_state(service);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// Translates between axum and the service: the body is read whole (up to the limit).
async fn handle(service: Arc<Service>, request: Request, max_body: usize) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, max_body).await {
        Ok(b) => b,
        Err(_) => {
            let e = ApiError::too_large(format!("the body is over the limit of {max_body} bytes"));
            return to_axum(pocaduck_edge_proxy::service::error_response(&e));
        }
    };
    let response = service
        .handle(http::Request::from_parts(parts, bytes))
        .await;
    to_axum(response)
}

fn to_axum(response: http::Response<Body>) -> Response {
    response.map(|body| match body {
        Body::Empty => AxumBody::empty(),
        Body::Full(bytes) => AxumBody::from(bytes),
        Body::Stream(stream) => AxumBody::from_stream(stream),
    })
}

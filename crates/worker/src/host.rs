//! The fetch handler: the service is built once per isolate from its bindings, then handed
//! every request. A configuration that cannot be read still answers: 503 `misconfigured`,
//! naming the setting to fix, with the details in the log.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use http_body_util::BodyExt;
use pocaduck_edge_proxy::cors::CorsPolicy;
use pocaduck_edge_proxy::Access;
use pocaduck_edge_proxy::{ApiError, Body, RangeStore, Service, ServiceConfig};
use pocaduck_edge_read::{HostBody, VastSource};
use worker::{Context, Env, HttpRequest};

use crate::background::Request;
use crate::cache::CachedRanges;
use crate::clock::DateClock;
use crate::config::{self, ConfigError, Location, Settings};
use crate::console::ConsoleLog;
use crate::pass_on;
use crate::stores::WorkerRanges;
use crate::upstream::SocketUpstream;

thread_local! {
    /// The isolate's service: its caches (manifests, footers, index pages, label lists)
    /// outlive a request.
    static SERVICE: RefCell<Option<Rc<Service>>> = const { RefCell::new(None) };
}

#[worker::event(fetch)]
async fn fetch(request: HttpRequest, env: Env, ctx: Context) -> worker::Result<web_sys::Response> {
    let origin = origin(request.uri());
    let service = SERVICE.with(|cell| {
        cell.borrow_mut()
            .get_or_insert_with(|| Rc::new(service(&env, &origin)))
            .clone()
    });
    // The runtime's body errors hold JS values; the service takes them as their message.
    let request = request.map(|body| BodyExt::map_err(body, |e| e.to_string()));
    let this = Request::new(&ctx);
    respond(this.run(Box::pin(service.handle(request))).await, &this)
}

/// The runtime's answer to `request`: the service's, with a body its upstream kept in the
/// runtime ([`HostBody`]) put in. The service's own body then carries none of those bytes: it
/// ends once they have been sent, and closes what the request opened upstream, so it is read
/// to its end beside the answer.
fn respond(response: http::Response<Body>, request: &Request) -> worker::Result<web_sys::Response> {
    let (mut parts, body) = response.into_parts();
    let Some(kept) = parts
        .extensions
        .remove::<HostBody>()
        .and_then(pass_on::take)
    else {
        return raw(http::Response::from_parts(parts, request.answer(body)));
    };
    request.wait_until(async move {
        let _ended = body.collect().await;
    });
    let head = raw(http::Response::from_parts(parts, Body::Empty))?;
    let init = web_sys::ResponseInit::new();
    init.set_status(head.status());
    init.set_headers(&head.headers());
    Ok(web_sys::Response::new_with_opt_readable_stream_and_init(
        Some(&kept),
        &init,
    )?)
}

/// `response` as the runtime's.
fn raw<B>(response: http::Response<B>) -> worker::Result<web_sys::Response>
where
    http::Response<B>: worker::IntoResponse,
{
    worker::IntoResponse::into_raw(response)
        .map_err(|e| worker::Error::RustError(e.into().to_string()))
}

/// `scheme://authority` of the Worker, as a request names it.
fn origin(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("https");
    let authority = uri.authority().map_or("localhost", |a| a.as_str());
    format!("{scheme}://{authority}")
}

/// The service `env` configures for the Worker at `origin`, or one refusing every request
/// when it cannot be read.
fn service(env: &Env, origin: &str) -> Service {
    let var = |name: &str| env.var(name).ok().map(|value| value.to_string());
    match config::settings(var).and_then(|settings| configured(env, origin, settings)) {
        Ok(service) => service,
        Err(e) => Service::new(ServiceConfig {
            datasets: Vec::new(),
            vast: Vec::new(),
            access: Access::open(CorsPolicy::new(vec!["*".to_string()])),
            limits: Default::default(),
            clock: Arc::new(DateClock),
            log: Arc::new(ConsoleLog),
        })
        .refusing(ApiError::misconfigured(e.setting, e.to_string())),
    }
}

/// The service over `settings`' datasets, their R2 buckets found among `env`'s bindings,
/// each cached under the Worker's `origin`.
fn configured(env: &Env, origin: &str, settings: Settings) -> Result<Service, ConfigError> {
    let clock = Arc::new(DateClock);
    let mut datasets: Vec<(String, Arc<dyn RangeStore>)> = Vec::new();
    for (name, location) in settings.datasets {
        let cache_scope = location.to_string();
        let store = match location {
            Location::R2 { binding, prefix } => {
                let bucket = env.bucket(&binding).map_err(|_| ConfigError {
                    setting: "DATASETS",
                    message: format!(
                        "no R2 bucket is bound as {binding} (an [[r2_buckets]] binding in wrangler.toml)"
                    ),
                })?;
                WorkerRanges::R2 { bucket, prefix }
            }
            Location::Url(base) => WorkerRanges::Url { base },
        };
        let store: Arc<dyn RangeStore> = Arc::new(CachedRanges::new(store, origin, &cache_scope));
        datasets.push((name, store));
    }
    let vast: Vec<VastSource> = settings
        .vast
        .map(|v| {
            let upstream = Arc::new(SocketUpstream::new(v.read_timeout));
            VastSource::new(v.name, v.config, upstream, clock.clone())
                .with_labels_ttl_secs(v.labels_ttl_secs)
        })
        .into_iter()
        .collect();
    let served: Vec<&str> = datasets
        .iter()
        .map(|(n, _)| n.as_str())
        .chain(vast.iter().map(|v| v.name.as_str()))
        .collect();
    let access = match settings.access {
        Some(config) => Access::guarded(config, &served).map_err(|e| ConfigError {
            setting: "ACCESS",
            message: e.to_string(),
        })?,
        None => Access::open(CorsPolicy::new(settings.cors_origins)),
    };
    Ok(Service::new(ServiceConfig {
        datasets,
        vast,
        access,
        limits: settings.limits,
        clock,
        log: Arc::new(ConsoleLog),
    }))
}

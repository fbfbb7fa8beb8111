//! Every endpoint, gathered into one router whose OpenAPI document is
//! generated from the handlers' annotations (utoipa-axum), so that the
//! document and the routes cannot drift apart.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::state::SharedState;

pub mod admin;
pub mod datasets;
pub mod health;
pub mod identity;
pub mod metrics;
pub mod ml;
pub mod products;
pub mod purge;
pub mod repush;
pub mod resources;
pub mod search;
pub mod sql;
pub mod warehouse;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "lakehouse API",
        description = "API 1 (products) and API 2 (the data lake and the warehouse). \
            Get a token with POST /api/token, then send it as `Authorization: Bearer <token>`. \
            Errors are {\"error\": {\"code\", \"message\", \"parameter\"?}}."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "service", description = "Health, metrics and documentation"),
        (name = "identity", description = "Tokens and users"),
        (name = "permissions", description = "Grants on lake/STREAM, warehouse/table, products and admin"),
        (name = "products", description = "API 1: the product catalogue"),
        (name = "lake", description = "API 2: datasets of the data lake"),
        (name = "warehouse", description = "API 2: tables of the warehouse"),
        (name = "metrics", description = "API 2: business metrics over the lake"),
        (name = "ml", description = "API 2: models trained on the lake, and their predictions"),
        (name = "repush", description = "API 2: records of the raw lake sent again through the pipeline, with the proof it processed them"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every endpoint answers 429 to a caller over its rate (the rate limit is
/// a layer in front of all of them, so it is documented here once).
struct RateLimited;

impl Modify for RateLimited {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let response = ResponseBuilder::new()
            .description("Too many requests for this token (or address); slow down")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                operation
                    .responses
                    .responses
                    .entry("429".to_string())
                    .or_insert_with(|| response.clone().into());
            }
        }
    }
}

/// The endpoints and their OpenAPI document.
pub fn api() -> (Router<SharedState>, utoipa::openapi::OpenApi) {
    let router = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::health))
        .routes(routes!(health::prometheus))
        .routes(routes!(identity::create_token, identity::delete_token))
        .routes(routes!(identity::create_user))
        .routes(routes!(identity::revoke_user_tokens))
        .routes(routes!(
            admin::list_permissions,
            admin::grant,
            admin::revoke
        ))
        .routes(routes!(admin::audit))
        .routes(routes!(products::list, products::create))
        .routes(routes!(products::most_expensive))
        .routes(routes!(
            products::get_one,
            products::update,
            products::remove
        ))
        .routes(routes!(resources::resources))
        .routes(routes!(datasets::page))
        .routes(routes!(datasets::versions))
        .routes(routes!(warehouse::page))
        .routes(routes!(metrics::spent_recently))
        .routes(routes!(metrics::spent_per_user_type))
        .routes(routes!(metrics::top_products))
        .routes(routes!(sql::query))
        .routes(routes!(search::search))
        .routes(routes!(ml::train))
        .routes(routes!(ml::job))
        .routes(routes!(ml::models))
        .routes(routes!(ml::predict))
        .routes(routes!(repush::transaction))
        .routes(routes!(repush::dataset))
        .routes(routes!(repush::report))
        .routes(routes!(purge::run))
        .routes(routes!(purge::runs));
    let (router, mut openapi) = router.split_for_parts();
    // After the routes joined the document: it documents theirs.
    RateLimited.modify(&mut openapi);
    (router, openapi)
}

/// The whole server: endpoints, `/openapi.json`, `/docs`, and the layers
/// every request goes through.
pub fn router(state: SharedState) -> Router {
    let (endpoints, openapi) = api();
    let openapi = Arc::new(openapi);
    let settings = &state.settings;
    let cors = if settings.cors_origins.is_empty() {
        None
    } else {
        let origins: Vec<HeaderValue> = settings
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        Some(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT]),
        )
    };
    let router = endpoints
        .route(
            "/openapi.json",
            get(move || {
                let openapi = openapi.clone();
                async move { Json(openapi.as_ref().clone()) }
            }),
        )
        .fallback(|| async { ApiError::not_found("no such endpoint; see /docs") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(state.clone())
        .merge(crate::docs::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::middleware::pipeline,
        ));
    let router = match cors {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router
        .layer(CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            state.settings.request_timeout + Duration::from_millis(500),
        ))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("a request handler panicked").into_response()
        }))
}

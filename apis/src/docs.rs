//! `GET /docs`: Swagger UI over `/openapi.json`, its script and style
//! served from inside the binary (the `swagger-ui-dist` crate), so the
//! page works with no network.

use axum::Router;
use swagger_ui_dist::{ApiDefinition, OpenApiSource};

pub fn routes() -> Router {
    swagger_ui_dist::generate_routes(ApiDefinition {
        uri_prefix: "/docs",
        api_definition: OpenApiSource::Uri("/openapi.json"),
        title: Some("lakehouse API"),
    })
}

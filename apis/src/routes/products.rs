//! API 1: the product catalogue (`/api/v1/products`), three per page, each
//! call checked against its right on `products` (view, add, update, delete).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json_body::ApiJson;
use crate::permissions::{Permission, Resource};
use crate::query_params::{positive, ApiQuery};
use crate::state::SharedState;

pub const PAGE_SIZE: u64 = 3;
/// The catalogue's schema and seed, applied at every start.
pub const PRODUCTS_SQL: &str = include_str!("../../sql/products.sql");
const MAX_PRICE: f64 = 9_999_999_999.99;

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct Product {
    pub id: i64,
    pub name: String,
    /// Two decimals.
    pub price: f64,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductInput {
    /// 1 to 200 characters.
    pub name: String,
    /// At least 0, at most two decimals.
    pub price: f64,
    /// At most 2000 characters.
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductPage {
    pub page: u64,
    pub page_size: u64,
    pub total: i64,
    pub products: Vec<Product>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProductQuery {
    /// Page number, from 1 (three products per page, by id).
    #[param(value_type = Option<u64>, minimum = 1)]
    pub page: Option<String>,
}

const COLUMNS: &str = "id, name, price::float8 AS price, description, created_at, updated_at";

fn check_input(input: &ProductInput) -> ApiResult<()> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::bad_parameter(
            "name",
            "name must have 1 to 200 characters",
        ));
    }
    if input.description.chars().count() > 2000 {
        return Err(ApiError::bad_parameter(
            "description",
            "description is over 2000 characters",
        ));
    }
    let cents = input.price * 100.0;
    if !input.price.is_finite() || input.price < 0.0 || input.price > MAX_PRICE {
        return Err(ApiError::bad_parameter(
            "price",
            "price must be a number from 0 to 9999999999.99",
        ));
    }
    if (cents - cents.round()).abs() > 1e-6 * cents.abs().max(1.0) {
        return Err(ApiError::bad_parameter(
            "price",
            "price has more than two decimals",
        ));
    }
    Ok(())
}

fn id_parameter(text: &str) -> ApiResult<i64> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            ApiError::bad_parameter(
                "id",
                format!("id must be a positive whole number, got {text:?}"),
            )
        })
}

async fn fetch(pool: &PgPool, id: i64) -> ApiResult<Product> {
    let row: Option<Product> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM products WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?;
    row.ok_or_else(|| ApiError::not_found(format!("there is no product {id}")))
}

fn require(caller: &Caller, permission: Permission) -> ApiResult<()> {
    caller.grants.require(&Resource::products(), permission)
}

/// A page of three products, by id, with the total.
#[utoipa::path(get, path = "/api/v1/products", tag = "products", security(("bearer" = [])),
    params(ProductQuery),
    responses(
        (status = 200, body = ProductPage),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<SharedState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ProductQuery>,
) -> ApiResult<Json<ProductPage>> {
    require(&caller, Permission::View)?;
    let page = positive("page", query.page.as_deref(), 1, 100_000_000)?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM products")
        .fetch_one(&state.pool)
        .await?;
    let rows: Vec<Product> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM products ORDER BY id LIMIT $1 OFFSET $2"
    ))
    .bind(PAGE_SIZE as i64)
    .bind(((page - 1) * PAGE_SIZE) as i64)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(ProductPage {
        page,
        page_size: PAGE_SIZE,
        total,
        products: rows,
    }))
}

/// The most expensive product (the oldest of equals).
#[utoipa::path(get, path = "/api/v1/products/most-expensive", tag = "products",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Product),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "The catalogue is empty", body = ErrorBody)))]
pub async fn most_expensive(
    State(state): State<SharedState>,
    caller: Caller,
) -> ApiResult<Json<Product>> {
    require(&caller, Permission::View)?;
    let row: Option<Product> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM products ORDER BY price DESC, id LIMIT 1"
    ))
    .fetch_optional(&state.pool)
    .await?;
    row.map(Json)
        .ok_or_else(|| ApiError::not_found("the catalogue is empty"))
}

/// Adds a product.
#[utoipa::path(post, path = "/api/v1/products", tag = "products", security(("bearer" = [])),
    request_body = ProductInput,
    responses(
        (status = 201, body = Product),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn create(
    State(state): State<SharedState>,
    caller: Caller,
    ApiJson(input): ApiJson<ProductInput>,
) -> ApiResult<(StatusCode, Json<Product>)> {
    require(&caller, Permission::Add)?;
    check_input(&input)?;
    let row: Product = sqlx::query_as(&format!(
        "INSERT INTO products (name, price, description) VALUES ($1, $2::numeric(12,2), $3)
         RETURNING {COLUMNS}"
    ))
    .bind(input.name.trim())
    .bind(input.price)
    .bind(&input.description)
    .fetch_one(&state.pool)
    .await?;
    Ok((StatusCode::CREATED, Json(row)))
}

/// One product.
#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "products", security(("bearer" = [])),
    params(("id" = i64, Path, minimum = 1)),
    responses(
        (status = 200, body = Product),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_one(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Product>> {
    require(&caller, Permission::View)?;
    Ok(Json(fetch(&state.pool, id_parameter(&id)?).await?))
}

/// Replaces a product's name, price and description.
#[utoipa::path(put, path = "/api/v1/products/{id}", tag = "products", security(("bearer" = [])),
    params(("id" = i64, Path, minimum = 1)),
    request_body = ProductInput,
    responses(
        (status = 200, body = Product),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ProductInput>,
) -> ApiResult<Json<Product>> {
    require(&caller, Permission::Update)?;
    let id = id_parameter(&id)?;
    check_input(&input)?;
    let row: Option<Product> = sqlx::query_as(&format!(
        "UPDATE products SET name = $2, price = $3::numeric(12,2), description = $4, updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(input.name.trim())
    .bind(input.price)
    .bind(&input.description)
    .fetch_optional(&state.pool)
    .await?;
    row.map(Json)
        .ok_or_else(|| ApiError::not_found(format!("there is no product {id}")))
}

/// Deletes a product.
#[utoipa::path(delete, path = "/api/v1/products/{id}", tag = "products", security(("bearer" = [])),
    params(("id" = i64, Path, minimum = 1)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn remove(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    require(&caller, Permission::Delete)?;
    let id = id_parameter(&id)?;
    let deleted = sqlx::query("DELETE FROM products WHERE id = $1")
        .bind(id)
        .execute(&state.pool)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Err(ApiError::not_found(format!("there is no product {id}")));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, price: f64) -> ProductInput {
        ProductInput {
            name: name.into(),
            price,
            description: String::new(),
        }
    }

    #[test]
    fn validation_names_the_field() {
        let field = |i: ProductInput| check_input(&i).unwrap_err().parameter.unwrap();
        assert_eq!(field(input("", 1.0)), "name");
        assert_eq!(field(input("x", -1.0)), "price");
        assert_eq!(field(input("x", 1.234)), "price");
        assert_eq!(field(input("x", f64::NAN)), "price");
        assert!(check_input(&input("x", 19.99)).is_ok());
        assert!(check_input(&input("x", 1899.0)).is_ok());
        assert_eq!(
            id_parameter("abc").unwrap_err().parameter.as_deref(),
            Some("id")
        );
        assert_eq!(
            id_parameter("0").unwrap_err().parameter.as_deref(),
            Some("id")
        );
    }
}

//! JSON request bodies, with a 400 that names the field at fault (its path
//! in the document) instead of a generic rejection.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|_| ApiError::bad_parameter("body", "the request body could not be read"))?;
        parse(&bytes).map(ApiJson)
    }
}

pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::bad_parameter("body", "a JSON object is required"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        let named = |marker: &str| {
            let start = message.find(marker)? + marker.len();
            let end = start + message[start..].find('`')?;
            Some(message[start..end].to_string())
        };
        // The path ends at the field at fault, except for a missing field,
        // whose path is its parent's.
        let field = match (path.as_str(), named("missing field `")) {
            (".", Some(missing)) => missing,
            (".", None) => "body".to_string(),
            (parent, Some(missing)) => format!("{parent}.{missing}"),
            (path, None) => path.to_string(),
        };
        ApiError::bad_parameter(&field, message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Product {
        name: String,
        price: f64,
    }

    #[test]
    fn the_field_at_fault_is_named() {
        let field = |body: &str| {
            parse::<Product>(body.as_bytes())
                .unwrap_err()
                .parameter
                .unwrap()
        };
        assert_eq!(field(r#"{"name":"x","price":"high"}"#), "price");
        assert_eq!(field(r#"{"name":"x"}"#), "price");
        assert_eq!(field(r#"{"name":"x","price":1,"colour":2}"#), "colour");
        assert_eq!(field("not json"), "body");
        assert_eq!(field(""), "body");
        assert!(parse::<Product>(br#"{"name":"x","price":1.5}"#).is_ok());
    }
}

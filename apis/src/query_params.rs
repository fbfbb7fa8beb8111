//! Query strings into typed parameter structs, with a 400 that names the
//! parameter at fault (an unknown or repeated one) instead of a generic
//! rejection. The structs keep every value as text; each endpoint checks
//! and converts its values itself so that errors name the parameter too.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse(parts.uri.query().unwrap_or("")).map(ApiQuery)
    }
}

pub fn parse<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    serde_urlencoded::from_str(query).map_err(|e| {
        let message = e.to_string();
        let named = |marker: &str| {
            let start = message.find(marker)? + marker.len();
            let end = start + message[start..].find('`')?;
            Some(message[start..end].to_string())
        };
        if let Some(name) = named("unknown field `") {
            let expected = message
                .split_once("expected ")
                .map(|(_, rest)| format!("; expected {rest}"))
                .unwrap_or_default();
            ApiError::bad_parameter(&name, format!("unknown parameter {name:?}{expected}"))
        } else if let Some(name) = named("duplicate field `") {
            ApiError::bad_parameter(
                &name,
                format!("parameter {name:?} is given more than once; give several values comma-separated"),
            )
        } else {
            ApiError::bad_parameter("query", format!("malformed query string: {message}"))
        }
    })
}

/// A positive integer parameter within `1..=max`.
pub fn positive(name: &str, value: Option<&str>, default: u64, max: u64) -> Result<u64, ApiError> {
    let Some(text) = value else {
        return Ok(default);
    };
    match text.parse::<u64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::bad_parameter(
            name,
            format!("{name} must be a whole number from 1 to {max}, got {text:?}"),
        )),
    }
}

/// A `YYYY-MM-DD` date parameter.
pub fn date(name: &str, value: Option<&str>) -> Result<Option<chrono::NaiveDate>, ApiError> {
    value
        .map(|text| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
                ApiError::bad_parameter(
                    name,
                    format!("{name} must be a date YYYY-MM-DD, got {text:?}"),
                )
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Q {
        page: Option<String>,
        status: Option<String>,
    }

    #[test]
    fn unknown_and_repeated_parameters_are_named() {
        let e = parse::<Q>("page=1&colour=red").unwrap_err();
        assert_eq!(e.parameter.as_deref(), Some("colour"));
        let e = parse::<Q>("status=a&status=b").unwrap_err();
        assert_eq!(e.parameter.as_deref(), Some("status"));
        assert!(parse::<Q>("page=2&status=a,b").is_ok());
    }

    #[test]
    fn numbers_and_dates_are_checked() {
        assert_eq!(positive("page", None, 1, 10).unwrap(), 1);
        assert_eq!(positive("page", Some("3"), 1, 10).unwrap(), 3);
        for bad in ["0", "-1", "x", "11", "1.5"] {
            assert_eq!(
                positive("page", Some(bad), 1, 10)
                    .unwrap_err()
                    .parameter
                    .as_deref(),
                Some("page")
            );
        }
        assert!(date("since", Some("2026-12-01")).unwrap().is_some());
        assert!(date("since", Some("2026-13-45")).is_err());
    }
}

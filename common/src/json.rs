//! JSON decoding on the record path. sonic-rs drives the same serde visitors
//! as serde_json, about 20% faster on transaction-sized records
//! (BENCHMARKS.md); its messages are cut to one line here.

/// Decodes `bytes` into `T`, borrowing text from them where it holds no escapes.
pub fn from_slice<'de, T: serde::Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, String> {
    sonic_rs::from_slice(bytes).map_err(|e| message(&e))
}

/// The parser's message without the excerpt of the input it adds below it:
/// whoever reports the error holds the whole value anyway.
pub fn message(error: &sonic_rs::Error) -> String {
    let message = error.to_string();
    match message.split_once('\n') {
        Some((first, _)) => first.to_string(),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_one_line_with_their_position() {
        let error =
            from_slice::<std::collections::HashMap<String, String>>(br#"{"id": 7}"#).unwrap_err();
        assert_eq!(
            error,
            "invalid type: integer `7`, expected a string at line 1 column 8"
        );
        let error = from_slice::<serde::de::IgnoredAny>(br#"{"id":"x"} {"#).unwrap_err();
        assert!(!error.contains('\n'), "{error}");
        assert!(error.contains("trailing characters"), "{error}");
    }
}

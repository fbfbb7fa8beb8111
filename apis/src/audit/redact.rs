//! What of a request may be written to `access_log`: bodies and query
//! strings with every secret replaced.

use serde_json::Value;

/// Longest body text kept in an entry.
pub const MAX_LOGGED_BODY: usize = 4096;
const REDACTED: &str = "[redacted]";

/// Keys whose values are secrets, in any case and with any `_`/`-` spelling.
fn is_secret_key(key: &str) -> bool {
    let key: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    ["password", "token", "secret", "authorization", "apikey"]
        .iter()
        .any(|s| key.contains(s))
}

fn redact_value(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if is_secret_key(key) {
                    *v = Value::String(REDACTED.to_string());
                } else {
                    redact_value(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        _ => {}
    }
}

/// The body as logged: JSON with secrets replaced; anything that is not
/// JSON is logged only by its size, since it cannot be searched for secrets.
pub fn body(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() {
        return None;
    }
    let text = match serde_json::from_slice::<Value>(bytes) {
        Ok(mut value) => {
            redact_value(&mut value);
            value.to_string()
        }
        Err(_) => format!("[{} bytes, not JSON]", bytes.len()),
    };
    Some(truncate(text))
}

/// The query string as logged, with secret parameters' values replaced.
pub fn query(query: Option<&str>) -> Option<String> {
    let query = query.filter(|q| !q.is_empty())?;
    let redacted: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if is_secret_key(key) => format!("{key}={REDACTED}"),
            _ => pair.to_string(),
        })
        .collect();
    Some(truncate(redacted.join("&")))
}

fn truncate(mut text: String) -> String {
    if text.len() > MAX_LOGGED_BODY {
        let mut cut = MAX_LOGGED_BODY;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_reach_the_log() {
        let logged = body(br#"{"username":"ann","password":"hunter2hunter2","nested":[{"Access-Token":"lh_abc"}],"price":3}"#).unwrap();
        assert!(
            !logged.contains("hunter2") && !logged.contains("lh_abc"),
            "{logged}"
        );
        assert!(logged.contains("\"username\":\"ann\"") && logged.contains("\"price\":3"));
        let q = query(Some("page=2&access_token=lh_xyz&x=1")).unwrap();
        assert_eq!(q, "page=2&access_token=[redacted]&x=1");
        assert_eq!(body(b"password=hunter2").unwrap(), "[16 bytes, not JSON]");
        assert_eq!(body(b""), None);
    }

    #[test]
    fn long_bodies_are_cut_on_a_character_boundary() {
        let long = format!("{{\"d\":\"{}\"}}", "é".repeat(5000));
        let logged = body(long.as_bytes()).unwrap();
        assert!(logged.len() <= MAX_LOGGED_BODY + 3);
    }
}

//! A re-sent record is the original message with fresh times: `timestamp`
//! and `timestamp_of_reception_log` say when it was sent again, in the
//! formats the producer writes; every other field is as received.

use chrono::{DateTime, Utc};
use lakehouse::transaction::{EVENT_TIME_FORMAT, RECEPTION_TIME_FORMAT};
use serde_json::Value;

pub const EVENT_TIME_FIELD: &str = "timestamp";
pub const RECEPTION_TIME_FIELD: &str = "timestamp_of_reception_log";

/// The message to send again, or why it cannot be (not a JSON object).
pub fn with_fresh_times(raw_json: &str, now: DateTime<Utc>) -> Result<Vec<u8>, String> {
    let mut value: Value =
        serde_json::from_str(raw_json).map_err(|e| format!("raw_json is not JSON: {e}"))?;
    let object = value
        .as_object_mut()
        .ok_or("raw_json is not a JSON object")?;
    object.insert(
        EVENT_TIME_FIELD.into(),
        Value::String(now.format(EVENT_TIME_FORMAT).to_string()),
    );
    object.insert(
        RECEPTION_TIME_FIELD.into(),
        Value::String(now.format(RECEPTION_TIME_FORMAT).to_string()),
    );
    serde_json::to_vec(&value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn only_the_two_times_change() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 9, 5, 7).unwrap();
        let original = r#"{"transaction_id":"TXN-1","timestamp":"2020-01-01T00:00:00.000000Z","amount":12.5,"location":{"city":"Lyon"},"timestamp_of_reception_log":"01/01/2020 00:00:00"}"#;
        let sent: Value =
            serde_json::from_slice(&with_fresh_times(original, now).unwrap()).unwrap();
        let mut expected: Value = serde_json::from_str(original).unwrap();
        expected["timestamp"] = "2026-12-01T09:05:07.000000Z".into();
        expected["timestamp_of_reception_log"] = "01/12/2026 09:05:07".into();
        assert_eq!(sent, expected);
    }

    #[test]
    fn missing_times_are_added_and_non_objects_refused() {
        let now = Utc::now();
        let sent: Value =
            serde_json::from_slice(&with_fresh_times(r#"{"a":1}"#, now).unwrap()).unwrap();
        assert!(sent["timestamp"].is_string() && sent["timestamp_of_reception_log"].is_string());
        assert!(with_fresh_times("[1]", now)
            .unwrap_err()
            .contains("not a JSON object"));
        assert!(with_fresh_times("{", now).unwrap_err().contains("not JSON"));
    }
}

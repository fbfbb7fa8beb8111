//! The transaction message carried by `transaction_log` (SYSTEM.md section 2)
//! and the value domains of its fields.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

pub const CURRENCIES: [&str; 6] = ["USD", "EUR", "GBP", "CAD", "JPY", "AUD"];
pub const TRANSACTION_TYPES: [&str; 4] = ["purchase", "refund", "payment", "withdrawal"];
pub const STATUSES: [&str; 5] = ["completed", "pending", "failed", "processing", "cancelled"];
pub const PAYMENT_METHODS: [&str; 6] = [
    "credit_card",
    "paypal",
    "bank_transfer",
    "apple_pay",
    "google_pay",
    "cryptocurrency",
];
pub const PRODUCT_CATEGORIES: [&str; 5] =
    ["electronics", "clothing", "books", "home_goods", "food"];

/// Ten countries with five cities each.
pub const LOCATIONS: [(&str, [&str; 5]); 10] = [
    (
        "USA",
        ["New York", "Los Angeles", "Chicago", "Houston", "Phoenix"],
    ),
    (
        "Canada",
        ["Toronto", "Vancouver", "Montreal", "Calgary", "Ottawa"],
    ),
    (
        "UK",
        ["London", "Manchester", "Birmingham", "Glasgow", "Liverpool"],
    ),
    (
        "Germany",
        ["Berlin", "Munich", "Hamburg", "Frankfurt", "Cologne"],
    ),
    ("France", ["Paris", "Lyon", "Marseille", "Toulouse", "Nice"]),
    ("Japan", ["Tokyo", "Osaka", "Kyoto", "Yokohama", "Sapporo"]),
    (
        "Australia",
        ["Sydney", "Melbourne", "Brisbane", "Perth", "Adelaide"],
    ),
    (
        "Brazil",
        [
            "Sao Paulo",
            "Rio de Janeiro",
            "Brasilia",
            "Salvador",
            "Fortaleza",
        ],
    ),
    (
        "India",
        ["Mumbai", "Delhi", "Bangalore", "Chennai", "Kolkata"],
    ),
    (
        "China",
        ["Beijing", "Shanghai", "Guangzhou", "Shenzhen", "Chengdu"],
    ),
];

pub const FIRST_NAMES: [&str; 20] = [
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "William",
    "Elizabeth",
    "David",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
];
pub const LAST_NAMES: [&str; 20] = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
];
pub const STREET_NAMES: [&str; 10] = [
    "Main",
    "Oak",
    "Pine",
    "Maple",
    "Cedar",
    "Elm",
    "Washington",
    "Lake",
    "Hill",
    "Park",
];
pub const STREET_SUFFIXES: [&str; 5] = ["Street", "Avenue", "Road", "Boulevard", "Lane"];
pub const OPERATING_SYSTEMS: [&str; 5] = ["Windows", "macOS", "Linux", "iOS", "Android"];
pub const BROWSERS: [&str; 5] = ["Chrome", "Firefox", "Safari", "Edge", "Opera"];

pub const USER_ID_RANGE: std::ops::RangeInclusive<u32> = 1000..=9999;
pub const PRODUCT_ID_RANGE: std::ops::RangeInclusive<u32> = 100..=999;
/// Amounts in cents, 10.00 to 1000.00.
pub const AMOUNT_CENTS_RANGE: std::ops::RangeInclusive<u32> = 1_000..=100_000;
pub const QUANTITY_RANGE: std::ops::RangeInclusive<i32> = 1..=10;
pub const RATING_RANGE: std::ops::RangeInclusive<i32> = 1..=5;
pub const DISCOUNT_CODE_RANGE: std::ops::RangeInclusive<u32> = 0..=999;

/// Format of `timestamp_of_reception_log`.
pub const RECEPTION_TIME_FORMAT: &str = "%d/%m/%Y %H:%M:%S";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transaction {
    pub transaction_id: String,
    pub timestamp: String,
    pub user_id: String,
    pub user_name: String,
    pub product_id: String,
    pub amount: f64,
    pub currency: String,
    pub transaction_type: String,
    pub status: String,
    pub location: Location,
    pub payment_method: String,
    pub product_category: String,
    pub quantity: i32,
    pub shipping_address: ShippingAddress,
    pub device_info: DeviceInfo,
    pub customer_rating: Option<i32>,
    pub discount_code: Option<String>,
    pub tax_amount: f64,
    pub thread: i32,
    pub message_number: i64,
    pub timestamp_of_reception_log: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Location {
    pub city: String,
    pub country: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShippingAddress {
    pub street: String,
    pub zip: String,
    pub city: String,
    pub country: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceInfo {
    pub os: String,
    pub browser: String,
    pub ip_address: String,
}

/// A field whose value lies outside its domain.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("field {field}: {reason}")]
pub struct DomainViolation {
    pub field: &'static str,
    pub reason: String,
}

impl Transaction {
    /// Decodes a record's value strictly: JSON, every field present with its
    /// type and no unknown field, every value in its domain. The error is the
    /// reason a dead-letter entry carries.
    pub fn decode_strict(bytes: &[u8]) -> Result<Transaction, String> {
        let transaction: Transaction =
            crate::json::from_slice(bytes).map_err(|e| format!("not a transaction: {e}"))?;
        transaction.validate().map_err(|e| e.to_string())?;
        Ok(transaction)
    }

    /// What `decode_strict` checks, without building the transaction.
    pub fn check_strict(bytes: &[u8]) -> Result<(), String> {
        Self::read_strict(bytes).map(drop)
    }

    /// `decode_strict` with the text fields borrowed from `bytes` where they
    /// hold no escapes.
    pub fn read_strict(bytes: &[u8]) -> Result<TransactionRef<'_>, String> {
        let transaction: TransactionRef =
            crate::json::from_slice(bytes).map_err(|e| format!("not a transaction: {e}"))?;
        transaction.validate().map_err(|e| e.to_string())?;
        Ok(transaction)
    }

    /// Checks every field against SYSTEM.md section 2.
    pub fn validate(&self) -> Result<(), DomainViolation> {
        TransactionRef::from(self).validate()
    }
}

/// A transaction whose text fields borrow from where they were read; it
/// serializes as the transaction's JSON object.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TransactionRef<'a> {
    #[serde(borrow)]
    transaction_id: Cow<'a, str>,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(borrow)]
    user_id: Cow<'a, str>,
    #[serde(borrow)]
    user_name: Cow<'a, str>,
    #[serde(borrow)]
    product_id: Cow<'a, str>,
    amount: f64,
    #[serde(borrow)]
    currency: Cow<'a, str>,
    #[serde(borrow)]
    transaction_type: Cow<'a, str>,
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(borrow)]
    location: LocationRef<'a>,
    #[serde(borrow)]
    payment_method: Cow<'a, str>,
    #[serde(borrow)]
    product_category: Cow<'a, str>,
    quantity: i32,
    #[serde(borrow)]
    shipping_address: ShippingAddressRef<'a>,
    #[serde(borrow)]
    device_info: DeviceInfoRef<'a>,
    customer_rating: Option<i32>,
    #[serde(borrow)]
    discount_code: Option<Cow<'a, str>>,
    tax_amount: f64,
    thread: i32,
    message_number: i64,
    #[serde(borrow)]
    timestamp_of_reception_log: Cow<'a, str>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct LocationRef<'a> {
    #[serde(borrow)]
    city: Cow<'a, str>,
    #[serde(borrow)]
    country: Cow<'a, str>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ShippingAddressRef<'a> {
    #[serde(borrow)]
    street: Cow<'a, str>,
    #[serde(borrow)]
    zip: Cow<'a, str>,
    #[serde(borrow)]
    city: Cow<'a, str>,
    #[serde(borrow)]
    country: Cow<'a, str>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct DeviceInfoRef<'a> {
    #[serde(borrow)]
    os: Cow<'a, str>,
    #[serde(borrow)]
    browser: Cow<'a, str>,
    #[serde(borrow)]
    ip_address: Cow<'a, str>,
}

impl<'a> From<&'a Transaction> for TransactionRef<'a> {
    fn from(t: &'a Transaction) -> Self {
        let text = |s: &'a String| Cow::Borrowed(s.as_str());
        TransactionRef {
            transaction_id: text(&t.transaction_id),
            timestamp: text(&t.timestamp),
            user_id: text(&t.user_id),
            user_name: text(&t.user_name),
            product_id: text(&t.product_id),
            amount: t.amount,
            currency: text(&t.currency),
            transaction_type: text(&t.transaction_type),
            status: text(&t.status),
            location: LocationRef {
                city: text(&t.location.city),
                country: text(&t.location.country),
            },
            payment_method: text(&t.payment_method),
            product_category: text(&t.product_category),
            quantity: t.quantity,
            shipping_address: ShippingAddressRef {
                street: text(&t.shipping_address.street),
                zip: text(&t.shipping_address.zip),
                city: text(&t.shipping_address.city),
                country: text(&t.shipping_address.country),
            },
            device_info: DeviceInfoRef {
                os: text(&t.device_info.os),
                browser: text(&t.device_info.browser),
                ip_address: text(&t.device_info.ip_address),
            },
            customer_rating: t.customer_rating,
            discount_code: t.discount_code.as_ref().map(text),
            tax_amount: t.tax_amount,
            thread: t.thread,
            message_number: t.message_number,
            timestamp_of_reception_log: text(&t.timestamp_of_reception_log),
        }
    }
}

impl TransactionRef<'_> {
    fn validate(&self) -> Result<(), DomainViolation> {
        let fail = |field: &'static str, reason: String| Err(DomainViolation { field, reason });
        let in_list = |v: &str, list: &[&str]| list.contains(&v);

        if !is_prefixed_hex(&self.transaction_id, "TXN-", 8) {
            return fail(
                "transaction_id",
                format!("{:?} is not TXN-<8 hex>", self.transaction_id),
            );
        }
        if chrono::DateTime::parse_from_rfc3339(&self.timestamp).is_err()
            || !self.timestamp.ends_with('Z')
        {
            return fail(
                "timestamp",
                format!("{:?} is not ISO-8601 UTC", self.timestamp),
            );
        }
        if !is_prefixed_number(&self.user_id, "USER-", &USER_ID_RANGE) {
            return fail(
                "user_id",
                format!("{:?} is not USER-1000..USER-9999", self.user_id),
            );
        }
        let all_names = FIRST_NAMES.iter().chain(LAST_NAMES.iter());
        if !all_names.clone().any(|n| *n == self.user_name) {
            return fail(
                "user_name",
                format!("{:?} is not a known name", self.user_name),
            );
        }
        if !is_prefixed_number(&self.product_id, "PROD-", &PRODUCT_ID_RANGE) {
            return fail(
                "product_id",
                format!("{:?} is not PROD-100..PROD-999", self.product_id),
            );
        }
        if !(10.0..=1000.0).contains(&self.amount) || !has_two_decimals(self.amount) {
            return fail("amount", format!("{} is not 10.00..1000.00", self.amount));
        }
        if !in_list(&self.currency, &CURRENCIES) {
            return fail("currency", self.currency.to_string());
        }
        if !in_list(&self.transaction_type, &TRANSACTION_TYPES) {
            return fail("transaction_type", self.transaction_type.to_string());
        }
        if !in_list(&self.status, &STATUSES) {
            return fail("status", self.status.to_string());
        }
        let Some((_, cities)) = LOCATIONS.iter().find(|(c, _)| *c == self.location.country) else {
            return fail("location.country", self.location.country.to_string());
        };
        if !cities.contains(&self.location.city.as_ref()) {
            return fail("location.city", self.location.city.to_string());
        }
        if !in_list(&self.payment_method, &PAYMENT_METHODS) {
            return fail("payment_method", self.payment_method.to_string());
        }
        if !in_list(&self.product_category, &PRODUCT_CATEGORIES) {
            return fail("product_category", self.product_category.to_string());
        }
        if !QUANTITY_RANGE.contains(&self.quantity) {
            return fail("quantity", self.quantity.to_string());
        }
        let addr = &self.shipping_address;
        if addr.zip.len() != 5 || !addr.zip.bytes().all(|b| b.is_ascii_digit()) {
            return fail("shipping_address.zip", addr.zip.to_string());
        }
        let Some((_, cities)) = LOCATIONS.iter().find(|(c, _)| *c == addr.country) else {
            return fail("shipping_address.country", addr.country.to_string());
        };
        if !cities.contains(&addr.city.as_ref()) {
            return fail("shipping_address.city", addr.city.to_string());
        }
        if addr.street.is_empty() {
            return fail("shipping_address.street", "empty".into());
        }
        let dev = &self.device_info;
        if !in_list(&dev.os, &OPERATING_SYSTEMS) {
            return fail("device_info.os", dev.os.to_string());
        }
        if !in_list(&dev.browser, &BROWSERS) {
            return fail("device_info.browser", dev.browser.to_string());
        }
        if dev.ip_address.parse::<std::net::Ipv4Addr>().is_err() {
            return fail("device_info.ip_address", dev.ip_address.to_string());
        }
        if let Some(r) = self.customer_rating {
            if !RATING_RANGE.contains(&r) {
                return fail("customer_rating", r.to_string());
            }
        }
        if let Some(code) = &self.discount_code {
            if !(code.len() == 12
                && code.starts_with("DISCOUNT-")
                && code[9..].bytes().all(|b| b.is_ascii_digit()))
            {
                return fail("discount_code", code.to_string());
            }
        }
        let tax_ok = if self.status == "completed" {
            let ratio = self.tax_amount / self.amount;
            has_two_decimals(self.tax_amount) && (0.0495..=0.2005).contains(&ratio)
        } else {
            self.tax_amount == 0.0
        };
        if !tax_ok {
            return fail(
                "tax_amount",
                format!(
                    "{} for amount {} and status {}",
                    self.tax_amount, self.amount, self.status
                ),
            );
        }
        if self.thread < 1 {
            return fail("thread", self.thread.to_string());
        }
        if self.message_number < 1 {
            return fail("message_number", self.message_number.to_string());
        }
        if !is_reception_time(&self.timestamp_of_reception_log) {
            return fail(
                "timestamp_of_reception_log",
                self.timestamp_of_reception_log.to_string(),
            );
        }
        Ok(())
    }
}

/// Parses like `NaiveDateTime::parse_from_str(value, RECEPTION_TIME_FORMAT)`,
/// with the format read once instead of on every call.
fn is_reception_time(value: &str) -> bool {
    use chrono::format::{parse, Item, Parsed, StrftimeItems};
    static ITEMS: std::sync::LazyLock<Vec<Item<'static>>> = std::sync::LazyLock::new(|| {
        StrftimeItems::new(RECEPTION_TIME_FORMAT)
            .parse()
            .expect("a valid format")
    });
    let mut parsed = Parsed::new();
    parse(&mut parsed, value, ITEMS.iter()).is_ok()
        && parsed.to_naive_datetime_with_offset(0).is_ok()
}

fn is_prefixed_hex(value: &str, prefix: &str, digits: usize) -> bool {
    value
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.len() == digits && rest.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_prefixed_number(value: &str, prefix: &str, range: &std::ops::RangeInclusive<u32>) -> bool {
    value
        .strip_prefix(prefix)
        .and_then(|rest| rest.parse::<u32>().ok())
        .is_some_and(|n| range.contains(&n))
}

fn has_two_decimals(value: f64) -> bool {
    let cents = value * 100.0;
    (cents - cents.round()).abs() < 1e-6
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Transaction {
        Transaction {
            transaction_id: "TXN-0A1B2C3D".into(),
            timestamp: "2026-11-01T10:00:00.000Z".into(),
            user_id: "USER-1234".into(),
            user_name: "Mary".into(),
            product_id: "PROD-555".into(),
            amount: 120.5,
            currency: "EUR".into(),
            transaction_type: "purchase".into(),
            status: "completed".into(),
            location: Location {
                city: "Paris".into(),
                country: "France".into(),
            },
            payment_method: "paypal".into(),
            product_category: "books".into(),
            quantity: 3,
            shipping_address: ShippingAddress {
                street: "12 Oak Street".into(),
                zip: "75001".into(),
                city: "Lyon".into(),
                country: "France".into(),
            },
            device_info: DeviceInfo {
                os: "Linux".into(),
                browser: "Firefox".into(),
                ip_address: "10.1.2.3".into(),
            },
            customer_rating: None,
            discount_code: Some("DISCOUNT-042".into()),
            tax_amount: 12.05,
            thread: 1,
            message_number: 1,
            timestamp_of_reception_log: "24/11/2026 07:47:40".into(),
        }
    }

    #[test]
    fn sample_is_valid() {
        sample().validate().unwrap();
    }

    #[test]
    fn strict_checks_read_escaped_text_and_refuse_what_decoding_refuses() {
        let json = serde_json::to_string(&sample()).unwrap();
        assert_eq!(
            Transaction::decode_strict(json.as_bytes()).unwrap(),
            sample()
        );
        let escaped = json.replace("\"Mary\"", "\"M\\u0061ry\"");
        assert_ne!(escaped, json);
        Transaction::check_strict(escaped.as_bytes()).unwrap();
        let refusals = [
            (
                json.replace("24/11/2026 07:47:40", "31/02/2026 07:47:40"),
                "timestamp_of_reception_log",
            ),
            (
                json.replace("24/11/2026 07:47:40", "2026-11-24 07:47:40"),
                "timestamp_of_reception_log",
            ),
            (
                json.replace("\"thread\":1", "\"thread\":1,\"extra\":2"),
                "unknown field `extra`",
            ),
            (json.replace("\"Mary\"", "\"M\\u0061rie\""), "user_name"),
            (
                json.replace("\"quantity\":3,", ""),
                "missing field `quantity`",
            ),
        ];
        for (bad, reason) in refusals {
            let error = Transaction::check_strict(bad.as_bytes()).unwrap_err();
            assert!(error.contains(reason), "{bad}: {error}");
            assert_eq!(
                Transaction::decode_strict(bad.as_bytes()).unwrap_err(),
                error
            );
        }
    }

    #[test]
    fn out_of_domain_values_are_caught() {
        let mut t = sample();
        t.amount = 1000.01;
        assert_eq!(t.validate().unwrap_err().field, "amount");
        let mut t = sample();
        t.location.city = "Tokyo".into();
        assert_eq!(t.validate().unwrap_err().field, "location.city");
        let mut t = sample();
        t.status = "pending".into();
        assert_eq!(t.validate().unwrap_err().field, "tax_amount");
        let mut t = sample();
        t.transaction_id = "TXN-XYZ".into();
        assert_eq!(t.validate().unwrap_err().field, "transaction_id");
    }

    #[test]
    fn nulls_round_trip_as_json_null() {
        let json = serde_json::to_value(sample()).unwrap();
        assert!(json["customer_rating"].is_null());
        assert_eq!(json["location"]["city"], "Paris");
    }
}

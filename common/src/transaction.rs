//! The transaction message carried by `transaction_log` (SYSTEM.md section 2)
//! and the values the classic producer emits.
//!
//! The value lists are the classic producer's
//! (`producer/kafka_producer_transaction.py` in the original project): our
//! producer reproduces them, spellings included. They describe one
//! producer, not a contract: a record of the right shape with other values is
//! data and lands. [`Transaction::validate`] tells whether a record keeps to
//! them, for data-quality counts and for the producer's own tests; nothing
//! refuses a record because of it.

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

/// Ten countries with five cities each, spelled as the classic producer does.
pub const LOCATIONS: [(&str, [&str; 5]); 10] = [
    (
        "USA",
        ["New York", "Los Angeles", "Chicago", "Houston", "Phoenix"],
    ),
    (
        "Canada",
        ["Toronto", "Montreal", "Vancouver", "Calgary", "Ottawa"],
    ),
    (
        "UK",
        ["London", "Birmingham", "Manchester", "Glasgow", "Liverpool"],
    ),
    (
        "Germany",
        ["Berlin", "Hamburg", "Munich", "Cologne", "Frankfurt"],
    ),
    ("France", ["Paris", "Marseille", "Lyon", "Toulouse", "Nice"]),
    ("Japan", ["Tokyo", "Osaka", "Kyoto", "Yokohama", "Nagoya"]),
    (
        "Australia",
        ["Sydney", "Melbourne", "Brisbane", "Perth", "Adelaide"],
    ),
    (
        "Brazil",
        [
            "S\u{e3}o Paulo",
            "Rio de Janeiro",
            "Bras\u{ed}lia",
            "Salvador",
            "Fortaleza",
        ],
    ),
    (
        "India",
        ["Mumbai", "Delhi", "Bangalore", "Hyderabad", "Chennai"],
    ),
    (
        "China",
        ["Shanghai", "Beijing", "Guangzhou", "Shenzhen", "Hangzhou"],
    ),
];

/// The classic producer's one list of names (last names, then first names).
pub const NAMES: [&str; 98] = [
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
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Liam",
    "Olivia",
    "Noah",
    "Emma",
    "Oliver",
    "Ava",
    "Elijah",
    "Sophia",
    "William",
    "Isabella",
    "James",
    "Charlotte",
    "Benjamin",
    "Amelia",
    "Lucas",
    "Mia",
    "Henry",
    "Evelyn",
    "Alexander",
    "Abigail",
    "Daniel",
    "Harper",
    "Matthew",
    "Emily",
    "Joseph",
    "Elizabeth",
    "David",
    "Sofia",
    "Samuel",
    "Madison",
    "John",
    "Scarlett",
    "Robert",
    "Grace",
    "Michael",
    "Chloe",
    "Christopher",
    "Victoria",
    "Andrew",
    "Aria",
    "Joshua",
    "Lily",
    "Anthony",
    "Aubrey",
    "Logan",
    "Zoey",
    "Ethan",
    "Penelope",
];
pub const OPERATING_SYSTEMS: [&str; 5] = ["Windows", "MacOS", "Linux", "Android", "iOS"];
pub const BROWSERS: [&str; 4] = ["Chrome", "Firefox", "Safari", "Edge"];

/// Fields without which a record is not a transaction: the lake dead-letters
/// a `transaction_log` record that lacks one (or holds null in it). Every
/// other field may be absent or null, as in ksqlDB.
pub const REQUIRED_FIELDS: [&str; 6] = [
    "transaction_id",
    "timestamp",
    "user_id",
    "product_id",
    "amount",
    "status",
];

pub const USER_ID_RANGE: std::ops::RangeInclusive<u32> = 1000..=9999;
pub const PRODUCT_ID_RANGE: std::ops::RangeInclusive<u32> = 100..=999;
/// Amounts in cents, 10.00 to 1000.00.
pub const AMOUNT_CENTS_RANGE: std::ops::RangeInclusive<u32> = 1_000..=100_000;
pub const QUANTITY_RANGE: std::ops::RangeInclusive<i32> = 1..=10;
pub const RATING_RANGE: std::ops::RangeInclusive<i32> = 1..=5;
pub const DISCOUNT_CODE_RANGE: std::ops::RangeInclusive<u32> = 100..=999;
pub const ZIP_RANGE: std::ops::RangeInclusive<u32> = 10_000..=99_999;
pub const STREET_NUMBER_RANGE: std::ops::RangeInclusive<u32> = 100..=999;

/// Format of `timestamp`: Python's `isoformat()` of a naive time plus "Z",
/// as the classic producer writes it.
pub const EVENT_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

/// Format of `timestamp_of_reception_log`.
pub const RECEPTION_TIME_FORMAT: &str = "%d/%m/%Y %H:%M:%S";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
pub struct Location {
    pub city: String,
    pub country: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShippingAddress {
    pub street: String,
    pub zip: String,
    pub city: String,
    pub country: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Decodes a record's value by shape alone: JSON, every field of the
    /// struct with its type. Values are not checked (see [`Transaction::validate`]).
    pub fn decode(bytes: &[u8]) -> Result<Transaction, String> {
        crate::json::from_slice(bytes).map_err(|e| format!("not a transaction: {e}"))
    }

    /// Whether every field keeps to what the classic producer emits
    /// (SYSTEM.md section 2): the first field that does not, and why. A
    /// data-quality observation, never a reason to refuse a record.
    pub fn validate(&self) -> Result<(), DomainViolation> {
        let fail = |field: &'static str, reason: String| Err(DomainViolation { field, reason });
        let in_list = |v: &str, list: &[&str]| list.contains(&v);

        if !is_prefixed_lower_hex(&self.transaction_id, "TXN-", 8) {
            return fail(
                "transaction_id",
                format!("{:?} is not TXN-<8 lower-case hex>", self.transaction_id),
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
        if !in_list(&self.user_name, &NAMES) {
            return fail(
                "user_name",
                format!("{:?} is not in the name list", self.user_name),
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
            return fail("currency", self.currency.clone());
        }
        if !in_list(&self.transaction_type, &TRANSACTION_TYPES) {
            return fail("transaction_type", self.transaction_type.clone());
        }
        if !in_list(&self.status, &STATUSES) {
            return fail("status", self.status.clone());
        }
        let Some((_, cities)) = LOCATIONS.iter().find(|(c, _)| *c == self.location.country) else {
            return fail("location.country", self.location.country.clone());
        };
        if !cities.contains(&self.location.city.as_str()) {
            return fail("location.city", self.location.city.clone());
        }
        if !in_list(&self.payment_method, &PAYMENT_METHODS) {
            return fail("payment_method", self.payment_method.clone());
        }
        if !in_list(&self.product_category, &PRODUCT_CATEGORIES) {
            return fail("product_category", self.product_category.clone());
        }
        if !QUANTITY_RANGE.contains(&self.quantity) {
            return fail("quantity", self.quantity.to_string());
        }
        let addr = &self.shipping_address;
        if !addr
            .zip
            .parse::<u32>()
            .is_ok_and(|z| addr.zip.len() == 5 && ZIP_RANGE.contains(&z))
        {
            return fail("shipping_address.zip", addr.zip.clone());
        }
        if addr.city != self.location.city || addr.country != self.location.country {
            return fail(
                "shipping_address",
                format!("{}, {} is not the buyer's city", addr.city, addr.country),
            );
        }
        if addr.street.is_empty() {
            return fail("shipping_address.street", "empty".into());
        }
        let dev = &self.device_info;
        if !in_list(&dev.os, &OPERATING_SYSTEMS) {
            return fail("device_info.os", dev.os.clone());
        }
        if !in_list(&dev.browser, &BROWSERS) {
            return fail("device_info.browser", dev.browser.clone());
        }
        if dev.ip_address.parse::<std::net::Ipv4Addr>().is_err() {
            return fail("device_info.ip_address", dev.ip_address.clone());
        }
        if let Some(r) = self.customer_rating {
            if !RATING_RANGE.contains(&r) {
                return fail("customer_rating", r.to_string());
            }
        }
        if let Some(code) = &self.discount_code {
            let number = code.strip_prefix("DISCOUNT-").and_then(|n| n.parse().ok());
            if !number.is_some_and(|n: u32| DISCOUNT_CODE_RANGE.contains(&n)) {
                return fail("discount_code", code.clone());
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
        if self.thread < 0 {
            return fail("thread", self.thread.to_string());
        }
        if self.message_number < 0 {
            return fail("message_number", self.message_number.to_string());
        }
        if !is_reception_time(&self.timestamp_of_reception_log) {
            return fail(
                "timestamp_of_reception_log",
                self.timestamp_of_reception_log.clone(),
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

fn is_prefixed_lower_hex(value: &str, prefix: &str, digits: usize) -> bool {
    value.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == digits
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
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
            transaction_id: "TXN-0a1b2c3d".into(),
            timestamp: "2026-11-01T10:00:00.123456Z".into(),
            user_id: "USER-1234".into(),
            user_name: "Wright".into(),
            product_id: "PROD-555".into(),
            amount: 120.5,
            currency: "EUR".into(),
            transaction_type: "purchase".into(),
            status: "completed".into(),
            location: Location {
                city: "Nagoya".into(),
                country: "Japan".into(),
            },
            payment_method: "paypal".into(),
            product_category: "books".into(),
            quantity: 3,
            shipping_address: ShippingAddress {
                street: "123 Main St".into(),
                zip: "75001".into(),
                city: "Nagoya".into(),
                country: "Japan".into(),
            },
            device_info: DeviceInfo {
                os: "MacOS".into(),
                browser: "Edge".into(),
                ip_address: "10.1.2.3".into(),
            },
            customer_rating: None,
            discount_code: Some("DISCOUNT-142".into()),
            tax_amount: 12.05,
            thread: 0,
            message_number: 0,
            timestamp_of_reception_log: "24/11/2026 07:47:40".into(),
        }
    }

    #[test]
    fn the_classic_producers_spellings_keep_to_its_lists() {
        sample().validate().unwrap();
    }

    #[test]
    fn decoding_checks_shape_not_values() {
        let json = serde_json::to_string(&sample()).unwrap();
        assert_eq!(Transaction::decode(json.as_bytes()).unwrap(), sample());
        let other_values = json
            .replace("\"Wright\"", "\"Zanele\"")
            .replace("EUR", "CHF");
        Transaction::decode(other_values.as_bytes()).unwrap();
        let extra = json.replace("\"thread\":0", "\"thread\":0,\"extra\":2");
        Transaction::decode(extra.as_bytes()).unwrap();
        let missing = json.replace("\"quantity\":3,", "");
        assert!(Transaction::decode(missing.as_bytes())
            .unwrap_err()
            .contains("missing field `quantity`"));
    }

    #[test]
    fn values_off_the_classic_lists_are_observed() {
        let mut t = sample();
        t.amount = 1000.01;
        assert_eq!(t.validate().unwrap_err().field, "amount");
        let mut t = sample();
        t.location.city = "Paris".into();
        assert_eq!(t.validate().unwrap_err().field, "location.city");
        let mut t = sample();
        t.status = "pending".into();
        assert_eq!(t.validate().unwrap_err().field, "tax_amount");
        let mut t = sample();
        t.transaction_id = "TXN-0A1B2C3D".into();
        assert_eq!(t.validate().unwrap_err().field, "transaction_id");
        let mut t = sample();
        t.shipping_address.city = "Osaka".into();
        assert_eq!(t.validate().unwrap_err().field, "shipping_address");
        let mut t = sample();
        t.shipping_address.zip = "01234".into();
        assert_eq!(t.validate().unwrap_err().field, "shipping_address.zip");
    }

    #[test]
    fn nulls_round_trip_as_json_null() {
        let json = serde_json::to_value(sample()).unwrap();
        assert!(json["customer_rating"].is_null());
        assert_eq!(json["location"]["city"], "Nagoya");
    }
}

//! Garbage of the kinds real producers send, made on purpose (`--bad-ratio`)
//! so that every downstream component is exercised with it.

use lakehouse::transaction::Transaction;
use rand::Rng;
use serde_json::{json, Value};

/// How a record is damaged. The name travels in the record's
/// `x-lakehouse-malformed` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MalformedKind {
    /// Valid JSON cut short.
    TruncatedJson,
    /// Fields of the wrong JSON type (a string amount, a text quantity).
    WrongTypes,
    /// Required fields removed.
    MissingFields,
    /// A field far larger than any real value (a huge string or number).
    OversizedValue,
    /// Bytes that are not UTF-8 inside a string.
    NonUtf8,
    /// Valid JSON that is not an object.
    NotAnObject,
}

impl MalformedKind {
    pub const ALL: [MalformedKind; 6] = [
        MalformedKind::TruncatedJson,
        MalformedKind::WrongTypes,
        MalformedKind::MissingFields,
        MalformedKind::OversizedValue,
        MalformedKind::NonUtf8,
        MalformedKind::NotAnObject,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MalformedKind::TruncatedJson => "truncated_json",
            MalformedKind::WrongTypes => "wrong_types",
            MalformedKind::MissingFields => "missing_fields",
            MalformedKind::OversizedValue => "oversized_value",
            MalformedKind::NonUtf8 => "non_utf8",
            MalformedKind::NotAnObject => "not_an_object",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Size of the oversized string: far beyond any real field, yet under the
/// broker's default 1 MB message limit so that the record is delivered.
pub const OVERSIZED_STRING_BYTES: usize = 256 * 1024;

const REQUIRED_FIELDS: [&str; 6] = [
    "transaction_id",
    "amount",
    "timestamp",
    "user_id",
    "status",
    "product_id",
];

/// Damages `transaction` in the way `kind` says and returns the record's bytes.
pub fn damage<R: Rng>(transaction: &Transaction, kind: MalformedKind, rng: &mut R) -> Vec<u8> {
    let valid = serde_json::to_vec(transaction).expect("a transaction always serialises");
    match kind {
        MalformedKind::TruncatedJson => {
            let cut = rng.gen_range(1..valid.len() - 1);
            valid[..cut].to_vec()
        }
        MalformedKind::WrongTypes => {
            let mut value = to_value(transaction);
            match rng.gen_range(0..3) {
                0 => value["amount"] = json!(format!("{} EUR", transaction.amount)),
                1 => value["quantity"] = json!("three"),
                _ => value["location"] = json!("Paris, France"),
            }
            serde_json::to_vec(&value).expect("serialise")
        }
        MalformedKind::MissingFields => {
            let mut value = to_value(transaction);
            let object = value.as_object_mut().expect("a transaction is an object");
            let removed = rng.gen_range(1..=3);
            for _ in 0..removed {
                object.remove(REQUIRED_FIELDS[rng.gen_range(0..REQUIRED_FIELDS.len())]);
            }
            object.remove(REQUIRED_FIELDS[0]);
            serde_json::to_vec(&value).expect("serialise")
        }
        MalformedKind::OversizedValue => {
            let mut value = to_value(transaction);
            if rng.gen_bool(0.5) {
                value["user_name"] = json!("X".repeat(OVERSIZED_STRING_BYTES));
            } else {
                value["amount"] = json!(1.0e300);
                value["quantity"] = json!(9_007_199_254_740_993_u64);
            }
            serde_json::to_vec(&value).expect("serialise")
        }
        MalformedKind::NonUtf8 => {
            let needle = format!("\"{}\"", transaction.user_name);
            let mut bytes = valid;
            if let Some(at) = find(&bytes, needle.as_bytes()) {
                // Replace the name's first letter with a lone continuation byte and 0xFF.
                bytes.splice(at + 1..at + 2, [0xC3, 0x28, 0xFF]);
            }
            bytes
        }
        MalformedKind::NotAnObject => match rng.gen_range(0..2) {
            0 => serde_json::to_vec(&json!([transaction.transaction_id, transaction.amount]))
                .expect("serialise"),
            _ => transaction.amount.to_string().into_bytes(),
        },
    }
}

fn to_value(transaction: &Transaction) -> Value {
    serde_json::to_value(transaction).expect("a transaction always serialises")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::TransactionGenerator;
    use rand::SeedableRng;

    /// Every damaged record must fail a strict decode into a valid transaction.
    #[test]
    fn every_kind_breaks_a_strict_decoder() {
        let now = "2026-11-24T07:47:40Z".parse().unwrap();
        let mut generator = TransactionGenerator::new(3, 1, 30);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for _ in 0..300 {
            let t = generator.next_transaction(now);
            for kind in MalformedKind::ALL {
                let bytes = damage(&t, kind, &mut rng);
                let decoded = std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|s| serde_json::from_str::<Transaction>(s).ok())
                    .filter(|t| t.validate().is_ok());
                assert!(decoded.is_none(), "{kind:?} produced a valid record");
                assert!(bytes.len() < 1_000_000, "{kind:?} must stay deliverable");
            }
        }
    }

    #[test]
    fn non_utf8_is_really_not_utf8() {
        let now = "2026-11-24T07:47:40Z".parse().unwrap();
        let t = TransactionGenerator::new(1, 1, 0).next_transaction(now);
        let bytes = damage(
            &t,
            MalformedKind::NonUtf8,
            &mut rand_chacha::ChaCha8Rng::seed_from_u64(1),
        );
        assert!(std::str::from_utf8(&bytes).is_err());
    }

    #[test]
    fn kind_names_round_trip() {
        for kind in MalformedKind::ALL {
            assert_eq!(MalformedKind::from_name(kind.name()), Some(kind));
        }
    }
}

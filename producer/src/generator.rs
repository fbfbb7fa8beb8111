//! Deterministic generation of transaction messages.
//!
//! A generator is seeded from (seed, thread): the same seed and thread give
//! the same sequence of records. Only the time fields depend on the clock:
//! `timestamp` is `now` minus a back-dating offset drawn from the seeded
//! stream, and `timestamp_of_reception_log` is `now`.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use lakehouse::transaction::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Generates the transactions of one producer thread.
#[derive(Debug, Clone)]
pub struct TransactionGenerator {
    rng: ChaCha8Rng,
    seed: u64,
    thread: i32,
    next_message_number: i64,
    backdate_millis: i64,
}

impl TransactionGenerator {
    /// `thread` is the producer thread number written in each record
    /// (from 0, as the classic producer numbers them).
    pub fn new(seed: u64, thread: i32, backdate_days: u32) -> Self {
        assert!(thread >= 0, "thread numbers start at 0");
        let stream = splitmix64(seed ^ (thread as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        Self {
            rng: ChaCha8Rng::seed_from_u64(stream),
            seed,
            thread,
            next_message_number: 0,
            backdate_millis: i64::from(backdate_days) * 86_400_000,
        }
    }

    /// Access to the seeded random stream, for callers that derive more
    /// decisions (such as damaging a record) from the same seed.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// The next transaction, with time fields relative to `now`.
    pub fn next_transaction(&mut self, now: DateTime<Utc>) -> Transaction {
        let message_number = self.next_message_number;
        self.next_message_number += 1;
        let transaction_number = self.transaction_number(message_number);
        let rng = &mut self.rng;

        let back = if self.backdate_millis > 0 {
            rng.gen_range(0..=self.backdate_millis)
        } else {
            0
        };
        let event_time = now - ChronoDuration::milliseconds(back);

        let amount_cents = rng.gen_range(AMOUNT_CENTS_RANGE);
        let status = pick(rng, &STATUSES);
        let tax_cents = if status == "completed" {
            let rate: f64 = rng.gen_range(0.05..=0.20);
            (f64::from(amount_cents) * rate).round()
        } else {
            0.0
        };
        let (country, cities) = LOCATIONS[rng.gen_range(0..LOCATIONS.len())];
        let city = pick(rng, &cities);
        let user_name = pick(rng, &NAMES);

        Transaction {
            transaction_id: format!("TXN-{transaction_number:08x}"),
            timestamp: event_time.format(EVENT_TIME_FORMAT).to_string(),
            user_id: format!("USER-{}", rng.gen_range(USER_ID_RANGE)),
            user_name: user_name.to_string(),
            product_id: format!("PROD-{}", rng.gen_range(PRODUCT_ID_RANGE)),
            amount: f64::from(amount_cents) / 100.0,
            currency: pick(rng, &CURRENCIES).to_string(),
            transaction_type: pick(rng, &TRANSACTION_TYPES).to_string(),
            status: status.to_string(),
            location: Location {
                city: city.to_string(),
                country: country.to_string(),
            },
            payment_method: pick(rng, &PAYMENT_METHODS).to_string(),
            product_category: pick(rng, &PRODUCT_CATEGORIES).to_string(),
            quantity: rng.gen_range(QUANTITY_RANGE),
            shipping_address: ShippingAddress {
                street: format!("{} Main St", rng.gen_range(STREET_NUMBER_RANGE)),
                zip: rng.gen_range(ZIP_RANGE).to_string(),
                // The buyer's own city, as the classic producer ships.
                city: city.to_string(),
                country: country.to_string(),
            },
            device_info: DeviceInfo {
                os: pick(rng, &OPERATING_SYSTEMS).to_string(),
                browser: pick(rng, &BROWSERS).to_string(),
                ip_address: format!(
                    "{}.{}.{}.{}",
                    rng.gen_range(1..=255),
                    rng.gen_range(1..=255),
                    rng.gen_range(1..=255),
                    rng.gen_range(1..=255)
                ),
            },
            customer_rating: rng.gen_bool(0.5).then(|| rng.gen_range(RATING_RANGE)),
            discount_code: rng
                .gen_bool(0.5)
                .then(|| format!("DISCOUNT-{}", rng.gen_range(DISCOUNT_CODE_RANGE))),
            tax_amount: tax_cents / 100.0,
            thread: self.thread,
            message_number,
            timestamp_of_reception_log: now.format(RECEPTION_TIME_FORMAT).to_string(),
        }
    }

    /// A 32-bit number unique per (thread, message number) within one seed:
    /// a bijective mix of `thread << 24 | message_number`, so ids never repeat
    /// in a run of up to 2^24 records per thread and 255 threads.
    fn transaction_number(&self, message_number: i64) -> u32 {
        let index = ((self.thread as u32 & 0xFF) << 24) | (message_number as u32 & 0x00FF_FFFF);
        permute32(index ^ (splitmix64(self.seed) as u32))
    }
}

fn pick<'a, R: Rng>(rng: &mut R, values: &[&'a str]) -> &'a str {
    values[rng.gen_range(0..values.len())]
}

/// A bijection on u32 (xor-shifts and multiplications by odd constants).
fn permute32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7FEB_352D);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846C_A68B);
    x ^= x >> 16;
    x
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn now() -> DateTime<Utc> {
        "2026-11-24T07:47:40Z".parse().unwrap()
    }

    #[test]
    fn every_field_stays_in_its_domain_over_many_seeds() {
        for seed in 0..200 {
            let mut generator = TransactionGenerator::new(seed, (seed % 4) as i32, 30);
            for _ in 0..200 {
                let t = generator.next_transaction(now());
                t.validate()
                    .unwrap_or_else(|e| panic!("seed {seed}: {e}: {t:?}"));
                let event: DateTime<Utc> = t.timestamp.parse().unwrap();
                assert!(event <= now() && now() - event <= ChronoDuration::days(30));
            }
        }
    }

    #[test]
    fn every_value_of_every_domain_occurs_with_plausible_frequencies() {
        let mut generator = TransactionGenerator::new(7, 1, 30);
        let records: Vec<_> = (0..20_000)
            .map(|_| generator.next_transaction(now()))
            .collect();
        let distinct = |f: &dyn Fn(&Transaction) -> String| -> HashSet<String> {
            records.iter().map(f).collect()
        };
        assert_eq!(distinct(&|t| t.currency.clone()).len(), CURRENCIES.len());
        assert_eq!(distinct(&|t| t.status.clone()).len(), STATUSES.len());
        assert_eq!(
            distinct(&|t| t.transaction_type.clone()).len(),
            TRANSACTION_TYPES.len()
        );
        assert_eq!(
            distinct(&|t| t.payment_method.clone()).len(),
            PAYMENT_METHODS.len()
        );
        assert_eq!(
            distinct(&|t| t.product_category.clone()).len(),
            PRODUCT_CATEGORIES.len()
        );
        assert_eq!(distinct(&|t| t.location.city.clone()).len(), 50);
        assert_eq!(distinct(&|t| t.user_name.clone()).len(), NAMES.len());
        assert_eq!(
            distinct(&|t| t.device_info.os.clone()).len(),
            OPERATING_SYSTEMS.len()
        );
        assert!(records
            .iter()
            .all(|t| t.shipping_address.city == t.location.city));
        assert_eq!(distinct(&|t| t.quantity.to_string()).len(), 10);
        let null_ratings = records
            .iter()
            .filter(|t| t.customer_rating.is_none())
            .count();
        let null_codes = records.iter().filter(|t| t.discount_code.is_none()).count();
        for nulls in [null_ratings, null_codes] {
            let ratio = nulls as f64 / records.len() as f64;
            assert!(
                (0.45..0.55).contains(&ratio),
                "about half null, got {ratio}"
            );
        }
        let mut per_status: HashMap<&str, usize> = HashMap::new();
        for t in &records {
            *per_status.entry(t.status.as_str()).or_default() += 1;
            if t.status != "completed" {
                assert_eq!(t.tax_amount, 0.0);
            }
        }
        assert!(per_status.values().all(|n| *n > 3_000), "{per_status:?}");
        let amounts: Vec<f64> = records.iter().map(|t| t.amount).collect();
        assert!(amounts.iter().any(|a| *a < 20.0) && amounts.iter().any(|a| *a > 990.0));
    }

    #[test]
    fn the_same_seed_gives_the_same_records() {
        let a: Vec<_> = {
            let mut g = TransactionGenerator::new(42, 2, 30);
            (0..100).map(|_| g.next_transaction(now())).collect()
        };
        let b: Vec<_> = {
            let mut g = TransactionGenerator::new(42, 2, 30);
            (0..100).map(|_| g.next_transaction(now())).collect()
        };
        assert_eq!(a, b);
        let mut other = TransactionGenerator::new(43, 2, 30);
        assert_ne!(a[0], other.next_transaction(now()));
    }

    #[test]
    fn transaction_ids_are_unique_within_a_run() {
        let mut ids = HashSet::new();
        for thread in 0..4 {
            let mut g = TransactionGenerator::new(9, thread, 30);
            for _ in 0..50_000 {
                assert!(ids.insert(g.next_transaction(now()).transaction_id));
            }
        }
    }

    #[test]
    fn numbering_and_backdating() {
        let mut g = TransactionGenerator::new(1, 0, 0);
        let first = g.next_transaction(now());
        let second = g.next_transaction(now());
        assert_eq!((first.thread, first.message_number), (0, 0));
        assert_eq!(second.message_number, 1);
        assert_eq!(
            first.timestamp, "2026-11-24T07:47:40.000000Z",
            "no back-dating with 0 days"
        );
        assert_eq!(first.timestamp_of_reception_log, "24/11/2026 07:47:40");
    }
}

//! Randomised: thousands of generated transactions through the whole product
//! file, compared with a straightforward reference computation.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use lakehouse::transaction::Transaction;
use lakehouse_producer::{damage, MalformedKind, TransactionGenerator};
use lakehouse_streamsql::engine::window_bounds;
use lakehouse_streamsql::{load, Engine, InputRecord, OutputRecord, Plan};
use rand::{Rng, SeedableRng};
use serde_json::Value as Json;

const FILE: &str = include_str!("../../producer/ksql_queries.sql");
const BASE_TS: i64 = 1_795_506_460_000;

fn generate(seed: u64, n: usize) -> Vec<(i64, Transaction)> {
    let now = "2026-11-24T07:47:40Z".parse().unwrap();
    let mut generator = TransactionGenerator::new(seed, 1, 30);
    // Several records per millisecond at times, and gaps of minutes, to cross windows.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut ts = BASE_TS;
    (0..n)
        .map(|_| {
            ts += if rng.gen_bool(0.01) {
                rng.gen_range(60_000..400_000)
            } else {
                rng.gen_range(0..200)
            };
            (ts, generator.next_transaction(now))
        })
        .collect()
}

struct Outputs {
    plan: Arc<Plan>,
    records: Vec<OutputRecord>,
}

impl Outputs {
    fn stream(&self, name: &str) -> Vec<Json> {
        let idx = self
            .plan
            .relations
            .iter()
            .position(|r| r.name == name)
            .unwrap();
        self.records
            .iter()
            .filter(|o| o.relation == idx)
            .map(|o| serde_json::from_slice(o.value.as_ref().unwrap()).unwrap())
            .collect()
    }

    /// Last value per key (None once tombstoned).
    fn table(&self, name: &str) -> HashMap<Vec<u8>, Json> {
        let idx = self
            .plan
            .relations
            .iter()
            .position(|r| r.name == name)
            .unwrap();
        let mut out = HashMap::new();
        for o in self.records.iter().filter(|o| o.relation == idx) {
            match &o.value {
                Some(v) => out.insert(o.key.clone().unwrap(), serde_json::from_slice(v).unwrap()),
                None => out.remove(o.key.as_ref().unwrap()),
            };
        }
        out
    }
}

fn run(inputs: &[(i64, Vec<u8>)]) -> (Outputs, usize) {
    let plan = Arc::new(load(FILE).unwrap());
    let mut engine = Engine::new(Arc::clone(&plan));
    let (mut records, mut dead) = (Vec::new(), Vec::new());
    for (i, (ts, value)) in inputs.iter().enumerate() {
        engine.process(
            &InputRecord {
                topic: "transaction_log",
                partition: (i % 3) as i32,
                offset: i as i64,
                timestamp: *ts,
                key: None,
                value: Some(value),
            },
            &mut records,
            &mut dead,
        );
    }
    (Outputs { plan, records }, dead.len())
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
}

fn windowed_key(key: &str, start: i64) -> Vec<u8> {
    let mut k = key.as_bytes().to_vec();
    k.extend(start.to_be_bytes());
    k
}

#[test]
fn the_whole_file_matches_a_reference_computation() {
    for seed in [1_u64, 2, 3] {
        let txs = generate(seed, 4_000);
        let inputs: Vec<(i64, Vec<u8>)> = txs
            .iter()
            .map(|(ts, t)| (*ts, serde_json::to_vec(t).unwrap()))
            .collect();
        let (out, dead) = run(&inputs);
        assert_eq!(dead, 0, "valid records decode");

        // Streams.
        let flat = out.stream("TRANSACTIONS_FLAT");
        assert_eq!(flat.len(), txs.len());
        for (row, (_, t)) in flat.iter().zip(&txs) {
            assert_eq!(row["TRANSACTION_ID"], t.transaction_id.as_str());
            assert_eq!(row["CITY"], t.location.city.as_str());
            assert!(close(
                row["AMOUNT_WITH_TAX"].as_f64().unwrap(),
                t.amount + t.tax_amount
            ));
            assert_eq!(
                row["CUSTOMER_RATING"].as_i64().map(|r| r as i32),
                t.customer_rating
            );
        }
        let high = txs.iter().filter(|(_, t)| t.amount > 700.0).count();
        assert_eq!(out.stream("HIGH_AMOUNT_TRANSACTIONS").len(), high);
        let blacklisted = |t: &Transaction| {
            ["Paris", "Mumbai", "Sao Paulo", "São Paulo"].contains(&t.location.city.as_str())
                || (t.location.country == "USA" && t.location.city == "Chicago")
        };
        let black = txs.iter().filter(|(_, t)| blacklisted(t)).count();
        assert_eq!(out.stream("BLACKLISTED_CITY_TRANSACTIONS").len(), black);
        assert_eq!(
            out.stream("CLEAN_CITY_TRANSACTIONS").len(),
            txs.len() - black
        );
        for status in ["completed", "pending", "failed", "processing", "cancelled"] {
            let expected = txs.iter().filter(|(_, t)| t.status == status).count();
            assert_eq!(
                out.stream(&format!("TRANSACTIONS_{}", status.to_uppercase()))
                    .len(),
                expected,
                "{status}"
            );
        }
        let rates: HashMap<&str, f64> = [
            ("USD", 1.0),
            ("EUR", 1.08),
            ("GBP", 1.27),
            ("CAD", 0.73),
            ("JPY", 0.0067),
            ("AUD", 0.66),
        ]
        .into_iter()
        .collect();
        for (row, (_, t)) in out.stream("TRANSACTIONS_USD").iter().zip(&txs) {
            assert!(close(
                row["AMOUNT_USD"].as_f64().unwrap(),
                t.amount * rates[t.currency.as_str()]
            ));
        }
        for (row, (_, t)) in out.stream("TRANSACTIONS_ANONYMIZED").iter().zip(&txs) {
            assert_eq!(row["USER_ID_HASH"].as_str().unwrap().len(), 32);
            assert_ne!(row["USER_ID_HASH"], t.user_id.as_str());
            assert!(row["MASKED_IP"]
                .as_str()
                .unwrap()
                .chars()
                .all(|c| c == 'n' || c == '.'));
        }

        // Tables.
        let mut per_type: BTreeMap<&str, (f64, i64)> = BTreeMap::new();
        let mut per_product: BTreeMap<&str, i64> = BTreeMap::new();
        let mut per_user_type: BTreeMap<String, (f64, i64)> = BTreeMap::new();
        let mut per_category: BTreeMap<&str, (i64, f64, f64, f64, i64, i64)> = BTreeMap::new();
        let mut per_minute: BTreeMap<(String, i64), (i64, f64)> = BTreeMap::new();
        let mut per_method_5min: BTreeMap<(String, i64), (f64, i64)> = BTreeMap::new();
        for (ts, t) in &txs {
            let e = per_type.entry(&t.transaction_type).or_default();
            e.0 += t.amount;
            e.1 += 1;
            *per_product.entry(&t.product_id).or_default() += i64::from(t.quantity);
            let e = per_user_type
                .entry(format!("{}_{}", t.user_id, t.transaction_type))
                .or_default();
            e.0 += t.amount;
            e.1 += 1;
            let e = per_category.entry(&t.product_category).or_insert((
                0,
                0.0,
                f64::MAX,
                f64::MIN,
                0,
                0,
            ));
            e.0 += 1;
            e.1 += t.amount;
            e.2 = e.2.min(t.amount);
            e.3 = e.3.max(t.amount);
            if let Some(r) = t.customer_rating {
                e.4 += i64::from(r);
                e.5 += 1;
            }
            let minute = ts - ts.rem_euclid(60_000);
            let e = per_minute.entry((t.currency.clone(), minute)).or_default();
            e.0 += 1;
            e.1 += t.amount;
            for (start, _) in window_bounds(
                lakehouse_streamsql::ast::WindowDef::Hopping {
                    size_ms: 300_000,
                    advance_ms: 60_000,
                    grace_ms: None,
                },
                *ts,
            ) {
                let e = per_method_5min
                    .entry((t.payment_method.clone(), start))
                    .or_default();
                e.0 += t.amount;
                e.1 += 1;
            }
        }
        let table = out.table("TOTAL_PAR_TRANSACTION_TYPE");
        assert_eq!(table.len(), per_type.len());
        for (k, (sum, n)) in &per_type {
            let row = &table[k.as_bytes()];
            assert!(
                close(row["TOTAL_AMOUNT"].as_f64().unwrap(), *sum)
                    && row["TRANSACTION_COUNT"] == *n,
                "{k}: {row}"
            );
        }
        let table = out.table("QUANTITY_PAR_PRODUCT");
        assert_eq!(table.len(), per_product.len());
        for (k, q) in &per_product {
            assert_eq!(table[k.as_bytes()]["TOTAL_QUANTITY"], *q);
        }
        let table = out.table("TOTAL_SPENT_PAR_USER_TYPE");
        assert_eq!(table.len(), per_user_type.len());
        for (k, (sum, n)) in &per_user_type {
            let row = &table[k.as_bytes()];
            assert!(
                close(row["TOTAL_SPENT"].as_f64().unwrap(), *sum) && row["TRANSACTION_COUNT"] == *n
            );
        }
        let table = out.table("LATEST_STATUS_PAR_TRANSACTION");
        assert_eq!(table.len(), txs.len());
        for (_, t) in &txs {
            assert_eq!(
                table[t.transaction_id.as_bytes()]["LATEST_STATUS"],
                t.status.as_str()
            );
        }
        let table = out.table("STATS_PAR_CATEGORY");
        for (k, (n, sum, min, max, rating_sum, rating_n)) in &per_category {
            let row = &table[k.as_bytes()];
            assert_eq!(row["TRANSACTION_COUNT"], *n);
            assert!(close(row["AVG_AMOUNT"].as_f64().unwrap(), sum / *n as f64));
            assert!(
                close(row["MIN_AMOUNT"].as_f64().unwrap(), *min)
                    && close(row["MAX_AMOUNT"].as_f64().unwrap(), *max)
            );
            assert!(
                close(
                    row["AVG_RATING"].as_f64().unwrap(),
                    *rating_sum as f64 / *rating_n as f64
                ),
                "AVG ignores null ratings"
            );
        }
        let table = out.table("TRANSACTIONS_PER_MINUTE");
        assert_eq!(table.len(), per_minute.len());
        for ((currency, start), (n, sum)) in &per_minute {
            let row = &table[&windowed_key(currency, *start)];
            assert_eq!(row["TRANSACTION_COUNT"], *n);
            assert!(close(row["TOTAL_AMOUNT"].as_f64().unwrap(), *sum));
            assert_eq!(row["WINDOW_START"], *start);
            assert_eq!(row["WINDOW_END"], start + 60_000);
        }
        let table = out.table("AMOUNT_PER_METHOD_5MIN");
        assert_eq!(table.len(), per_method_5min.len());
        for ((method, start), (sum, n)) in &per_method_5min {
            let row = &table[&windowed_key(method, *start)];
            assert_eq!(row["TRANSACTION_COUNT"], *n);
            assert!(close(row["TOTAL_AMOUNT"].as_f64().unwrap(), *sum));
        }
    }
}

#[test]
fn every_record_is_either_decoded_or_dead_lettered_per_source_stream() {
    let txs = generate(9, 3_000);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let inputs: Vec<(i64, Vec<u8>)> = txs
        .iter()
        .map(|(ts, t)| {
            let bytes = if rng.gen_bool(0.2) {
                damage(
                    t,
                    MalformedKind::ALL[rng.gen_range(0..MalformedKind::ALL.len())],
                    &mut rng,
                )
            } else {
                serde_json::to_vec(t).unwrap()
            };
            (*ts, bytes)
        })
        .collect();
    let (out, dead) = run(&inputs);
    let raw_rows = out.stream("TRANSACTIONS_FLAT").len();
    let payment_rows = out.stream("TRANSACTIONS_USD").len();
    assert_eq!(
        raw_rows + payment_rows + dead,
        2 * inputs.len(),
        "nothing vanishes"
    );
    assert!(dead > 0 && raw_rows < inputs.len());
}

#[test]
fn a_parallel_batch_gives_exactly_the_sequential_output() {
    let txs = generate(4, 2_000);
    let inputs: Vec<(i64, Vec<u8>)> = txs
        .iter()
        .map(|(ts, t)| (*ts, serde_json::to_vec(t).unwrap()))
        .collect();
    let records: Vec<InputRecord> = inputs
        .iter()
        .enumerate()
        .map(|(i, (ts, v))| InputRecord {
            topic: "transaction_log",
            partition: (i % 3) as i32,
            offset: i as i64,
            timestamp: *ts,
            key: None,
            value: Some(v),
        })
        .collect();
    let plan = Arc::new(load(FILE).unwrap());
    let mut sequential = Engine::new(Arc::clone(&plan));
    let (mut expected, mut dead) = (Vec::new(), Vec::new());
    for r in &records {
        sequential.process(r, &mut expected, &mut dead);
    }
    let mut parallel = Engine::new(plan);
    let mut got = Vec::new();
    // Every way of sharing the work, batch after batch: the table thread
    // decoding half or a few of the slices, every table on the table thread,
    // some or all of them on the calling thread.
    let balances = [-8, -3, 0, 2, 100].map(lakehouse_streamsql::Balance::new);
    for (batch, balance) in records.chunks(400).zip(balances.iter().cycle()) {
        parallel.set_balance(*balance);
        let out = parallel.process_batch(batch, 2);
        for i in 0..out.len() {
            got.extend(out.outputs(i).cloned());
        }
    }
    // Per relation (and so per key) the order is the sequential one; across
    // tables, a parallel batch groups outputs by thread.
    for relation in 0..plan_len(&expected, &got) {
        let of = |v: &Vec<lakehouse_streamsql::OutputRecord>| {
            v.iter()
                .filter(|o| o.relation == relation)
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(of(&got), of(&expected), "relation {relation}");
    }
    assert_eq!(got.len(), expected.len());
    assert_eq!(parallel.counters(), sequential.counters());
}

fn plan_len(a: &[OutputRecord], b: &[OutputRecord]) -> usize {
    a.iter().chain(b).map(|o| o.relation + 1).max().unwrap_or(0)
}

//! Real producers' records in the raw lake: the classic producer's (its own
//! value lists, spellings and numbering) and an outside producer's (names,
//! cities, currencies, statuses, amounts and thread numbers outside every
//! list, fields in other cases, numbers in strings, fields nobody declared)
//! all land; only what cannot be represented is dead-lettered, with its reason.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use lakehouse::kafka::{client_config, TopicSpec};
use lakehouse_testkit::{Broker, ScratchDir};
use rand::{Rng, SeedableRng};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{json, Value};
use support::{dead_letters, landed_rows, wait_for, SinkProcess};

const RAW: &str = "transaction_log";

/// The classic producer's value lists (SYSTEM.md section 2, as its
/// `kafka_producer_transaction.py` has them), kept here as test data.
mod classic {
    pub const NAMES: &[&str] = &[
        "Smith", "Lee", "Wright", "Nguyen", "Ramirez", "Liam", "Olivia", "Zoey", "Penelope",
        "Aubrey", "Scarlett", "Sanchez",
    ];
    pub const CITIES: &[(&str, &str)] = &[
        ("China", "Hangzhou"),
        ("Japan", "Nagoya"),
        ("India", "Hyderabad"),
        ("Brazil", "São Paulo"),
        ("Brazil", "Brasília"),
        ("USA", "Chicago"),
        ("France", "Paris"),
    ];
    pub const OS: &[&str] = &["Windows", "MacOS", "Linux", "Android", "iOS"];
    pub const BROWSERS: &[&str] = &["Chrome", "Firefox", "Safari", "Edge"];
    pub const STATUSES: &[&str] = &["completed", "pending", "failed", "processing", "cancelled"];
}

/// One record the way the classic producer writes it: uuid-prefix ids,
/// Python's isoformat() timestamps, threads and message numbers from 0.
fn classic_record(rng: &mut impl Rng, thread: u32, message_number: u32) -> Value {
    let pick =
        |rng: &mut dyn rand::RngCore, list: &[&'static str]| list[rng.gen_range(0..list.len())];
    let (country, city) = classic::CITIES[rng.gen_range(0..classic::CITIES.len())];
    let status = pick(rng, classic::STATUSES);
    let amount = f64::from(rng.gen_range(1_000..=100_000)) / 100.0;
    json!({
        "transaction_id": format!("TXN-{:08x}", rng.gen::<u32>()),
        "timestamp": format!("2026-11-{:02}T10:22:33.{:06}Z", rng.gen_range(1..=30), rng.gen_range(0..1_000_000)),
        "user_id": format!("USER-{}", rng.gen_range(1000..=9999)),
        "user_name": pick(rng, classic::NAMES),
        "product_id": format!("PROD-{}", rng.gen_range(100..=999)),
        "amount": amount,
        "currency": "EUR",
        "transaction_type": "purchase",
        "status": status,
        "location": {"city": city, "country": country},
        "payment_method": "paypal",
        "product_category": "books",
        "quantity": rng.gen_range(1..=10),
        "shipping_address": {"street": format!("{} Main St", rng.gen_range(100..=999)),
            "zip": rng.gen_range(10000..=99999).to_string(), "city": city, "country": country},
        "device_info": {"os": pick(rng, classic::OS), "browser": pick(rng, classic::BROWSERS),
            "ip_address": "203.0.113.7"},
        "customer_rating": if rng.gen_bool(0.5) { Value::Null } else { json!(rng.gen_range(1..=5)) },
        "discount_code": if rng.gen_bool(0.5) { Value::Null } else { json!(format!("DISCOUNT-{}", rng.gen_range(100..=999))) },
        "tax_amount": if status == "completed" { (amount * 0.1 * 100.0).round() / 100.0 } else { 0.0 },
        "thread": thread,
        "message_number": message_number,
        "timestamp_of_reception_log": "01/12/2026 08:00:00",
    })
}

/// Another producer's record: values outside every list, numbers sent as
/// strings, names in other cases, a field nobody declared, optional fields left out.
fn outside_record(i: u32) -> Value {
    json!({
        "Transaction_Id": format!("ORDER/{i}"),
        "timestamp": "2026-12-01 08:00:00+01:00",
        "user_id": format!("customer-{i}"),
        "USER_NAME": "Zanele Mbeki-Ørsted",
        "product_id": "SKU 7",
        "amount": if i.is_multiple_of(2) { json!(125_000.75) } else { json!("-3.5") },
        "currency": "CHF",
        "status": "refunded",
        "location": {"City": "Reykjavík", "country": "Iceland"},
        "quantity": "3",
        "device_info": {"os": "ChromeOS", "browser": "Lynx", "ip_address": "::1"},
        "thread": 99,
        "message_number": 1u64 << 40,
        "loyalty_tier": {"level": "gold"},
    })
}

/// Records that cannot be represented, with a piece of the reason each must carry.
fn malformed() -> Vec<(Vec<u8>, &'static str)> {
    let base = classic_record(&mut rand_chacha::ChaCha8Rng::seed_from_u64(1), 0, 0);
    let with = |field: &str, value: Value| {
        let mut v = base.clone();
        v[field] = value;
        serde_json::to_vec(&v).unwrap()
    };
    let without = |field: &str| {
        let mut v = base.clone();
        v.as_object_mut().unwrap().remove(field);
        serde_json::to_vec(&v).unwrap()
    };
    vec![
        (without("transaction_id"), "missing field `transaction_id`"),
        (
            with("amount", Value::Null),
            "amount: null in a required field",
        ),
        (with("amount", json!("lots")), "expected DOUBLE"),
        (with("quantity", json!(1u64 << 40)), "out of range for INT"),
        (with("location", json!("Paris, France")), "expected STRUCT"),
        (with("user_name", json!("X".repeat(100_000))), "oversized"),
        (b"{\"transaction_id\": \"TXN-1\", ".to_vec(), "EOF"),
        (b"[1, 2]".to_vec(), "expected a JSON object"),
        (vec![b'{', 0xff, b'}'], "not UTF-8"),
    ]
}

#[test]
fn every_producers_well_formed_records_land_and_only_malformed_ones_are_dead_lettered() {
    // The product's statement file: the raw topic has every column it declares.
    let sql = concat!(env!("CARGO_MANIFEST_DIR"), "/../producer/ksql_queries.sql");
    let plan = lakehouse_streamsql::load_file(std::path::Path::new(sql)).unwrap();
    let topics: Vec<TopicSpec> = lakehouse_workers::lake::landed_topics(&plan)
        .iter()
        .map(|t| TopicSpec::new(&t.topic, 3))
        .collect();
    let broker = Broker::start_with_topics(&topics);
    let bootstrap = broker.bootstrap();
    let dir = ScratchDir::new("real-traffic");
    let mut sink = SinkProcess::new(&bootstrap, dir.path());
    sink.sql = sql.into();

    let producer: BaseProducer = client_config(&bootstrap).create().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(49);
    let mut good: Vec<Vec<u8>> = Vec::new();
    for thread in 0..5 {
        for n in 0..40 {
            good.push(serde_json::to_vec(&classic_record(&mut rng, thread, n)).unwrap());
        }
    }
    good.extend((0..100).map(|i| serde_json::to_vec(&outside_record(i)).unwrap()));
    let bad = malformed();
    let mut values: Vec<&[u8]> = good.iter().map(Vec::as_slice).collect();
    values.extend(bad.iter().map(|(v, _)| v.as_slice()));
    for value in &values {
        let mut record = BaseRecord::<(), [u8]>::to(RAW).payload(*value);
        while let Err((_, r)) = producer.send(record) {
            producer.poll(Duration::from_millis(20));
            record = r;
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();

    let mut child = sink.start();
    wait_for(
        "every record to land or be dead-lettered",
        Duration::from_secs(120),
        || landed_rows(&sink.lake, RAW).len() + dead_letters(&sink.lake, RAW).len() >= values.len(),
    );
    assert!(child.stop());

    let dlq = dead_letters(&sink.lake, RAW);
    let reasons: Vec<String> = dlq
        .iter()
        .map(|d| d["reason"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        dlq.len(),
        bad.len(),
        "only the malformed records: {reasons:#?}"
    );
    for (_, expected) in &bad {
        assert!(
            reasons.iter().any(|r| r.contains(expected)),
            "a dead letter says {expected:?}: {reasons:#?}"
        );
    }
    let landed = landed_rows(&sink.lake, RAW);
    assert_eq!(landed.len(), good.len(), "every well-formed record landed");
    let positions: BTreeSet<(i32, i64)> = landed.iter().map(|r| (r.partition, r.offset)).collect();
    assert_eq!(positions.len(), good.len(), "each exactly once");

    // The values as sent, typed by the shared rules, read back by DuckDB.
    let glob = sink.lake.join(RAW).join("*/*.parquet");
    let query = format!(
        "SELECT count(*) FILTER (WHERE user_name = 'Wright' OR location.city = 'Hangzhou'), \
                count(*) FILTER (WHERE currency = 'CHF' AND quantity = 3 AND thread = 99), \
                sum(amount) FILTER (WHERE status = 'refunded'), \
                count(*) FILTER (WHERE raw_json LIKE '%loyalty_tier%') \
         FROM read_parquet('{}', hive_partitioning = true)",
        glob.display()
    );
    let out = lakehouse_testkit::stdout_of(std::process::Command::new("python3").args([
        "-c",
        "import duckdb,sys; print(duckdb.sql(sys.argv[1]).fetchall()[0])",
        &query,
    ]));
    let row = String::from_utf8(out).unwrap();
    let expected_sum = 50.0 * 125_000.75 - 50.0 * 3.5;
    assert!(row.starts_with('('), "{row}");
    let fields: Vec<&str> = row
        .trim()
        .trim_matches(|c| c == '(' || c == ')')
        .split(", ")
        .collect();
    assert!(fields[0].parse::<u64>().unwrap() > 0, "{row}");
    assert_eq!(fields[1], "100", "{row}");
    assert!(
        (fields[2].parse::<f64>().unwrap() - expected_sum).abs() < 1e-6,
        "{row}"
    );
    assert_eq!(fields[3], "100", "{row}");
}

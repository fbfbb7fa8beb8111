//! Re-push against a real broker, a real PostgreSQL and a lake written by
//! the lake sink: one transaction sent again with fresh times and marked,
//! a dataset's history sent once each at its rate, a job killed with
//! SIGKILL mid-way that resumes and sends nothing twice, the refusals, and
//! a proof that claims nothing when no pipeline ran. (With the pipeline
//! running, the proof is checked by `console/tests/stack_lifecycle.rs`.)

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use lakehouse::kafka::TopicSpec;
use lakehouse::topics::{SourcePosition, REPUSH_HEADER, REPUSH_SOURCE_HEADER, TRANSACTION_LOG};
use lakehouse_testkit::topic_reader::{read_topic, TopicRecord};
use lakehouse_testkit::Broker;
use serde_json::{json, Value};
use support::{ApiServer, Response, PARTITIONS};

const YESTERDAY_COUNT: usize = 150;
const TODAY_COUNT: usize = 240;

struct Setup {
    broker: Broker,
    server: ApiServer,
}

fn start(days: &[(i64, usize)]) -> Setup {
    let broker = Broker::start_with_topics(&[TopicSpec::new(TRANSACTION_LOG, PARTITIONS)]);
    let bootstrap = broker.bootstrap();
    let server = ApiServer::start(days, &[("LAKEHOUSE_KAFKA_BOOTSTRAP", bootstrap.as_str())]);
    Setup { broker, server }
}

fn shared() -> &'static Setup {
    static SETUP: OnceLock<&'static Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        lakehouse_testkit::start_forever(|| {
            let setup = start(&[(1, YESTERDAY_COUNT), (0, TODAY_COUNT)]);
            let server = &setup.server;
            for user in ["writer", "reader", "nobody"] {
                server.add_user(user, false);
            }
            let admin = server.token("admin");
            server.grant(&admin, "writer", "lake/transaction_log", "write");
            server.grant(&admin, "writer", "lake/transaction_log", "read");
            server.grant(&admin, "writer", "lake/TRANSACTIONS_FLAT", "write");
            server.grant(&admin, "reader", "lake/transaction_log", "read");
            setup
        })
    })
}

/// The records of `topic` a job sent.
fn sent_by(records: &[TopicRecord], job: &str) -> Vec<TopicRecord> {
    records
        .iter()
        .filter(|r| header(r, REPUSH_HEADER).as_deref() == Some(job))
        .cloned()
        .collect()
}

fn header(record: &TopicRecord, name: &str) -> Option<String> {
    record
        .headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| String::from_utf8_lossy(v).to_string())
}

fn wait_done(server: &ApiServer, token: &str, job: &str, timeout: Duration) -> Value {
    let started = Instant::now();
    loop {
        let report = server.call("GET", &format!("/api/v2/repush/{job}"), Some(token), None);
        assert_eq!(report.status, 200, "{}", report.text);
        if report.json["job"]["state"] != "running" {
            return report.json;
        }
        assert!(
            started.elapsed() < timeout,
            "the job is still running: {}\n{}",
            report.text,
            server.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn assert_bad(response: &Response, parameter: &str) {
    assert_eq!(response.status, 400, "{}", response.text);
    assert_eq!(response.parameter(), Some(parameter), "{}", response.text);
}

#[test]
fn one_transaction_is_sent_again_with_fresh_times_and_marked() {
    let Setup { broker, server } = shared();
    let writer = server.token("writer");
    let original = &server.transactions[7];
    let id = original["transaction_id"].as_str().unwrap();
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    let path = format!("/api/v2/repush/transactions/{id}");
    let sent = server.call("POST", &path, Some(&writer), None);
    assert_eq!(sent.status, 201, "{}", sent.text);
    let job = sent.json["id"].as_str().unwrap().to_string();
    assert_eq!(sent.json["state"], "done");
    assert_eq!(sent.json["kind"], "transaction");
    assert_eq!(sent.json["transaction_id"], id);
    assert_eq!(
        (sent.json["total"].as_i64(), sent.json["sent"].as_i64()),
        (Some(1), Some(1))
    );

    let records = sent_by(&read_topic(&broker.bootstrap(), TRANSACTION_LOG), &job);
    assert_eq!(records.len(), 1, "sent exactly once");
    let record = &records[0];
    let mut value: Value = serde_json::from_slice(record.value.as_deref().unwrap()).unwrap();
    let timestamp = value["timestamp"].as_str().unwrap().to_string();
    let fresh = chrono::NaiveDateTime::parse_from_str(&timestamp, "%Y-%m-%dT%H:%M:%S%.fZ")
        .unwrap()
        .and_utc();
    assert!(
        fresh >= before && fresh <= chrono::Utc::now(),
        "{timestamp}"
    );
    let reception = value["timestamp_of_reception_log"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(reception, fresh.format("%d/%m/%Y %H:%M:%S").to_string());
    // Apart from its two times, the record is the original.
    value["timestamp"] = original["timestamp"].clone();
    value["timestamp_of_reception_log"] = original["timestamp_of_reception_log"].clone();
    assert_eq!(&value, original);
    let origin = header(record, REPUSH_SOURCE_HEADER).unwrap();
    let origin = SourcePosition::parse(&origin).unwrap();
    assert_eq!(origin.topic, TRANSACTION_LOG);
    assert_eq!(
        record.partition, origin.partition,
        "sent to the partition it came from"
    );

    // A reader of the dataset sees what was sent; with no pipeline running
    // here, the proof does not claim it was processed.
    let report = server.call(
        "GET",
        &format!("/api/v2/repush/{job}"),
        Some(&server.token("reader")),
        None,
    );
    assert_eq!(report.status, 200, "{}", report.text);
    let listed = &report.json["records"][0];
    assert_eq!(listed["transaction_id"], id);
    assert_eq!(listed["repushed"], record.position.as_str());
    assert_eq!(listed["original"], origin.to_string().as_str());
    let proof = &report.json["proof"];
    assert_eq!(proof["processed"], false, "{proof}");
    assert_eq!(proof["raw"]["expected"], 1);
    assert_eq!(proof["raw"]["found"], 0);
    let flat = proof["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["dataset"] == "TRANSACTIONS_FLAT")
        .expect("the original is in TRANSACTIONS_FLAT");
    assert_eq!(
        (flat["expected"].as_u64(), flat["found"].as_u64()),
        (Some(1), Some(0))
    );

    let rows = server.wait_access_log(&path, |rows| !rows.is_empty());
    assert_eq!(rows[0].0.as_deref(), Some("writer"));
    assert_eq!(rows[0].2, 201);
}

#[test]
fn a_dataset_history_is_sent_once_each_at_its_rate() {
    let Setup { broker, server } = shared();
    let writer = server.token("writer");
    let today = chrono::Utc::now().date_naive().to_string();
    let rate = 300;
    let started = Instant::now();
    let path = "/api/v2/repush/datasets/transaction_log";
    let created = server.call(
        "POST",
        path,
        Some(&writer),
        Some(json!({"since": today, "rate": rate})),
    );
    assert_eq!(created.status, 202, "{}", created.text);
    assert_eq!(created.json["total"], TODAY_COUNT);
    let job = created.json["id"].as_str().unwrap().to_string();
    // One re-push of a dataset at a time.
    let again = server.call("POST", path, Some(&writer), None);
    assert_eq!(again.status, 409, "{}", again.text);
    assert!(again.text.contains(&job), "{}", again.text);

    let report = wait_done(server, &writer, &job, Duration::from_secs(60));
    let took = started.elapsed();
    assert_eq!(report["job"]["state"], "done", "{report}");
    assert_eq!(report["job"]["sent"], TODAY_COUNT);
    assert_eq!(report["job"]["progress"], 1.0);
    // The rate is a ceiling: 240 records at 300/s cannot take under 0.8 s
    // minus one batch's worth.
    let floor = Duration::from_secs_f64((TODAY_COUNT as f64 - 75.0) / rate as f64);
    assert!(took >= floor, "{took:?} < {floor:?}");

    let records = sent_by(&read_topic(&broker.bootstrap(), TRANSACTION_LOG), &job);
    let origins: HashSet<String> = records
        .iter()
        .map(|r| header(r, REPUSH_SOURCE_HEADER).unwrap())
        .collect();
    assert_eq!(records.len(), TODAY_COUNT, "each record sent once");
    assert_eq!(origins.len(), TODAY_COUNT);
    // Today's records only: their ids are the last TODAY_COUNT generated.
    let today_ids: HashSet<&str> = server.transactions[YESTERDAY_COUNT..]
        .iter()
        .map(|t| t["transaction_id"].as_str().unwrap())
        .collect();
    for record in &records {
        let value: Value = serde_json::from_slice(record.value.as_deref().unwrap()).unwrap();
        assert!(today_ids.contains(value["transaction_id"].as_str().unwrap()));
    }

    // The audit trail has the job's start, the refusal and the reports read.
    let rows = server.wait_access_log(path, |rows| rows.len() >= 2);
    let statuses: Vec<i32> = rows
        .iter()
        .filter(|r| r.0.as_deref() == Some("writer"))
        .map(|r| r.2)
        .collect();
    assert!(
        statuses.contains(&202) && statuses.contains(&409),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.4.as_deref().is_some_and(|b| b.contains("\"rate\""))),
        "{rows:?}"
    );
    let report_path = format!("/api/v2/repush/{job}");
    let reads = server.wait_access_log(&report_path, |rows| !rows.is_empty());
    assert!(
        reads.iter().all(|r| r.1 == "GET" && r.2 == 200),
        "{reads:?}"
    );
}

#[test]
fn refusals_name_what_is_wrong() {
    let Setup { server, .. } = shared();
    let (writer, reader, nobody) = (
        server.token("writer"),
        server.token("reader"),
        server.token("nobody"),
    );
    let id = server.transactions[0]["transaction_id"].as_str().unwrap();
    let one = format!("/api/v2/repush/transactions/{id}");
    let all = "/api/v2/repush/datasets/transaction_log";

    assert_eq!(server.call("POST", &one, None, None).status, 401);
    assert_eq!(server.call("POST", all, None, None).status, 401);
    assert_eq!(
        server.call("GET", "/api/v2/repush/rp-x", None, None).status,
        401
    );
    for (path, token) in [(one.as_str(), &reader), (all, &reader), (all, &nobody)] {
        let refused = server.call("POST", path, Some(token), None);
        assert_eq!(refused.status, 403, "{}", refused.text);
        assert!(
            refused.text.contains("write") && refused.text.contains("lake/transaction_log"),
            "{}",
            refused.text
        );
    }
    let missing = server.call(
        "POST",
        "/api/v2/repush/transactions/TXN-not-there",
        Some(&writer),
        None,
    );
    assert_eq!(missing.status, 404, "{}", missing.text);
    assert!(missing.text.contains("TXN-not-there"));
    assert_eq!(
        server
            .call(
                "POST",
                "/api/v2/repush/datasets/NO_SUCH",
                Some(&writer),
                None
            )
            .status,
        404
    );

    for (body, parameter) in [
        (json!({"rate": 0}), "rate"),
        (json!({"rate": 1_000_000}), "rate"),
        (json!({"since": "2026-02-30"}), "since"),
        (
            json!({"since": "2026-12-02", "until": "2026-12-01"}),
            "until",
        ),
        (json!({"sinse": "2026-12-01"}), "sinse"),
    ] {
        assert_bad(
            &server.call("POST", all, Some(&writer), Some(body)),
            parameter,
        );
    }
    // A derived stream keeps no raw message to send.
    let derived = server.call(
        "POST",
        "/api/v2/repush/datasets/TRANSACTIONS_FLAT",
        Some(&writer),
        None,
    );
    assert_bad(&derived, "name");
    assert!(derived.text.contains("transaction_log"), "{}", derived.text);

    assert_eq!(
        server
            .call("GET", "/api/v2/repush/rp-unknown", Some(&reader), None)
            .status,
        404
    );
    let sent = server.call("POST", &one, Some(&writer), None);
    assert_eq!(sent.status, 201, "{}", sent.text);
    let job = sent.json["id"].as_str().unwrap();
    let hidden = server.call("GET", &format!("/api/v2/repush/{job}"), Some(&nobody), None);
    assert_eq!(hidden.status, 403, "{}", hidden.text);
}

/// SIGKILL at any moment of a job: the restarted server resumes it, and
/// every record of the history is in the topic exactly once.
#[test]
fn a_job_killed_mid_way_resumes_and_sends_each_record_once() {
    const COUNT: usize = 600;
    let Setup { broker, server } = start(&[(0, COUNT)]);
    let admin = server.token("admin");
    let created = server.call(
        "POST",
        "/api/v2/repush/datasets/transaction_log",
        Some(&admin),
        Some(json!({"rate": 120})),
    );
    assert_eq!(created.status, 202, "{}", created.text);
    let job = created.json["id"].as_str().unwrap().to_string();
    let mut sent_before_kills = Vec::new();
    for pause in [1500, 1100] {
        std::thread::sleep(Duration::from_millis(pause));
        server.kill();
        let in_topic = sent_by(&read_topic(&broker.bootstrap(), TRANSACTION_LOG), &job).len();
        sent_before_kills.push(in_topic);
        server.restart(&[("LAKEHOUSE_KAFKA_BOOTSTRAP", broker.bootstrap().as_str())]);
    }
    assert!(
        sent_before_kills[0] > 0 && *sent_before_kills.last().unwrap() < COUNT,
        "the kills fell mid-way: {sent_before_kills:?}"
    );
    let report = wait_done(
        &server,
        &server.token("admin"),
        &job,
        Duration::from_secs(90),
    );
    assert_eq!(report["job"]["state"], "done", "{report}");
    assert_eq!(report["job"]["resumed"], 2);
    assert_eq!(report["job"]["sent"], COUNT);

    let records = sent_by(&read_topic(&broker.bootstrap(), TRANSACTION_LOG), &job);
    let mut per_origin: HashMap<String, usize> = HashMap::new();
    for record in &records {
        *per_origin
            .entry(header(record, REPUSH_SOURCE_HEADER).unwrap())
            .or_default() += 1;
    }
    let doubled: Vec<_> = per_origin.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "sent twice: {doubled:?}");
    assert_eq!(per_origin.len(), COUNT, "every record sent");
    // What the job recorded is what the broker holds.
    let report_positions: HashSet<&str> = report["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["repushed"].as_str().unwrap())
        .collect();
    let topic_positions: HashSet<&str> = records.iter().map(|r| r.position.as_str()).collect();
    assert!(report_positions.is_subset(&topic_positions));
}

/// The moment a crash can fall between a send and its record: the broker
/// holds a record of the job that the job never recorded. Made here by
/// killing the server and then producing that record as the job would have;
/// the restarted job finds it in the topic and does not send it again.
#[test]
fn a_send_the_job_did_not_record_is_found_and_not_repeated() {
    const COUNT: usize = 12;
    let Setup { broker, server } = start(&[(0, COUNT)]);
    let bootstrap = broker.bootstrap();
    let admin = server.token("admin");
    let created = server.call(
        "POST",
        "/api/v2/repush/datasets/transaction_log",
        Some(&admin),
        Some(json!({"rate": 2})),
    );
    assert_eq!(created.status, 202, "{}", created.text);
    let job = created.json["id"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(1800));
    server.kill();
    let sent: HashSet<String> = sent_by(&read_topic(&bootstrap, TRANSACTION_LOG), &job)
        .iter()
        .map(|r| header(r, REPUSH_SOURCE_HEADER).unwrap())
        .collect();
    assert!(!sent.is_empty() && sent.len() < COUNT, "{sent:?}");
    // The next record in the lake's order (partition, then offset).
    let next = (0..PARTITIONS)
        .flat_map(|p| (0..(COUNT as i64 / i64::from(PARTITIONS))).map(move |o| (p, o)))
        .map(|(p, o)| SourcePosition::new(TRANSACTION_LOG, p, o).to_string())
        .find(|position| !sent.contains(position))
        .unwrap();
    let producer: rdkafka::producer::BaseProducer = lakehouse::kafka::client_config(&bootstrap)
        .create()
        .unwrap();
    let headers = rdkafka::message::OwnedHeaders::new()
        .insert(rdkafka::message::Header {
            key: REPUSH_HEADER,
            value: Some(job.as_str()),
        })
        .insert(rdkafka::message::Header {
            key: REPUSH_SOURCE_HEADER,
            value: Some(next.as_str()),
        });
    let origin = SourcePosition::parse(&next).unwrap();
    producer
        .send(
            rdkafka::producer::BaseRecord::<(), _>::to(TRANSACTION_LOG)
                .partition(origin.partition)
                .payload(br#"{"transaction_id":"as the job sent it"}"#)
                .headers(headers),
        )
        .unwrap();
    rdkafka::producer::Producer::flush(&producer, Duration::from_secs(10)).unwrap();

    server.restart(&[("LAKEHOUSE_KAFKA_BOOTSTRAP", bootstrap.as_str())]);
    let report = wait_done(
        &server,
        &server.token("admin"),
        &job,
        Duration::from_secs(60),
    );
    assert_eq!(report["job"]["sent"], COUNT, "{report}");
    let records = sent_by(&read_topic(&bootstrap, TRANSACTION_LOG), &job);
    let mut per_origin: HashMap<String, usize> = HashMap::new();
    for record in &records {
        *per_origin
            .entry(header(record, REPUSH_SOURCE_HEADER).unwrap())
            .or_default() += 1;
    }
    assert_eq!(per_origin.get(&next), Some(&1), "{next} sent again");
    assert_eq!(per_origin.len(), COUNT);
    assert!(per_origin.values().all(|n| *n == 1), "{per_origin:?}");
    let listed = report["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["original"] == next.as_str())
        .expect("the found record is the job's");
    assert_eq!(listed["transaction_id"], "as the job sent it");
}

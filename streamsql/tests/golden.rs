//! Golden tests: for each construct, given input records, the exact output
//! records (topic, key, value or tombstone), following ksqlDB's documented
//! behaviour: upper-case column names, table keys in the record key (not the
//! value), windowed keys suffixed with the 8-byte window start, NULL filtered
//! by WHERE, nulls ignored by SUM/AVG/MIN/MAX.

use std::sync::Arc;

use lakehouse_streamsql::{load, Engine, InputRecord};

/// (topic, key rendered as text or hex, value or None for a tombstone)
type Out = (String, Option<String>, Option<String>);

fn run(sql: &str, inputs: &[(i64, &str)]) -> (Vec<Out>, Vec<String>) {
    let plan = Arc::new(load(sql).unwrap_or_else(|e| panic!("{e}")));
    let mut engine = Engine::new(Arc::clone(&plan));
    let (mut out, mut dead) = (Vec::new(), Vec::new());
    for (offset, (ts, value)) in inputs.iter().enumerate() {
        engine.process(
            &InputRecord {
                topic: "in",
                partition: 0,
                offset: offset as i64,
                timestamp: *ts,
                key: None,
                value: Some(value.as_bytes()),
            },
            &mut out,
            &mut dead,
        );
    }
    let rendered = out
        .iter()
        .map(|o| {
            let key = o.key.as_ref().map(|k| match std::str::from_utf8(k) {
                Ok(s) if s.chars().all(|c| !c.is_control()) => s.to_string(),
                _ => k.iter().map(|b| format!("{b:02x}")).collect(),
            });
            (
                plan.relations[o.relation].topic.clone(),
                key,
                o.value
                    .as_ref()
                    .map(|v| String::from_utf8(v.clone()).unwrap()),
            )
        })
        .collect();
    (
        rendered,
        dead.into_iter()
            .map(|d| format!("{}: {}", d.stream, d.reason))
            .collect(),
    )
}

fn out(topic: &str, key: Option<&str>, value: Option<&str>) -> Out {
    (
        topic.to_string(),
        key.map(str::to_string),
        value.map(str::to_string),
    )
}

const SOURCE: &str = "CREATE STREAM src (id VARCHAR, amount DOUBLE, qty INT, city VARCHAR, \
    loc STRUCT<city VARCHAR, country VARCHAR>) WITH (KAFKA_TOPIC='in', VALUE_FORMAT='JSON');\n";

#[test]
fn projection_aliases_struct_access_and_arithmetic() {
    let sql = format!("{SOURCE}CREATE STREAM s AS SELECT id, loc->city AS town, loc->country, amount * 2 + 1 AS x, qty % 3 FROM src EMIT CHANGES;");
    let (o, _) = run(
        &sql,
        &[(
            1,
            r#"{"id":"a","amount":1.5,"qty":7,"loc":{"city":"Paris","country":"France"}}"#,
        )],
    );
    assert_eq!(
        o,
        vec![out(
            "S",
            None,
            Some(r#"{"ID":"a","TOWN":"Paris","COUNTRY":"France","X":4.0,"KSQL_COL_0":1}"#)
        )]
    );
}

#[test]
fn select_star_keeps_every_column_and_nested_structs() {
    let sql =
        format!("{SOURCE}CREATE STREAM s WITH (KAFKA_TOPIC='out_topic') AS SELECT * FROM src;");
    let (o, _) = run(&sql, &[(1, r#"{"id":"a","loc":{"city":"Lyon"}}"#)]);
    assert_eq!(
        o,
        vec![out(
            "out_topic",
            None,
            Some(
                r#"{"ID":"a","AMOUNT":null,"QTY":null,"CITY":null,"LOC":{"CITY":"Lyon","COUNTRY":null}}"#
            )
        )]
    );
}

#[test]
fn where_with_null_filters_the_row_out() {
    let sql = format!("{SOURCE}CREATE STREAM s AS SELECT id FROM src WHERE amount > 700 OR NOT (city IN ('Paris', 'Lyon'));");
    let (o, _) = run(
        &sql,
        &[
            (1, r#"{"id":"big","amount":800,"city":"Paris"}"#),
            (2, r#"{"id":"small_paris","amount":10,"city":"Paris"}"#),
            (3, r#"{"id":"small_rome","amount":10,"city":"Rome"}"#),
            (4, r#"{"id":"null_amount_paris","city":"Paris"}"#),
            (5, r#"{"id":"all_null"}"#),
        ],
    );
    let ids: Vec<_> = o.iter().map(|x| x.2.clone().unwrap()).collect();
    assert_eq!(ids, vec![r#"{"ID":"big"}"#, r#"{"ID":"small_rome"}"#]);
}

#[test]
fn case_conversion_and_string_functions() {
    let sql = format!(
        "{SOURCE}CREATE STREAM s AS SELECT \
         CASE WHEN city = 'EUR' THEN amount * 2 WHEN city = 'USD' THEN amount ELSE NULL END AS usd, \
         CONCAT(id, '-', city) AS c, SUBSTRING(id, 2, 3) AS sub, UCASE(id) AS up, LCASE('AbC') AS low, \
         MD5(id) AS h, MASK('Ab-12') AS m, LEN(id) AS n, ROUND(amount) AS r, CAST(qty AS VARCHAR) AS q \
         FROM src;"
    );
    let (o, _) = run(
        &sql,
        &[
            (1, r#"{"id":"abcdef","amount":2.5,"qty":3,"city":"EUR"}"#),
            (2, r#"{"id":"x","city":null}"#),
        ],
    );
    assert_eq!(
        o[0].2.as_deref().unwrap(),
        r#"{"USD":5.0,"C":"abcdef-EUR","SUB":"bcd","UP":"ABCDEF","LOW":"abc","H":"e80b5017098950fc58aad83c8c14978e","M":"Xx-nn","N":6,"R":3,"Q":"3"}"#
    );
    assert_eq!(
        o[1].2.as_deref().unwrap(),
        r#"{"USD":null,"C":"x-","SUB":"","UP":"X","LOW":"abc","H":"9dd4e461268c8034f5c8564e155c67a6","M":"Xx-nn","N":1,"R":null,"Q":null}"#
    );
}

#[test]
fn grouped_table_keys_travel_in_the_record_key() {
    let sql = format!("{SOURCE}CREATE TABLE t AS SELECT city, SUM(amount) AS total, COUNT(*) AS n, COUNT(qty) AS nq FROM src GROUP BY city EMIT CHANGES;");
    let (o, _) = run(
        &sql,
        &[
            (1, r#"{"city":"Paris","amount":10,"qty":1}"#),
            (2, r#"{"city":"Lyon","amount":5}"#),
            (3, r#"{"city":"Paris","amount":null,"qty":2}"#),
            (4, r#"{"amount":99}"#),
        ],
    );
    assert_eq!(
        o,
        vec![
            out("T", Some("Paris"), Some(r#"{"TOTAL":10.0,"N":1,"NQ":1}"#)),
            out("T", Some("Lyon"), Some(r#"{"TOTAL":5.0,"N":1,"NQ":0}"#)),
            out("T", Some("Paris"), Some(r#"{"TOTAL":10.0,"N":2,"NQ":2}"#)),
        ],
        "a NULL group key is dropped, as in ksqlDB"
    );
}

#[test]
fn grouping_by_an_expression_names_the_key_ksql_col_0() {
    let sql = format!("{SOURCE}CREATE TABLE t AS SELECT CONCAT(id, '_', city), SUM(qty) AS q FROM src GROUP BY CONCAT(id, '_', city);");
    let plan = load(&sql).unwrap();
    let t = plan.relation("T").unwrap();
    assert_eq!(t.columns[0].name, "KSQL_COL_0");
    assert!(t.columns[0].key);
    let (o, _) = run(
        &sql,
        &[
            (1, r#"{"id":"u1","city":"Paris","qty":2}"#),
            (2, r#"{"id":"u1","city":"Paris","qty":3}"#),
        ],
    );
    assert_eq!(o[1], out("T", Some("u1_Paris"), Some(r#"{"Q":5}"#)));
}

#[test]
fn avg_min_max_ignore_nulls_and_latest_by_offset() {
    let sql = format!(
        "{SOURCE}CREATE TABLE t AS SELECT city, AVG(qty) AS a, MIN(amount) AS lo, MAX(amount) AS hi, \
         LATEST_BY_OFFSET(id) AS last_id, SUM(amount) / COUNT(*) AS mean FROM src GROUP BY city;"
    );
    let (o, _) = run(
        &sql,
        &[
            (1, r#"{"city":"c","id":"first","amount":5}"#),
            (2, r#"{"city":"c","id":"second","qty":4,"amount":1}"#),
            (3, r#"{"city":"c","id":null,"qty":2,"amount":9}"#),
        ],
    );
    assert_eq!(
        o[0].2.as_deref().unwrap(),
        r#"{"A":null,"LO":5.0,"HI":5.0,"LAST_ID":"first","MEAN":5.0}"#
    );
    assert_eq!(
        o[2].2.as_deref().unwrap(),
        r#"{"A":3.0,"LO":1.0,"HI":9.0,"LAST_ID":"second","MEAN":5.0}"#
    );
}

#[test]
fn tumbling_windows_key_by_window_start() {
    let sql = format!(
        "{SOURCE}CREATE TABLE t AS SELECT city, WINDOWSTART AS ws, WINDOWEND AS we, COUNT(*) AS n \
         FROM src WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY city;"
    );
    let (o, _) = run(
        &sql,
        &[
            (61_000, r#"{"city":"P"}"#),
            (119_999, r#"{"city":"P"}"#),
            (120_000, r#"{"city":"P"}"#),
        ],
    );
    // Key: "P" then the window start as 8 big-endian bytes.
    assert_eq!(
        o[0],
        out(
            "T",
            Some("50000000000000ea60"),
            Some(r#"{"WS":60000,"WE":120000,"N":1}"#)
        )
    );
    assert_eq!(
        o[1],
        out(
            "T",
            Some("50000000000000ea60"),
            Some(r#"{"WS":60000,"WE":120000,"N":2}"#)
        )
    );
    assert_eq!(
        o[2],
        out(
            "T",
            Some("50000000000001d4c0"),
            Some(r#"{"WS":120000,"WE":180000,"N":1}"#)
        )
    );
}

#[test]
fn hopping_windows_update_every_window_containing_the_record() {
    let sql = format!(
        "{SOURCE}CREATE TABLE t AS SELECT city, WINDOWSTART AS ws, SUM(qty) AS q \
         FROM src WINDOW HOPPING (SIZE 5 MINUTES, ADVANCE BY 1 MINUTE) GROUP BY city;"
    );
    let (o, _) = run(&sql, &[(6 * 60_000 + 5, r#"{"city":"P","qty":1}"#)]);
    let starts: Vec<&str> = o.iter().map(|x| x.2.as_deref().unwrap()).collect();
    assert_eq!(
        starts,
        vec![
            r#"{"WS":120000,"Q":1}"#,
            r#"{"WS":180000,"Q":1}"#,
            r#"{"WS":240000,"Q":1}"#,
            r#"{"WS":300000,"Q":1}"#,
            r#"{"WS":360000,"Q":1}"#
        ]
    );
}

#[test]
fn late_records_past_the_grace_period_are_dropped() {
    let sql = format!(
        "{SOURCE}CREATE TABLE t AS SELECT city, COUNT(*) AS n FROM src \
         WINDOW TUMBLING (SIZE 1 MINUTE, GRACE PERIOD 30 SECONDS) GROUP BY city;"
    );
    let (o, _) = run(
        &sql,
        &[
            (10_000, r#"{"city":"P"}"#),
            (200_000, r#"{"city":"P"}"#),
            (20_000, r#"{"city":"P"}"#),
        ],
    );
    assert_eq!(
        o.len(),
        2,
        "the third record's window closed at 90 s: {o:?}"
    );
}

#[test]
fn having_turns_a_failing_key_into_a_tombstone() {
    let sql = format!("{SOURCE}CREATE TABLE t AS SELECT city, SUM(qty) AS q FROM src GROUP BY city HAVING SUM(qty) < 10;");
    let (o, _) = run(
        &sql,
        &[
            (1, r#"{"city":"P","qty":4}"#),
            (2, r#"{"city":"P","qty":7}"#),
            (3, r#"{"city":"P","qty":1}"#),
        ],
    );
    assert_eq!(
        o,
        vec![
            out("T", Some("P"), Some(r#"{"Q":4}"#)),
            out("T", Some("P"), None)
        ]
    );
}

#[test]
fn several_group_columns_use_a_json_key() {
    let sql = format!("{SOURCE}CREATE TABLE t WITH (KEY_FORMAT='JSON') AS SELECT city, id, COUNT(*) AS n FROM src GROUP BY city, id;");
    let (o, _) = run(&sql, &[(1, r#"{"city":"P","id":"u"}"#)]);
    assert_eq!(
        o,
        vec![out(
            "T",
            Some(r#"{"CITY":"P","ID":"u"}"#),
            Some(r#"{"N":1}"#)
        )]
    );
}

#[test]
fn streams_read_derived_streams_in_file_order() {
    let sql = format!(
        "{SOURCE}CREATE STREAM flat AS SELECT id, loc->city AS town FROM src;\n\
         CREATE STREAM paris AS SELECT id FROM flat WHERE town = 'Paris';\n\
         CREATE TABLE per_town AS SELECT town, COUNT(*) AS n FROM flat GROUP BY town;"
    );
    let (o, _) = run(
        &sql,
        &[
            (1, r#"{"id":"a","loc":{"city":"Paris"}}"#),
            (2, r#"{"id":"b","loc":{"city":"Rome"}}"#),
        ],
    );
    let topics: Vec<&str> = o.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(
        topics,
        vec!["FLAT", "PARIS", "PER_TOWN", "FLAT", "PER_TOWN"]
    );
}

#[test]
fn undecodable_records_become_dead_letters_with_reasons() {
    let sql = format!(
        "{SOURCE}CREATE STREAM narrow (id VARCHAR) WITH (KAFKA_TOPIC='in', VALUE_FORMAT='JSON');"
    );
    let (o, dead) = run(
        &sql,
        &[
            (1, r#"{"id":"a","qty":"three"}"#),
            (2, "{\"id\":"),
            (3, "[1]"),
        ],
    );
    assert!(o.is_empty());
    assert_eq!(dead.len(), 5, "{dead:?}");
    assert!(
        dead[0].starts_with("SRC: column QTY: expected INT"),
        "{dead:?}"
    );
    assert!(dead.iter().filter(|d| d.contains("not valid JSON")).count() == 2);
    assert!(dead.iter().filter(|d| d.contains("not an object")).count() == 2);
}

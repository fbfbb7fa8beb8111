//! The API's rows and metrics equal DuckDB's over the same Parquet files:
//! an independent reader of the lake (PyPI's duckdb, Hive partitioning on).

mod support;

use serde_json::{json, Value};
use support::ApiServer;

/// Runs each SQL text in DuckDB; returns each result's rows as JSON arrays.
fn duckdb(queries: &[String]) -> Vec<Vec<Vec<Value>>> {
    let script = r#"
import duckdb, json, sys
out = []
for q in json.loads(sys.stdin.read()):
    out.append([[v if isinstance(v, (int, float, str)) or v is None else str(v) for v in row] for row in duckdb.sql(q).fetchall()])
print(json.dumps(out))
"#;
    support::python_json(script, &queries)
}

#[test]
fn pages_and_metrics_equal_duckdbs_answers_on_the_same_files() {
    let server = ApiServer::start(&[(1, 400), (0, 300)], &[]);
    let token = server.token("admin");
    let files = format!(
        "read_parquet('{}/TRANSACTIONS_FLAT/*/*.parquet', hive_partitioning = true)",
        server.lake.display()
    );
    let today = chrono::Utc::now().date_naive();
    let yesterday = today - chrono::Duration::days(1);
    let first = &server.transactions[0];
    let country = first["location"]["country"].as_str().unwrap().to_string();
    let category = first["product_category"].as_str().unwrap().to_string();
    let cases: Vec<(String, String)> = vec![
        ("status=completed".into(), "STATUS IN ('completed')".into()),
        (
            "amount_gt=500&payment_method=credit_card,paypal".into(),
            "AMOUNT > 500 AND PAYMENT_METHOD IN ('credit_card', 'paypal')".into(),
        ),
        (
            format!("customer_rating_gte=4&product_category={category}"),
            format!("CUSTOMER_RATING >= 4 AND PRODUCT_CATEGORY IN ('{category}')"),
        ),
        (
            format!("country={}&amount_lte=100", country.replace(' ', "%20")),
            format!("COUNTRY IN ('{country}') AND AMOUNT <= 100"),
        ),
        (
            format!("since={today}"),
            format!("ingestion_date >= DATE '{today}'"),
        ),
        (
            format!("version={yesterday}"),
            format!("ingestion_date <= DATE '{yesterday}'"),
        ),
        (
            format!("until={today}&amount_eq={}", first["amount"]),
            format!(
                "ingestion_date <= DATE '{today}' AND AMOUNT = {}",
                first["amount"]
            ),
        ),
        (
            "customer_rating_lt=2&status=failed,pending".into(),
            "CUSTOMER_RATING < 2 AND STATUS IN ('failed', 'pending')".into(),
        ),
    ];
    let mut queries: Vec<String> = cases
        .iter()
        .map(|(_, filter)| {
            format!("SELECT TRANSACTION_ID FROM {files} WHERE {filter} ORDER BY kafka_partition, kafka_offset")
        })
        .collect();
    queries.push(format!(
        "SELECT PRODUCT_ID, sum(QUANTITY) AS q FROM {files} GROUP BY 1 ORDER BY q DESC, PRODUCT_ID LIMIT 10"
    ));
    queries.push(format!(
        "SELECT USER_ID, TRANSACTION_TYPE, sum(AMOUNT) AS s, count(*) FROM {files} GROUP BY 1, 2 ORDER BY s DESC, 1, 2 LIMIT 10"
    ));
    queries.push(format!(
        "SELECT sum(AMOUNT), count(*) FROM {files} WHERE ingestion_time >= now() - INTERVAL 30 MINUTE"
    ));
    let answers = duckdb(&queries);

    for ((query, filter), expected) in cases.iter().zip(&answers) {
        let page = server.call(
            "GET",
            &format!(
                "/api/v2/datasets/TRANSACTIONS_FLAT?{query}&fields=transaction_id&page_size=1000"
            ),
            Some(&token),
            None,
        );
        assert_eq!(page.status, 200, "{query}: {}", page.text);
        let ids: Vec<Value> = page.json["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["TRANSACTION_ID"].clone())
            .collect();
        let expected_ids: Vec<Value> = expected.iter().map(|row| row[0].clone()).collect();
        assert!(
            !expected_ids.is_empty() || filter.contains("AMOUNT ="),
            "{filter} selects nothing: a weak case"
        );
        assert_eq!(
            page.json["total"].as_u64().unwrap() as usize,
            expected_ids.len(),
            "{query}"
        );
        assert_eq!(ids, expected_ids, "{query}: same rows, same order");

        // Small pages cross file boundaries: a cursor walk and page numbers
        // give the same rows in the same order, each page with the total.
        let small = |position: &str| {
            let page = server.call(
                "GET",
                &format!(
                    "/api/v2/datasets/TRANSACTIONS_FLAT?{query}&fields=transaction_id&page_size=7&{position}"
                ),
                Some(&token),
                None,
            );
            assert_eq!(page.status, 200, "{query} {position}: {}", page.text);
            assert_eq!(
                page.json["total"].as_u64().unwrap() as usize,
                expected_ids.len()
            );
            page
        };
        let ids_of = |page: &support::Response| -> Vec<Value> {
            page.json["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["TRANSACTION_ID"].clone())
                .collect()
        };
        let (mut walked, mut numbered) = (Vec::new(), Vec::new());
        let mut position = "page=1".to_string();
        for n in 1.. {
            let page = small(&position);
            walked.extend(ids_of(&page));
            numbered.extend(ids_of(&small(&format!("page={n}"))));
            match page.json["next_cursor"].as_str() {
                Some(cursor) => position = format!("cursor={cursor}"),
                None => break,
            }
            assert!(n < 200, "{query}: the walk ends");
        }
        assert_eq!(walked, expected_ids, "{query}: cursor walk");
        assert_eq!(numbered[..], expected_ids[..], "{query}: page numbers");
    }

    let top = server.call(
        "GET",
        "/api/v2/metrics/top-products?limit=10",
        Some(&token),
        None,
    );
    let rows = top.json["rows"].as_array().unwrap();
    let expected = &answers[cases.len()];
    assert_eq!(rows.len(), expected.len());
    for (row, want) in rows.iter().zip(expected) {
        assert_eq!(
            json!([row["product_id"], row["total_quantity"]]),
            json!([want[0], want[1]])
        );
    }
    let per_user = server.call(
        "GET",
        "/api/v2/metrics/spent-per-user-type?limit=10",
        Some(&token),
        None,
    );
    let rows = per_user.json["rows"].as_array().unwrap();
    let expected = &answers[cases.len() + 1];
    for (row, want) in rows.iter().zip(expected) {
        assert_eq!(row["user_id"], want[0]);
        assert_eq!(row["transaction_type"], want[1]);
        assert!((row["total_spent"].as_f64().unwrap() - want[2].as_f64().unwrap()).abs() < 1e-6);
        assert_eq!(row["transaction_count"], want[3]);
    }
    let recent = server.call(
        "GET",
        "/api/v2/metrics/spent-recently?minutes=30",
        Some(&token),
        None,
    );
    let expected = &answers[cases.len() + 2][0];
    assert_eq!(recent.json["transactions"], expected[1]);
    assert!(
        (recent.json["total_spent"].as_f64().unwrap() - expected[0].as_f64().unwrap()).abs() < 1e-6
    );
}

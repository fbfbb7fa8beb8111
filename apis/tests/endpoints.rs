//! Every endpoint of the API server against a real PostgreSQL and a lake
//! written by the lake sink: the happy path, no token (401), a token
//! without the permission (403 naming it), bad parameters (400 naming the
//! parameter), and the `access_log` rows requests leave.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

use serde_json::{json, Value};
use support::{ApiServer, Response};

const YESTERDAY_COUNT: usize = 300;
const TODAY_COUNT: usize = 200;

fn server() -> &'static ApiServer {
    static SERVER: OnceLock<&'static ApiServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        lakehouse_testkit::start_forever(|| {
            let server = ApiServer::start(
                &[(1, YESTERDAY_COUNT), (0, TODAY_COUNT)],
                &[("LAKEHOUSE_API_SQL_MAX_ROWS", "250")],
            );
            for user in ["reader", "nobody", "clerk", "revokee"] {
                server.add_user(user, false);
            }
            let admin = server.token("admin");
            server.grant(&admin, "reader", "lake/TRANSACTIONS_FLAT", "read");
            server.grant(&admin, "reader", "lake/transaction_log", "read");
            server.grant(&admin, "clerk", "products", "view");
            server.grant(&admin, "revokee", "lake/TRANSACTIONS_FLAT", "read");
            server
        })
    })
}

fn admin() -> String {
    server().token("admin")
}

fn reader() -> String {
    server().token("reader")
}

fn nobody() -> String {
    server().token("nobody")
}

fn get(path: &str, token: Option<&str>) -> Response {
    server().call("GET", path, token, None)
}

fn assert_bad(response: &Response, parameter: &str) {
    assert_eq!(response.status, 400, "{}", response.text);
    assert_eq!(response.parameter(), Some(parameter), "{}", response.text);
    assert_eq!(response.code(), Some("bad_parameter"));
}

fn assert_forbidden(response: &Response, permission: &str, resource: &str) {
    assert_eq!(response.status, 403, "{}", response.text);
    let message = response.json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(permission) && message.contains(resource),
        "{message}"
    );
}

fn transactions() -> &'static [Value] {
    &server().transactions
}

#[test]
fn service_endpoints_need_no_token_and_document_every_path() {
    let health = get("/health", None);
    assert_eq!(health.status, 200, "{}", health.text);
    assert_eq!(health.json["dependencies"]["postgres"]["state"], "up");
    let openapi = get("/openapi.json", None);
    assert_eq!(openapi.status, 200);
    assert!(openapi.json["openapi"].as_str().unwrap().starts_with("3."));
    let paths = openapi.json["paths"].as_object().unwrap();
    for path in [
        "/health",
        "/metrics",
        "/api/token",
        "/api/v2/users",
        "/api/v2/users/{name}/tokens",
        "/api/v2/permissions",
        "/api/v2/audit",
        "/api/v1/products",
        "/api/v1/products/most-expensive",
        "/api/v1/products/{id}",
        "/api/v2/resources",
        "/api/v2/datasets/{name}",
        "/api/v2/datasets/{name}/versions",
        "/api/v2/warehouse/{table}",
        "/api/v2/metrics/spent-recently",
        "/api/v2/metrics/spent-per-user-type",
        "/api/v2/metrics/top-products",
        "/api/v2/sql",
        "/api/v2/repush/transactions/{transaction_id}",
        "/api/v2/repush/datasets/{name}",
        "/api/v2/repush/{job}",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from /openapi.json"
        );
    }
    let dataset_params = &paths["/api/v2/datasets/{name}"]["get"]["parameters"];
    let names: HashSet<&str> = dataset_params
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in [
        "page",
        "page_size",
        "cursor",
        "fields",
        "status",
        "amount_gt",
        "since",
        "version",
    ] {
        assert!(names.contains(name), "parameter {name} undocumented");
    }
    let docs = get("/docs", None);
    assert_eq!(docs.status, 200);
    assert!(docs.text.contains("swagger-ui-bundle.js") && docs.text.contains("/openapi.json"));
    assert!(
        !docs.text.contains("https://"),
        "the docs page loads nothing from outside"
    );
    let bundle = get("/docs/swagger-ui-bundle.js", None);
    assert_eq!(bundle.status, 200);
    assert!(bundle.text.len() > 100_000);
    let metrics = get("/metrics", None);
    assert!(
        metrics.text.contains("lakehouse_api_requests_total"),
        "{}",
        metrics.text
    );
    assert_eq!(get("/nowhere", None).status, 404);
}

#[test]
fn tokens_are_issued_for_the_right_password_only_and_revoked_at_once() {
    let s = server();
    let wrong = s.call(
        "POST",
        "/api/token",
        None,
        Some(json!({"username": "admin", "password": "wrong password"})),
    );
    assert_eq!(wrong.status, 401);
    let unknown = s.call(
        "POST",
        "/api/token",
        None,
        Some(json!({"username": "ghost", "password": "wrong password"})),
    );
    assert_eq!(unknown.status, 401);
    assert_eq!(
        unknown.json["error"]["message"],
        wrong.json["error"]["message"]
    );
    assert_bad(
        &s.call(
            "POST",
            "/api/token",
            None,
            Some(json!({"username": "admin"})),
        ),
        "password",
    );

    let token = s.token("revokee");
    assert_eq!(get("/api/v2/resources", Some(&token)).status, 200);
    assert_eq!(
        s.call("DELETE", "/api/token", Some(&token), None).status,
        204
    );
    let after = get("/api/v2/resources", Some(&token));
    assert_eq!(
        after.status, 401,
        "a revoked token stops working on the next request"
    );

    // An admin revokes every token of a user.
    let (first, second) = (s.token("revokee"), s.token("revokee"));
    let revoke = s.call(
        "DELETE",
        "/api/v2/users/revokee/tokens",
        Some(&admin()),
        None,
    );
    assert_eq!(revoke.status, 200, "{}", revoke.text);
    assert!(revoke.json["revoked"].as_u64().unwrap() >= 2);
    assert_eq!(get("/api/v2/resources", Some(&first)).status, 401);
    assert_eq!(get("/api/v2/resources", Some(&second)).status, 401);
    assert_forbidden(
        &s.call(
            "DELETE",
            "/api/v2/users/admin/tokens",
            Some(&nobody()),
            None,
        ),
        "admin",
        "admin",
    );
    assert_eq!(
        s.call("DELETE", "/api/v2/users/ghost/tokens", Some(&admin()), None)
            .status,
        404
    );

    // An expired token stops too.
    let token = s.token("revokee");
    let url = s.database_url.clone();
    let digest = lakehouse::identity::token_digest(&token);
    lakehouse_testkit::block_on(async move {
        let pool = lakehouse::postgres::pool(&url, 1).await.unwrap();
        sqlx::query(
            "UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = $1",
        )
        .bind(digest)
        .execute(&pool)
        .await
        .unwrap();
    });
    assert_eq!(get("/api/v2/resources", Some(&token)).status, 401);
    assert_eq!(get("/api/v2/resources", Some("lh_forged")).status, 401);
    assert_eq!(get("/api/v2/resources", None).status, 401);
}

#[test]
fn admins_create_users_and_grant_and_revoke_permissions() {
    let s = server();
    let admin = admin();
    let created = s.call(
        "POST",
        "/api/v2/users",
        Some(&admin),
        Some(json!({"username": "newcomer", "password": "long enough pw"})),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(
        s.call(
            "POST",
            "/api/v2/users",
            Some(&admin),
            Some(json!({"username": "newcomer", "password": "long enough pw"}))
        )
        .status,
        409
    );
    assert_bad(
        &s.call(
            "POST",
            "/api/v2/users",
            Some(&admin),
            Some(json!({"username": "x y", "password": "long enough pw"})),
        ),
        "username",
    );
    assert_bad(
        &s.call(
            "POST",
            "/api/v2/users",
            Some(&admin),
            Some(json!({"username": "shorty", "password": "short"})),
        ),
        "password",
    );
    assert_forbidden(
        &s.call(
            "POST",
            "/api/v2/users",
            Some(&nobody()),
            Some(json!({"username": "z", "password": "long enough pw"})),
        ),
        "admin",
        "admin",
    );
    assert_eq!(
        s.call(
            "POST",
            "/api/v2/users",
            None,
            Some(json!({"username": "z", "password": "long enough pw"}))
        )
        .status,
        401
    );

    let token = s.call(
        "POST",
        "/api/token",
        None,
        Some(json!({"username": "newcomer", "password": "long enough pw"})),
    );
    let token = token.json["access_token"].as_str().unwrap().to_string();
    assert_forbidden(
        &get("/api/v2/datasets/TRANSACTIONS_USD", Some(&token)),
        "read",
        "lake/TRANSACTIONS_USD",
    );
    let grant =
        json!({"username": "newcomer", "resource": "lake/TRANSACTIONS_USD", "permission": "read"});
    assert_eq!(
        s.call(
            "POST",
            "/api/v2/permissions",
            Some(&admin),
            Some(grant.clone())
        )
        .status,
        201
    );
    assert_eq!(
        s.call("POST", "/api/v2/permissions", Some(&admin), Some(grant))
            .status,
        200
    );
    assert_eq!(
        get("/api/v2/datasets/TRANSACTIONS_USD", Some(&token)).status,
        200,
        "a grant counts from the next request"
    );
    let listed = get("/api/v2/permissions?username=newcomer", Some(&admin));
    assert_eq!(listed.json.as_array().unwrap().len(), 1);
    assert_eq!(listed.json[0]["granted_by"], "admin");
    let revoke =
        "/api/v2/permissions?username=newcomer&resource=lake/TRANSACTIONS_USD&permission=read";
    assert_eq!(s.call("DELETE", revoke, Some(&admin), None).status, 204);
    assert_eq!(s.call("DELETE", revoke, Some(&admin), None).status, 404);
    assert_eq!(
        get("/api/v2/datasets/TRANSACTIONS_USD", Some(&token)).status,
        403,
        "a revoke counts from the next request"
    );

    for (body, parameter) in [
        (
            json!({"username": "newcomer", "resource": "lake/../etc", "permission": "read"}),
            "resource",
        ),
        (
            json!({"username": "newcomer", "resource": "lake/X", "permission": "fly"}),
            "permission",
        ),
        (
            json!({"username": "newcomer", "resource": "products", "permission": "read"}),
            "permission",
        ),
        (
            json!({"username": "ghost", "resource": "lake/X", "permission": "read"}),
            "username",
        ),
        (
            json!({"username": "newcomer", "resource": "lake/X"}),
            "permission",
        ),
    ] {
        assert_bad(
            &s.call("POST", "/api/v2/permissions", Some(&admin), Some(body)),
            parameter,
        );
    }
    assert_forbidden(
        &get("/api/v2/permissions", Some(&nobody())),
        "admin",
        "admin",
    );
    assert_bad(
        &get("/api/v2/permissions?colour=red", Some(&admin)),
        "colour",
    );
}

#[test]
fn products_are_paged_by_three_and_each_call_checks_its_right() {
    let s = server();
    let clerk = s.token("clerk");
    let page = get("/api/v1/products?page=1", Some(&clerk));
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(page.json["products"].as_array().unwrap().len(), 3);
    assert!(page.json["total"].as_i64().unwrap() >= 10);
    let total = page.json["total"].as_i64().unwrap();
    let last_page = (total + 2) / 3;
    let last = get(&format!("/api/v1/products?page={last_page}"), Some(&clerk));
    assert_eq!(
        last.json["products"].as_array().unwrap().len() as i64,
        total - (last_page - 1) * 3
    );
    assert_bad(&get("/api/v1/products?page=0", Some(&clerk)), "page");
    assert_bad(&get("/api/v1/products?page=x", Some(&clerk)), "page");
    assert_eq!(get("/api/v1/products", None).status, 401);
    assert_forbidden(
        &get("/api/v1/products", Some(&nobody())),
        "view",
        "products",
    );

    let most = get("/api/v1/products/most-expensive", Some(&clerk));
    assert_eq!(most.status, 200);
    let mut all = Vec::new();
    for n in 1..=last_page {
        all.extend(
            get(&format!("/api/v1/products?page={n}"), Some(&clerk)).json["products"]
                .as_array()
                .unwrap()
                .clone(),
        );
    }
    let max = all
        .iter()
        .map(|p| p["price"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert_eq!(most.json["price"].as_f64().unwrap(), max);

    let product = json!({"name": "Test Lamp", "price": 12.5, "description": "bright"});
    assert_forbidden(
        &s.call(
            "POST",
            "/api/v1/products",
            Some(&clerk),
            Some(product.clone()),
        ),
        "add",
        "products",
    );
    let admin = admin();
    s.grant(&admin, "clerk", "products", "add");
    let created = s.call("POST", "/api/v1/products", Some(&clerk), Some(product));
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json["id"].as_i64().unwrap();
    assert_eq!(created.json["price"], 12.5);
    assert_bad(
        &s.call(
            "POST",
            "/api/v1/products",
            Some(&clerk),
            Some(json!({"name": "", "price": 1})),
        ),
        "name",
    );
    assert_bad(
        &s.call(
            "POST",
            "/api/v1/products",
            Some(&clerk),
            Some(json!({"name": "x", "price": 1.234})),
        ),
        "price",
    );
    assert_bad(
        &s.call(
            "POST",
            "/api/v1/products",
            Some(&clerk),
            Some(json!({"name": "x", "price": "cheap"})),
        ),
        "price",
    );
    assert_bad(
        &s.call(
            "POST",
            "/api/v1/products",
            Some(&clerk),
            Some(json!({"name": "x"})),
        ),
        "price",
    );

    let path = format!("/api/v1/products/{id}");
    let update = json!({"name": "Test Lamp 2", "price": 13.99, "description": ""});
    assert_forbidden(
        &s.call("PUT", &path, Some(&clerk), Some(update.clone())),
        "update",
        "products",
    );
    s.grant(&admin, "clerk", "products", "update");
    let updated = s.call("PUT", &path, Some(&clerk), Some(update.clone()));
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.json["name"], "Test Lamp 2");
    assert_eq!(get(&path, Some(&clerk)).json["price"], 13.99);
    assert_eq!(
        s.call("PUT", "/api/v1/products/999999", Some(&clerk), Some(update))
            .status,
        404
    );
    assert_bad(&get("/api/v1/products/abc", Some(&clerk)), "id");

    assert_forbidden(
        &s.call("DELETE", &path, Some(&clerk), None),
        "delete",
        "products",
    );
    s.grant(&admin, "clerk", "products", "delete");
    assert_eq!(s.call("DELETE", &path, Some(&clerk), None).status, 204);
    assert_eq!(s.call("DELETE", &path, Some(&clerk), None).status, 404);
    assert_eq!(get(&path, Some(&clerk)).status, 404);

    let created = |rows: &[support::AccessRow]| {
        rows.iter().any(|(user, method, status, _, body)| {
            user.as_deref() == Some("clerk")
                && method == "POST"
                && *status == 201
                && body.as_deref().is_some_and(|b| b.contains("Test Lamp"))
        })
    };
    let refused = |rows: &[support::AccessRow]| {
        rows.iter()
            .any(|(user, _, status, _, _)| user.is_none() && *status == 401)
    };
    let logged = s.wait_access_log("/api/v1/products", |rows| created(rows) && refused(rows));
    assert!(created(&logged), "the call and its body are logged");
    assert!(refused(&logged), "refused calls are logged");
}

fn flat_page(query: &str) -> Response {
    get(
        &format!("/api/v2/datasets/TRANSACTIONS_FLAT?{query}"),
        Some(&reader()),
    )
}

#[test]
fn dataset_pages_filter_project_and_count() {
    let all = transactions();
    let page = flat_page("");
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(page.json["total"].as_u64().unwrap() as usize, all.len());
    assert_eq!(page.json["records"].as_array().unwrap().len(), 10);
    assert_eq!(page.json["page"], 1);

    let completed = all.iter().filter(|t| t["status"] == "completed").count();
    let filtered = flat_page("status=completed&page_size=1000");
    assert_eq!(filtered.json["total"].as_u64().unwrap() as usize, completed);
    assert!(filtered.json["records"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["STATUS"] == "completed"));

    let several = all
        .iter()
        .filter(|t| t["status"] == "completed" || t["status"] == "failed")
        .count();
    assert_eq!(
        flat_page("status=completed,failed").json["total"]
            .as_u64()
            .unwrap() as usize,
        several
    );

    let big = all
        .iter()
        .filter(|t| t["amount"].as_f64().unwrap() > 500.0)
        .count();
    assert_eq!(
        flat_page("amount_gt=500").json["total"].as_u64().unwrap() as usize,
        big
    );
    let combo = all
        .iter()
        .filter(|t| t["amount"].as_f64().unwrap() <= 250.0 && t["payment_method"] == "credit_card")
        .count();
    assert_eq!(
        flat_page("amount_lte=250&payment_method=credit_card").json["total"]
            .as_u64()
            .unwrap() as usize,
        combo
    );
    let country = all[0]["location"]["country"].as_str().unwrap();
    let in_country = all
        .iter()
        .filter(|t| t["location"]["country"] == country)
        .count();
    assert_eq!(
        flat_page(&format!("country={}", country.replace(' ', "%20"))).json["total"]
            .as_u64()
            .unwrap() as usize,
        in_country
    );

    let projected = flat_page("fields=transaction_id,amount&page_size=5");
    let record = projected.json["records"][0].as_object().unwrap();
    let mut keys: Vec<&String> = record.keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["AMOUNT", "TRANSACTION_ID"],
        "the lake's own names, asked for in any case"
    );

    for (query, parameter) in [
        ("fields=nope", "fields"),
        ("colour=red", "colour"),
        ("amount_gt=lots", "amount_gt"),
        ("amount_between=1", "amount_between"),
        ("page=0", "page"),
        ("page_size=1001", "page_size"),
        ("since=yesterday", "since"),
        ("cursor=garbage", "cursor"),
        ("status=a&status=b", "status"),
    ] {
        assert_bad(&flat_page(query), parameter);
    }
    assert_eq!(get("/api/v2/datasets/TRANSACTIONS_FLAT", None).status, 401);
    assert_forbidden(
        &get("/api/v2/datasets/TRANSACTIONS_FLAT", Some(&nobody())),
        "read",
        "lake/TRANSACTIONS_FLAT",
    );
    assert_eq!(
        get("/api/v2/datasets/NO_SUCH_STREAM", Some(&admin())).status,
        404
    );
}

#[test]
fn pages_and_cursors_walk_every_row_once_in_a_stable_order() {
    let total = transactions().len();
    let mut seen = HashSet::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("page_size=97&fields=transaction_id&cursor={c}"),
            None => "page_size=97&fields=transaction_id".to_string(),
        };
        let page = flat_page(&query);
        assert_eq!(page.status, 200, "{}", page.text);
        for record in page.json["records"].as_array().unwrap() {
            assert!(
                seen.insert(record["TRANSACTION_ID"].as_str().unwrap().to_string()),
                "a row came twice"
            );
        }
        pages += 1;
        match page.json["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
        assert!(pages < 100);
    }
    assert_eq!(seen.len(), total);
    // Page numbers give the same rows as the cursor walk, page after page.
    let by_number: Vec<Value> = (1..=3)
        .flat_map(|n| {
            flat_page(&format!("page_size=97&fields=transaction_id&page={n}")).json["records"]
                .as_array()
                .unwrap()
                .clone()
        })
        .collect();
    let again: Vec<Value> = (1..=3)
        .flat_map(|n| {
            flat_page(&format!("page_size=97&fields=transaction_id&page={n}")).json["records"]
                .as_array()
                .unwrap()
                .clone()
        })
        .collect();
    assert_eq!(by_number, again);
    assert_eq!(by_number.len(), 291);
}

#[test]
fn csv_and_ndjson_carry_the_same_rows() {
    let s = server();
    let token = reader();
    let path = "/api/v2/datasets/TRANSACTIONS_FLAT?status=failed&fields=transaction_id,amount,status&page_size=1000";
    let json = s.call("GET", path, Some(&token), None);
    let rows = json.json["records"].as_array().unwrap();
    let csv = s.call_with("GET", path, Some(&token), None, &[("Accept", "text/csv")]);
    assert_eq!(csv.status, 200);
    assert!(
        csv.content_type.starts_with("text/csv"),
        "{}",
        csv.content_type
    );
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(lines[0], "TRANSACTION_ID,AMOUNT,STATUS");
    assert_eq!(lines.len() - 1, rows.len());
    assert!(lines[1].starts_with(rows[0]["TRANSACTION_ID"].as_str().unwrap()));
    let ndjson = s.call_with(
        "GET",
        path,
        Some(&token),
        None,
        &[("Accept", "application/x-ndjson")],
    );
    assert_eq!(ndjson.content_type, "application/x-ndjson");
    let parsed: Vec<Value> = ndjson
        .text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(&parsed, rows);
}

#[test]
fn versions_are_ingestion_dates_and_a_version_is_the_lake_as_it_stood() {
    let token = reader();
    let versions = get("/api/v2/datasets/TRANSACTIONS_FLAT/versions", Some(&token));
    assert_eq!(versions.status, 200, "{}", versions.text);
    let dates: Vec<&str> = versions.json["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let today = chrono::Utc::now().date_naive();
    let yesterday = today - chrono::Duration::days(1);
    assert_eq!(dates, [yesterday.to_string(), today.to_string()]);
    let old = flat_page(&format!("version={yesterday}"));
    assert_eq!(
        old.json["total"].as_u64().unwrap() as usize,
        YESTERDAY_COUNT
    );
    let now = flat_page(&format!("version={today}"));
    assert_eq!(
        now.json["total"].as_u64().unwrap() as usize,
        YESTERDAY_COUNT + TODAY_COUNT
    );
    let since_today = flat_page(&format!("since={today}"));
    assert_eq!(
        since_today.json["total"].as_u64().unwrap() as usize,
        TODAY_COUNT
    );
    let missing = flat_page("version=2001-01-01");
    assert_eq!(missing.status, 404);
    assert!(missing.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("2001-01-01"));
    assert_bad(&flat_page("version=2026-02-30"), "version");
    assert_forbidden(
        &get(
            "/api/v2/datasets/TRANSACTIONS_FLAT/versions",
            Some(&nobody()),
        ),
        "read",
        "lake/TRANSACTIONS_FLAT",
    );
}

#[test]
fn names_and_versions_never_lead_outside_the_lake() {
    let admin = admin();
    for name in [
        "..",
        "..%2F..%2Fetc",
        "%2e%2e",
        "%252e%252e%252fetc",
        "_dlq",
        "_sink",
        ".hidden",
        "TRANSACTIONS_FLAT%2F..%2F..",
    ] {
        let response = get(&format!("/api/v2/datasets/{name}"), Some(&admin));
        assert!(
            matches!(response.status, 404 | 400),
            "{name}: {} {}",
            response.status,
            response.text
        );
        let response = get(&format!("/api/v2/datasets/{name}/versions"), Some(&admin));
        assert!(
            matches!(response.status, 404 | 400),
            "{name}: {}",
            response.status
        );
    }
    for version in ["../../etc", "%2e%2e%2f", "/etc/passwd"] {
        assert_bad(&flat_page(&format!("version={version}")), "version");
    }
    let outside = server().lake.parent().unwrap().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, server().lake.join("LINKED")).unwrap();
    assert_eq!(
        get("/api/v2/datasets/LINKED", Some(&admin)).status,
        404,
        "a symlinked folder is not a dataset"
    );
    // A link planted among a dataset's files, to a real Parquet file outside
    // the lake, is not read: the totals stay those of the lake's own files.
    let today = server().lake.join("TRANSACTIONS_USD").join(format!(
        "ingestion_date={}",
        chrono::Utc::now().date_naive()
    ));
    let real = std::fs::read_dir(&today)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
        .unwrap();
    std::fs::copy(real.path(), outside.join("copy.parquet")).unwrap();
    std::os::unix::fs::symlink(
        outside.join("copy.parquet"),
        today.join("part-00009-0000000000000000000-0000000000000099999.parquet"),
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let usd = get("/api/v2/datasets/TRANSACTIONS_USD", Some(&admin));
    assert_eq!(
        usd.json["total"].as_u64().unwrap() as usize,
        transactions().len(),
        "{}",
        usd.text
    );
    let counted = sql(&admin, "SELECT count(*) AS n FROM transactions_usd");
    assert_eq!(
        counted.json["rows"][0]["n"].as_u64().unwrap() as usize,
        transactions().len()
    );
}

#[test]
fn resources_list_what_the_caller_may_read() {
    let admin_view = get("/api/v2/resources", Some(&admin()));
    assert_eq!(admin_view.status, 200, "{}", admin_view.text);
    let lake = admin_view.json["lake"].as_array().unwrap();
    let names: Vec<&str> = lake.iter().map(|d| d["name"].as_str().unwrap()).collect();
    for expected in [
        "TRANSACTIONS_FLAT",
        "TRANSACTIONS_USD",
        "transaction_log",
        "TRANSACTIONS_COMPLETED",
    ] {
        assert!(names.contains(&expected), "{expected} not in {names:?}");
    }
    let flat = lake
        .iter()
        .find(|d| d["name"] == "TRANSACTIONS_FLAT")
        .unwrap();
    assert_eq!(
        flat["rows"].as_u64().unwrap() as usize,
        transactions().len()
    );
    assert_eq!(flat["partitions"], 2);
    assert!(flat["files"].as_u64().unwrap() >= 2 && flat["bytes"].as_u64().unwrap() > 0);
    assert_eq!(flat["resource"], "lake/TRANSACTIONS_FLAT");
    assert!(flat["columns"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "AMOUNT" && c["data_type"] == "double"));
    let reader_view = get("/api/v2/resources", Some(&reader()));
    let names: Vec<&str> = reader_view.json["lake"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["TRANSACTIONS_FLAT", "transaction_log"]);
    assert_eq!(get("/api/v2/resources", None).status, 401);
}

#[test]
fn warehouse_tables_are_paged_in_key_order() {
    let s = server();
    let url = s.database_url.clone();
    lakehouse_testkit::block_on(async move {
        let pool = lakehouse::postgres::pool(&url, 1).await.unwrap();
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS quantity_par_product (product_id TEXT PRIMARY KEY, total_quantity BIGINT, ingestion_time TIMESTAMPTZ NOT NULL DEFAULT now());
             INSERT INTO quantity_par_product (product_id, total_quantity)
             SELECT 'P' || lpad(n::text, 3, '0'), n * 2 FROM generate_series(1, 25) n ON CONFLICT DO NOTHING;",
        )
        .execute(&pool)
        .await
        .unwrap();
    });
    let admin = admin();
    let page = get(
        "/api/v2/warehouse/quantity_par_product?page=2&page_size=10",
        Some(&admin),
    );
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(page.json["total"], 25);
    let rows = page.json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 10);
    assert_eq!(rows[0]["product_id"], "P011");
    assert_eq!(rows[0]["total_quantity"], 22);
    let projected = get(
        "/api/v2/warehouse/quantity_par_product?fields=product_id&page=3&page_size=10",
        Some(&admin),
    );
    assert_eq!(projected.json["rows"].as_array().unwrap().len(), 5);
    assert_eq!(projected.json["rows"][0].as_object().unwrap().len(), 1);
    assert_bad(
        &get(
            "/api/v2/warehouse/quantity_par_product?fields=secret",
            Some(&admin),
        ),
        "fields",
    );
    assert_bad(
        &get(
            "/api/v2/warehouse/quantity_par_product?page_size=0",
            Some(&admin),
        ),
        "page_size",
    );
    assert_eq!(
        get("/api/v2/warehouse/users", Some(&admin)).status,
        404,
        "access-control tables are not warehouse tables"
    );
    assert_eq!(
        get("/api/v2/warehouse/lakehouse_sink_offsets", Some(&admin)).status,
        404
    );
    assert_forbidden(
        &get("/api/v2/warehouse/quantity_par_product", Some(&reader())),
        "read",
        "warehouse/quantity_par_product",
    );
    assert_eq!(
        get("/api/v2/warehouse/quantity_par_product", None).status,
        401
    );
    let listed = get("/api/v2/resources", Some(&admin));
    let table = listed.json["warehouse"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "quantity_par_product")
        .unwrap()
        .clone();
    assert_eq!(table["rows"], 25);
    assert_eq!(table["key"], json!(["product_id"]));
}

#[test]
fn metrics_agree_with_the_transactions_written() {
    let token = reader();
    let all = transactions();
    let mut quantity: BTreeMap<&str, i64> = BTreeMap::new();
    for t in all {
        *quantity
            .entry(t["product_id"].as_str().unwrap())
            .or_default() += t["quantity"].as_i64().unwrap();
    }
    let mut expected: Vec<(&str, i64)> = quantity.into_iter().collect();
    expected.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let top = get("/api/v2/metrics/top-products?limit=5", Some(&token));
    assert_eq!(top.status, 200, "{}", top.text);
    let rows = top.json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    for (row, (product, total)) in rows.iter().zip(&expected) {
        assert_eq!(row["product_id"], *product);
        assert_eq!(row["total_quantity"], *total);
    }

    let mut spent: BTreeMap<(String, String), f64> = BTreeMap::new();
    for t in all {
        let key = (
            t["user_id"].as_str().unwrap().to_string(),
            t["transaction_type"].as_str().unwrap().to_string(),
        );
        *spent.entry(key).or_default() += t["amount"].as_f64().unwrap();
    }
    let best = spent.values().cloned().fold(f64::MIN, f64::max);
    let per_user = get("/api/v2/metrics/spent-per-user-type?limit=3", Some(&token));
    assert_eq!(per_user.status, 200, "{}", per_user.text);
    assert!((per_user.json["rows"][0]["total_spent"].as_f64().unwrap() - best).abs() < 1e-6);

    // Today's records landed a moment ago; yesterday's a day ago.
    let today: f64 = all[YESTERDAY_COUNT..]
        .iter()
        .map(|t| t["amount"].as_f64().unwrap())
        .sum();
    let recent = get("/api/v2/metrics/spent-recently?minutes=30", Some(&token));
    assert_eq!(recent.status, 200, "{}", recent.text);
    assert_eq!(
        recent.json["transactions"].as_u64().unwrap() as usize,
        TODAY_COUNT
    );
    assert!((recent.json["total_spent"].as_f64().unwrap() - today).abs() < 1e-6);

    assert_bad(
        &get("/api/v2/metrics/spent-recently?minutes=0", Some(&token)),
        "minutes",
    );
    assert_bad(
        &get("/api/v2/metrics/top-products?limit=many", Some(&token)),
        "limit",
    );
    assert_forbidden(
        &get("/api/v2/metrics/top-products", Some(&nobody())),
        "read",
        "lake/TRANSACTIONS_FLAT",
    );
    assert_eq!(get("/api/v2/metrics/spent-per-user-type", None).status, 401);
}

fn sql(token: &str, query: &str) -> Response {
    server().call(
        "POST",
        "/api/v2/sql",
        Some(token),
        Some(json!({ "query": query })),
    )
}

#[test]
fn sql_runs_one_select_over_the_callers_datasets_only() {
    let token = reader();
    let count = sql(&token, "SELECT count(*) AS n FROM transactions_flat");
    assert_eq!(count.status, 200, "{}", count.text);
    assert_eq!(
        count.json["rows"][0]["n"].as_u64().unwrap() as usize,
        transactions().len()
    );
    let grouped = sql(
        &token,
        "SELECT status, count(*) AS n FROM TRANSACTIONS_FLAT GROUP BY status ORDER BY status",
    );
    let total: u64 = grouped.json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["n"].as_u64().unwrap())
        .sum();
    assert_eq!(total as usize, transactions().len());
    let capped = sql(&token, "SELECT transaction_id FROM transactions_flat");
    assert_eq!(capped.json["row_count"], 250);
    assert_eq!(capped.json["truncated"], true);

    for statement in [
        "DROP TABLE transactions_flat",
        "INSERT INTO transactions_flat (transaction_id) VALUES ('x')",
        "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '/etc'",
        "COPY (SELECT 1) TO '/tmp/out.parquet'",
        "SELECT 1; SELECT 2",
        "SELECT * FROM no_such_dataset",
        "SELECT nope FROM transactions_flat",
        "",
    ] {
        assert_bad(&sql(&token, statement), "query");
    }
    let syntax = sql(&token, "SELECT status\nFROM transactions_flat\nWHERE (");
    assert_bad(&syntax, "query");
    assert!(
        syntax.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Line: 3"),
        "{}",
        syntax.text
    );
    assert_forbidden(
        &sql(&token, "SELECT count(*) FROM transactions_usd"),
        "read",
        "lake/TRANSACTIONS_USD",
    );
    assert_forbidden(
        &sql(&token, "SELECT f.transaction_id FROM transactions_flat f JOIN transactions_usd u ON f.transaction_id = u.transaction_id"),
        "read",
        "lake/TRANSACTIONS_USD",
    );
    assert_bad(
        &server().call(
            "POST",
            "/api/v2/sql",
            Some(&token),
            Some(json!({"sql": "SELECT 1"})),
        ),
        "sql",
    );
    assert_eq!(
        server()
            .call(
                "POST",
                "/api/v2/sql",
                None,
                Some(json!({"query": "SELECT 1"}))
            )
            .status,
        401
    );
}

#[test]
fn the_audit_trail_records_every_call_without_secrets() {
    let s = server();
    let token = reader();
    let _ = flat_page("status=pending");
    let _ = get("/api/v2/datasets/TRANSACTIONS_FLAT", Some(&nobody()));
    let _ = get("/api/v2/datasets/TRANSACTIONS_FLAT", None);
    let admin = admin();
    let wanted = |entries: &[Value]| {
        entries.iter().any(|e| {
            e["username"] == "reader" && e["query"] == "status=pending" && e["status"] == 200
        }) && entries
            .iter()
            .any(|e| e["username"] == "nobody" && e["status"] == 403)
            && entries
                .iter()
                .any(|e| e["username"].is_null() && e["status"] == 401)
    };
    let started = std::time::Instant::now();
    let entries = loop {
        let audit = get(
            "/api/v2/audit?resource=lake/TRANSACTIONS_FLAT&page_size=1000",
            Some(&admin),
        );
        assert_eq!(audit.status, 200, "{}", audit.text);
        let entries = audit.json["entries"].as_array().unwrap().clone();
        if wanted(&entries) || started.elapsed().as_secs() > 15 {
            break entries;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(
        wanted(&entries),
        "the call, the refused one and the anonymous one are all in the trail"
    );
    assert!(entries.iter().all(|e| e["duration_ms"].as_f64().is_some()));
    assert_forbidden(&get("/api/v2/audit", Some(&token)), "admin", "admin");
    assert_bad(
        &get("/api/v2/audit?resource=lake/..", Some(&admin)),
        "resource",
    );

    let logins = s.wait_access_log("/api/token", |rows| !rows.is_empty());
    assert!(!logins.is_empty());
    for (_, _, _, query, body) in &logins {
        let text = format!("{query:?}{body:?}");
        assert!(
            !text.contains(support::PASSWORD),
            "a password reached access_log: {text}"
        );
        assert!(!text.contains("lh_"), "a token reached access_log: {text}");
    }
    let logs = std::fs::read_dir(s.logs.join("api")).unwrap();
    for entry in logs.flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        assert!(
            !text.contains(support::PASSWORD) && !text.contains(&token),
            "a secret reached the server log"
        );
    }
}

/// Sends raw bytes and returns the status line of the answer.
fn raw_exchange(request: &[u8]) -> String {
    use std::io::{BufRead, BufReader, Write};
    let address = server().url.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    // The server may answer (and close) before it has read everything.
    let _ = stream.write_all(request);
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line
}

#[test]
fn oversized_bodies_get_413_without_being_read() {
    let token = reader();
    let declared = format!(
        "POST /api/v2/sql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{{\"query\": \"",
        8 << 20
    );
    assert!(
        raw_exchange(declared.as_bytes()).starts_with("HTTP/1.1 413"),
        "a declared length over the limit"
    );
    let mut chunked = format!(
        "POST /api/v2/sql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..40 {
        chunked.extend_from_slice(
            format!("{:x}\r\n{}\r\n", 64 << 10, "x".repeat(64 << 10)).as_bytes(),
        );
    }
    assert!(
        raw_exchange(&chunked).starts_with("HTTP/1.1 413"),
        "a chunked body that grows over the limit"
    );
}

#[test]
fn every_endpoint_leaves_an_access_log_row() {
    let s = server();
    s.add_user("auditor", true);
    let token = s.token("auditor");
    let calls: Vec<(&str, &str, Option<Value>)> = vec![
        ("GET", "/health", None),
        ("GET", "/metrics", None),
        ("GET", "/openapi.json", None),
        ("GET", "/docs", None),
        ("GET", "/api/v2/resources", None),
        ("GET", "/api/v2/datasets/TRANSACTIONS_FLAT", None),
        ("GET", "/api/v2/datasets/TRANSACTIONS_FLAT/versions", None),
        ("GET", "/api/v2/warehouse/no_such_table", None),
        ("GET", "/api/v2/metrics/spent-recently", None),
        ("GET", "/api/v2/metrics/spent-per-user-type", None),
        ("GET", "/api/v2/metrics/top-products", None),
        (
            "POST",
            "/api/v2/sql",
            Some(json!({"query": "SELECT 1 AS one"})),
        ),
        ("GET", "/api/v2/audit", None),
        ("GET", "/api/v2/permissions", None),
        (
            "POST",
            "/api/v2/users",
            Some(json!({"username": "audited", "password": "long enough pw"})),
        ),
        ("DELETE", "/api/v2/users/audited/tokens", None),
        ("GET", "/api/v1/products", None),
        ("GET", "/api/v1/products/most-expensive", None),
        ("GET", "/api/v1/products/1", None),
        ("POST", "/api/v2/purge", Some(json!({"dry_run": true}))),
        ("GET", "/api/v2/purge/runs", None),
        ("GET", "/api/v2/search?q=completed", None),
        ("GET", "/api/v2/ml/models", None),
    ];
    let mut expected = Vec::new();
    for (method, path, body) in calls {
        let status = s.call(method, path, Some(&token), body).status;
        expected.push((method, path, status));
    }
    for (method, path, status) in expected {
        let has_row = |rows: &[support::AccessRow]| {
            rows.iter().any(|(user, m, st, _, _)| {
                user.as_deref() == Some("auditor") && m == method && *st == i32::from(status)
            })
        };
        let rows = s.wait_access_log(path.split('?').next().unwrap(), has_row);
        assert!(
            has_row(&rows),
            "no access_log row for {method} {path} ({status})"
        );
    }
}

#[test]
fn purges_remove_only_expired_partitions_and_only_when_not_a_dry_run() {
    // A server of its own: its lake loses a partition.
    let s = ApiServer::start(&[(40, 30), (0, 20)], &[]);
    s.add_user("plain", false);
    let admin = s.token("admin");
    let plain = s.token("plain");
    let expired = chrono::Utc::now().date_naive() - chrono::Duration::days(40);
    let expired_dir = s
        .lake
        .join("transaction_log")
        .join(format!("ingestion_date={expired}"));
    assert!(expired_dir.is_dir());
    let total = |s: &ApiServer| {
        s.call(
            "GET",
            "/api/v2/datasets/transaction_log?page_size=1",
            Some(&admin),
            None,
        )
        .json["total"]
            .as_u64()
    };
    assert_eq!(total(&s), Some(50));

    let purge =
        |token: Option<&str>, body: Value| s.call("POST", "/api/v2/purge", token, Some(body));
    assert_eq!(purge(None, json!({"dry_run": true})).status, 401);
    assert_forbidden(
        &purge(Some(&plain), json!({"dry_run": true})),
        "admin",
        "admin",
    );
    assert_bad(
        &purge(Some(&admin), json!({"retention_days": 30})),
        "dry_run",
    );
    assert_bad(
        &purge(
            Some(&admin),
            json!({"dry_run": true, "retention_days": 99999}),
        ),
        "retention_days",
    );
    assert_bad(
        &purge(
            Some(&admin),
            json!({"dry_run": true, "retention": {"transaction_log": 99999}}),
        ),
        "retention.transaction_log",
    );
    assert_bad(
        &purge(Some(&admin), json!({"dry_run": true, "days": 3})),
        "days",
    );
    // A retention for a topic the lake does not hold (a typo) is refused.
    assert_bad(
        &purge(
            Some(&admin),
            json!({"dry_run": true, "retention": {"NO_SUCH_TOPIC": 3}}),
        ),
        "retention.NO_SUCH_TOPIC",
    );

    // A dry run names the expired partitions of every stream and removes nothing.
    let dry = purge(Some(&admin), json!({"dry_run": true, "retention_days": 30}));
    assert_eq!(dry.status, 200, "{}", dry.text);
    assert_eq!(dry.json["dry_run"], true);
    let partitions = dry.json["partitions"].as_array().unwrap();
    assert!(partitions.len() > 1, "{}", dry.text);
    assert!(partitions
        .iter()
        .all(|p| p["date"] == expired.to_string() && p["retention_days"] == 30));
    let raw = partitions
        .iter()
        .find(|p| p["topic"] == "transaction_log" && p["dead_letters"] == false)
        .expect("the raw stream's partition");
    assert_eq!(raw["rows"], 30);
    assert!(expired_dir.is_dir(), "a dry run removes nothing");
    assert_eq!(total(&s), Some(50));

    // A per-topic retention keeps that topic's partition.
    let kept = purge(
        Some(&admin),
        json!({"dry_run": true, "retention_days": 30, "retention": {"transaction_log": 60}}),
    );
    assert!(!kept.json["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["topic"] == "transaction_log"));

    // The search index holds the expired day's records until the purge.
    let old_id = s.transactions[0]["transaction_id"]
        .as_str()
        .unwrap()
        .to_string();
    let found = s.wait_search(&admin, &format!("q={old_id}"), |p| {
        p["total"].as_u64() > Some(0)
    });
    assert!(found["total"].as_u64() > Some(0), "{found}");

    // The real run removes them.
    let real = purge(
        Some(&admin),
        json!({"dry_run": false, "retention_days": 30}),
    );
    assert_eq!(real.status, 200, "{}", real.text);
    assert_eq!(real.json["dry_run"], false);
    assert_eq!(real.json["rows"], dry.json["rows"]);
    assert!(!expired_dir.exists());
    let started = std::time::Instant::now();
    while total(&s) != Some(20) && started.elapsed() < std::time::Duration::from_secs(5) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(total(&s), Some(20));
    // ... and they leave the index with it.
    let gone = s.wait_search(&admin, &format!("q={old_id}"), |p| p["total"] == 0);
    assert_eq!(gone["total"], 0, "{gone}");
    let again = purge(Some(&admin), json!({"dry_run": true, "retention_days": 30}));
    assert_eq!(again.json["partitions"], json!([]));

    // The runs, newest first.
    let runs = s.call("GET", "/api/v2/purge/runs?limit=2", Some(&admin), None);
    assert_eq!(runs.status, 200, "{}", runs.text);
    let runs = runs.json.as_array().unwrap().clone();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["dry_run"], true);
    assert_eq!(runs[0]["partitions"], json!([]));
    assert_eq!(runs[1]["dry_run"], false);
    assert_eq!(
        s.call("GET", "/api/v2/purge/runs", Some(&admin), None)
            .json
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_bad(
        &s.call("GET", "/api/v2/purge/runs?limit=0", Some(&admin), None),
        "limit",
    );
    assert_eq!(s.call("GET", "/api/v2/purge/runs", None, None).status, 401);
    assert_forbidden(
        &s.call("GET", "/api/v2/purge/runs", Some(&plain), None),
        "admin",
        "admin",
    );

    // Each call is audited, refused ones included.
    let rows = s.wait_access_log("/api/v2/purge", |rows| rows.len() >= 9);
    assert!(rows.iter().any(
        |(user, method, status, _, _)| user.as_deref() == Some("admin")
            && method == "POST"
            && *status == 200
    ));
    assert!(rows
        .iter()
        .any(|(user, _, status, _, _)| user.as_deref() == Some("plain") && *status == 403));
}

/// Every hit of a search page, with its dataset.
fn search_hits(page: &Value) -> Vec<(String, Value)> {
    let mut hits = Vec::new();
    for resource in page["resources"].as_array().unwrap() {
        for file in resource["files"].as_array().unwrap() {
            for hit in file["hits"].as_array().unwrap() {
                hits.push((
                    resource["dataset"].as_str().unwrap().to_string(),
                    hit.clone(),
                ));
            }
        }
    }
    hits
}

#[test]
fn search_finds_ids_and_words_among_the_datasets_the_caller_may_read() {
    let s = server();
    let admin = admin();
    let all = |page: &Value| page["total"].as_u64().unwrap_or(0) > 0;
    // The index catches up with the lake after the server starts.
    let id = transactions()[7]["transaction_id"]
        .as_str()
        .unwrap()
        .to_string();
    let page = s.wait_search(&admin, &format!("q={id}&page_size=100"), all);
    let hits = search_hits(&page);
    assert!(!hits.is_empty(), "{page}");
    // Every hit is that transaction; its raw record and its flat one are there.
    for (_, hit) in &hits {
        assert!(hit["record"].to_string().contains(&id), "{hit}");
        assert!(hit["score"].as_f64().unwrap() > 0.0);
        assert!(hit["kafka_offset"].as_i64().unwrap() >= 0);
    }
    let datasets: HashSet<&str> = hits.iter().map(|(d, _)| d.as_str()).collect();
    assert!(datasets.contains("transaction_log"), "{datasets:?}");
    assert!(datasets.contains("TRANSACTIONS_FLAT"), "{datasets:?}");
    // An id in lower case is the same id.
    let lower = get(
        &format!("/api/v2/search?q={}", id.to_lowercase()),
        Some(&admin),
    );
    assert_eq!(lower.json["total"], page["total"], "{}", lower.text);

    // Words: a city, every hit holding it.
    let city = transactions()[3]["location"]["city"]
        .as_str()
        .unwrap()
        .to_string();
    let word = city.split_whitespace().next().unwrap().to_string();
    let page = get(
        &format!(
            "/api/v2/search?q={}&resource=TRANSACTIONS_FLAT&page_size=50",
            word
        ),
        Some(&admin),
    );
    assert_eq!(page.status, 200, "{}", page.text);
    let hits = search_hits(&page.json);
    let expected = transactions()
        .iter()
        .filter(|t| {
            t["location"]["city"].as_str().is_some_and(|c| {
                c.to_lowercase()
                    .split_whitespace()
                    .any(|w| w == word.to_lowercase())
            })
        })
        .count() as u64;
    assert!(
        page.json["total"].as_u64().unwrap() >= expected,
        "{}",
        page.text
    );
    assert!(hits.iter().all(|(d, h)| d == "TRANSACTIONS_FLAT"
        && h["record"]
            .to_string()
            .to_lowercase()
            .contains(&word.to_lowercase())));

    // `since` today leaves yesterday's records out.
    let today = chrono::Utc::now().date_naive().to_string();
    let recent = get(
        &format!("/api/v2/search?q={word}&since={today}&page_size=100"),
        Some(&admin),
    );
    assert!(search_hits(&recent.json)
        .iter()
        .all(|(_, h)| h["ingestion_date"].as_str().unwrap() >= today.as_str()));
    assert!(recent.json["total"].as_u64() <= page.json["total"].as_u64().map(|t| t * 20));

    // Pages: the second page carries on where the first stopped.
    let first = get(
        &format!("/api/v2/search?q={word}&page_size=2"),
        Some(&admin),
    );
    let second = get(
        &format!("/api/v2/search?q={word}&page_size=2&page=2"),
        Some(&admin),
    );
    let offsets = |p: &Response| -> Vec<(String, i64)> {
        search_hits(&p.json)
            .into_iter()
            .map(|(d, h)| (d, h["kafka_offset"].as_i64().unwrap()))
            .collect()
    };
    if first.json["total"].as_u64().unwrap() > 2 {
        assert!(offsets(&first)
            .iter()
            .all(|o| !offsets(&second).contains(o)));
    }

    // A reader sees only what it may read; nobody sees nothing.
    let reader_page = get(
        &format!("/api/v2/search?q={id}&page_size=100"),
        Some(&reader()),
    );
    let readable: HashSet<String> = search_hits(&reader_page.json)
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    assert_eq!(
        readable,
        HashSet::from([
            "TRANSACTIONS_FLAT".to_string(),
            "transaction_log".to_string()
        ]),
        "{}",
        reader_page.text
    );
    let none = get(&format!("/api/v2/search?q={id}"), Some(&nobody()));
    assert_eq!(none.json["total"], 0, "{}", none.text);
    let unreadable = datasets
        .iter()
        .find(|d| !readable.contains(**d))
        .expect("a dataset the reader may not read");
    assert_forbidden(
        &get(
            &format!("/api/v2/search?q={id}&resource={unreadable}"),
            Some(&reader()),
        ),
        "read",
        &format!("lake/{unreadable}"),
    );

    // Refusals.
    assert_eq!(get("/api/v2/search?q=x", None).status, 401);
    assert_bad(&get("/api/v2/search", Some(&admin)), "q");
    assert_bad(&get("/api/v2/search?q=%20", Some(&admin)), "q");
    assert_bad(&get("/api/v2/search?q=%22unclosed", Some(&admin)), "q");
    assert_bad(
        &get("/api/v2/search?q=x&since=2026-02-30", Some(&admin)),
        "since",
    );
    assert_bad(&get("/api/v2/search?q=x&page=0", Some(&admin)), "page");
    assert_bad(
        &get("/api/v2/search?q=x&page_size=101", Some(&admin)),
        "page_size",
    );
    assert_bad(&get("/api/v2/search?q=x&sort=score", Some(&admin)), "sort");
    assert_eq!(
        get("/api/v2/search?q=x&resource=NO_SUCH", Some(&admin)).status,
        404
    );
}

#[test]
fn a_model_is_trained_as_a_job_saved_listed_and_used_for_predictions() {
    let s = server();
    let admin = admin();
    let train =
        |token: Option<&str>, body: Value| s.call("POST", "/api/v2/ml/train", token, Some(body));
    let good = json!({
        "dataset": "TRANSACTIONS_FLAT",
        "target": "amount > 500",
        // Amount with tax depends on the amount by construction.
        "features": ["amount_with_tax", "payment_method"],
    });
    assert_eq!(train(None, good.clone()).status, 401);
    assert_forbidden(
        &train(Some(&reader()), good.clone()),
        "execute",
        "lake/TRANSACTIONS_FLAT",
    );
    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        body[key] = value;
        body
    };
    assert_bad(
        &train(Some(&admin), with("target", json!("amount"))),
        "target",
    );
    assert_bad(
        &train(Some(&admin), with("target", json!("nope == 1"))),
        "target",
    );
    assert_bad(
        &train(Some(&admin), with("features", json!(["nope"]))),
        "features",
    );
    assert_bad(
        &train(Some(&admin), with("features", json!(["amount_x"]))),
        "features",
    );
    assert_bad(
        &train(Some(&admin), with("features", json!([]))),
        "features",
    );
    // The target's own column is not a feature.
    assert_bad(
        &train(Some(&admin), with("features", json!(["AMOUNT"]))),
        "features",
    );
    assert_bad(&train(Some(&admin), with("max_rows", json!(5))), "max_rows");
    assert_bad(
        &train(Some(&admin), with("held_out", json!(0.9))),
        "held_out",
    );
    assert_bad(&train(Some(&admin), with("model", json!("svm"))), "model");
    assert_bad(&train(Some(&admin), with("epochs", json!(3))), "epochs");
    assert_eq!(
        train(Some(&admin), with("dataset", json!("NO_SUCH"))).status,
        404
    );

    for kind in ["logistic_regression", "random_forest"] {
        let started = train(Some(&admin), with("model", json!(kind)));
        assert_eq!(started.status, 202, "{}", started.text);
        let status_path = started.json["status"].as_str().unwrap().to_string();
        let begun = std::time::Instant::now();
        let job = loop {
            let job = s.call("GET", &status_path, Some(&admin), None);
            assert_eq!(job.status, 200, "{}", job.text);
            if job.json["state"] != "running" {
                break job.json;
            }
            assert!(
                begun.elapsed() < std::time::Duration::from_secs(120),
                "{job:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        assert_eq!(job["state"], "done", "{job}");
        assert_eq!(job["progress"], 1.0);
        let model_id = job["model_id"].as_str().unwrap().to_string();
        assert_eq!(
            s.call("GET", &status_path, Some(&nobody()), None).status,
            403
        );

        // Listed with its held-out quality next to the baseline.
        let models = s.call("GET", "/api/v2/ml/models", Some(&reader()), None);
        let model = models
            .json
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == model_id.as_str())
            .unwrap_or_else(|| panic!("{}", models.text))
            .clone();
        assert_eq!(model["kind"], kind);
        assert_eq!(model["target"]["column"], "AMOUNT");
        let quality = &model["quality"];
        let (accuracy, baseline) = (
            quality["accuracy"].as_f64().unwrap(),
            quality["baseline_accuracy"].as_f64().unwrap(),
        );
        assert!(accuracy > baseline + 0.1, "{kind}: {model}");
        assert_eq!(quality["beats_baseline"], true, "{quality}");
        assert_eq!(quality["held_out_rows"], 100, "{quality}");
        let confusion = &quality["confusion"];
        let counted: u64 = [
            "true_positive",
            "false_positive",
            "true_negative",
            "false_negative",
        ]
        .iter()
        .map(|k| confusion[k].as_u64().unwrap())
        .sum();
        assert_eq!(counted, 100);
        let none = s.call("GET", "/api/v2/ml/models", Some(&nobody()), None);
        assert!(!none.text.contains(&model_id));

        // Predictions: one per row, a clear answer for rows it cannot take.
        let method = transactions()[0]["payment_method"].as_str().unwrap();
        let predict = |token: &str, body: Value| {
            s.call(
                "POST",
                &format!("/api/v2/ml/models/{model_id}/predict"),
                Some(token),
                Some(body),
            )
        };
        let answer = predict(
            &reader(),
            json!({"rows": [
                {"amount_with_tax": 1150.0, "payment_method": method},
                {"AMOUNT_WITH_TAX": 3.5, "PAYMENT_METHOD": method},
                {"payment_method": method},
                {"amount_with_tax": 10, "payment_method": "bartering"},
            ]}),
        );
        assert_eq!(answer.status, 200, "{}", answer.text);
        let p = answer.json["predictions"].as_array().unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(p[0]["prediction"], true, "{}", answer.text);
        assert_eq!(p[1]["prediction"], false, "{}", answer.text);
        assert!(p[2]["error"].as_str().unwrap().contains("missing"));
        assert!(p[3]["error"]
            .as_str()
            .unwrap()
            .contains("not seen in training"));
        assert_forbidden(
            &predict(&nobody(), json!({"rows": [{"amount_with_tax": 1}]})),
            "read",
            "lake/TRANSACTIONS_FLAT",
        );
        assert_bad(&predict(&admin, json!({"rows": []})), "rows");
    }
    assert_eq!(
        s.call(
            "POST",
            &format!("/api/v2/ml/models/{}/predict", "0".repeat(32)),
            Some(&admin),
            Some(json!({"rows": [{"amount_with_tax": 1}]}))
        )
        .status,
        404
    );
    assert_eq!(
        s.call("GET", "/api/v2/ml/jobs/nope", Some(&admin), None)
            .status,
        404
    );
}

//! The harness's PostgreSQL: private databases per test, the access-control
//! schema, and a cluster that survives a kill -9 with its committed data.

use std::time::Duration;

use lakehouse::postgres::{apply_user_schema, connect_with_retry};
use lakehouse_testkit::{block_on, Postgres, TestContext};
use sqlx::Connection;

#[test]
fn each_context_gets_its_own_database_with_the_user_schema() {
    let mut a = TestContext::new("pg_a");
    let mut b = TestContext::new("pg_b");
    let (url_a, url_b) = (a.database(), b.database());
    assert_ne!(url_a, url_b);
    block_on(async {
        let mut conn = connect_with_retry(&url_a, Duration::from_secs(10))
            .await
            .unwrap();
        apply_user_schema(&mut conn).await.unwrap();
        apply_user_schema(&mut conn)
            .await
            .expect("applying the schema twice is harmless");
        sqlx::query(
            "INSERT INTO users (username, password_hash) VALUES ('ada', '$argon2id$v=19$x')",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        let plain =
            sqlx::query("INSERT INTO users (username, password_hash) VALUES ('bob', 'hunter2')")
                .execute(&mut conn)
                .await;
        assert!(plain.is_err(), "a plain password is refused by the schema");

        let mut other = connect_with_retry(&url_b, Duration::from_secs(10))
            .await
            .unwrap();
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'users'",
        )
        .fetch_one(&mut other)
        .await
        .unwrap();
        assert_eq!(tables, 0, "the other test's database is untouched");
        conn.close().await.unwrap();
    });
}

#[test]
fn committed_rows_survive_a_postgres_kill() {
    let mut pg = Postgres::start();
    let url = pg.url("postgres");
    block_on(async {
        let mut conn = connect_with_retry(&url, Duration::from_secs(10))
            .await
            .unwrap();
        sqlx::query("CREATE TABLE kept (id int primary key)")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("INSERT INTO kept SELECT generate_series(1, 100)")
            .execute(&mut conn)
            .await
            .unwrap();
    });
    pg.kill();
    pg.restart();
    let count: i64 = block_on(async {
        let mut conn = connect_with_retry(&url, Duration::from_secs(30))
            .await
            .unwrap();
        sqlx::query_scalar("SELECT count(*) FROM kept")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    });
    assert_eq!(count, 100);
}

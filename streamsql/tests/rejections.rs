//! Statements outside the supported subset, or wrong, are rejected when the
//! file is loaded, with the statement, line, column and a precise reason.

use lakehouse_streamsql::load;

const SOURCE: &str =
    "CREATE STREAM src (id VARCHAR, amount DOUBLE, city VARCHAR, loc STRUCT<city VARCHAR>) \
    WITH (KAFKA_TOPIC='in', VALUE_FORMAT='JSON');\n";

/// Loads `SOURCE` plus `statement` (on line 2) and returns the error text.
fn reject(statement: &str) -> (usize, u32, String) {
    let err = load(&format!("{SOURCE}{statement}")).expect_err("the statement must be rejected");
    (err.statement, err.pos.line, err.to_string())
}

fn assert_rejected(statement: &str, needle: &str) {
    let (number, line, text) = reject(statement);
    assert_eq!(number, 2, "{text}");
    assert!(line >= 2, "{text}");
    assert!(text.contains(needle), "expected {needle:?} in: {text}");
    assert!(text.starts_with("statement 2 ("), "{text}");
}

#[test]
fn unsupported_statement_kinds() {
    assert_rejected("DROP STREAM src;", "unsupported statement 'DROP'");
    assert_rejected(
        "INSERT INTO src SELECT * FROM src;",
        "unsupported statement 'INSERT'",
    );
    assert_rejected(
        "CREATE OR REPLACE STREAM s AS SELECT * FROM src;",
        "CREATE OR REPLACE is not supported",
    );
}

#[test]
fn joins_subqueries_and_partition_by() {
    assert_rejected(
        "CREATE STREAM s AS SELECT * FROM src JOIN other ON id = id;",
        "joins are not supported",
    );
    assert_rejected(
        "CREATE STREAM s AS SELECT * FROM src PARTITION BY id;",
        "PARTITION BY is not supported",
    );
    assert_rejected(
        "CREATE STREAM s AS SELECT * FROM src WHERE id IN (SELECT id FROM src);",
        "subqueries are not supported",
    );
}

#[test]
fn unknown_names() {
    assert_rejected(
        "CREATE STREAM s AS SELECT id FROM nowhere;",
        "unknown stream NOWHERE; defined so far: SRC",
    );
    assert_rejected(
        "CREATE STREAM s AS SELECT idd FROM src;",
        "unknown column IDD in SRC",
    );
    assert_rejected(
        "CREATE STREAM s AS SELECT loc->town FROM src;",
        "STRUCT has no field TOWN",
    );
    assert_rejected(
        "CREATE STREAM s AS SELECT FOO(id) FROM src;",
        "unknown function FOO",
    );
    assert_rejected(
        "CREATE STREAM src AS SELECT id FROM src;",
        "SRC is already defined by statement 1",
    );
}

#[test]
fn type_errors() {
    assert_rejected(
        "CREATE STREAM s AS SELECT id FROM src WHERE amount > 'big';",
        "cannot compare DOUBLE with VARCHAR",
    );
    assert_rejected(
        "CREATE STREAM s AS SELECT id FROM src WHERE amount;",
        "WHERE needs a BOOLEAN condition, found DOUBLE",
    );
    assert_rejected(
        "CREATE STREAM s AS SELECT id + 1 FROM src;",
        "'+' does not join strings; use CONCAT",
    );
    assert_rejected(
        "CREATE STREAM s AS SELECT CONCAT(id, amount) FROM src;",
        "CONCAT takes VARCHAR arguments, found DOUBLE",
    );
    assert_rejected(
        "CREATE STREAM s AS SELECT loc->city->x FROM src;",
        "'->' needs a STRUCT, found VARCHAR",
    );
}

#[test]
fn aggregation_rules() {
    assert_rejected(
        "CREATE STREAM s AS SELECT SUM(amount) FROM src;",
        "aggregate function SUM is only allowed in CREATE TABLE",
    );
    assert_rejected(
        "CREATE TABLE t AS SELECT city, SUM(amount) FROM src;",
        "needs GROUP BY",
    );
    assert_rejected(
        "CREATE TABLE t AS SELECT city, id, COUNT(*) FROM src GROUP BY city;",
        "column ID must be in GROUP BY or inside an aggregate",
    );
    // A misspelt aggregate is named as such, in tables as in streams.
    assert_rejected(
        "CREATE TABLE t AS SELECT city, SUMM(amount) AS total FROM src GROUP BY city;",
        "unknown function SUMM",
    );
    assert_rejected(
        "CREATE STREAM s AS SELECT SUMM(amount) AS total FROM src;",
        "unknown function SUMM",
    );
    assert_rejected(
        "CREATE TABLE t AS SELECT COUNT(*) AS n FROM src GROUP BY city;",
        "every GROUP BY expression must also appear in the SELECT list",
    );
    assert_rejected(
        "CREATE TABLE t AS SELECT city, SUM(id) FROM src GROUP BY city;",
        "SUM does not accept VARCHAR",
    );
    assert_rejected(
        "CREATE TABLE t AS SELECT city, id, COUNT(*) FROM src GROUP BY city, id;",
        "needs WITH (KEY_FORMAT='JSON')",
    );
    assert_rejected(
        "CREATE TABLE t AS SELECT * FROM src GROUP BY city;",
        "SELECT * is not allowed in an aggregate query",
    );
    assert_rejected(
        "CREATE TABLE t AS SELECT city, WINDOWSTART FROM src GROUP BY city;",
        "WINDOWSTART needs a WINDOW clause",
    );
    let (number, line, text) =
        reject("CREATE TABLE t AS SELECT city, COUNT(*) FROM src GROUP BY city;\nCREATE TABLE u AS SELECT city, COUNT(*) FROM t GROUP BY city;");
    assert_eq!((number, line), (3, 3), "{text}");
    assert!(
        text.contains("T is a TABLE; queries over tables are not supported"),
        "{text}"
    );
}

#[test]
fn windows() {
    assert_rejected("CREATE TABLE t AS SELECT city, COUNT(*) FROM src WINDOW SESSION (5 MINUTES) GROUP BY city;", "SESSION windows are not supported");
    assert_rejected("CREATE TABLE t AS SELECT city, COUNT(*) FROM src WINDOW HOPPING (SIZE 1 MINUTE) GROUP BY city;", "a HOPPING window needs ADVANCE BY");
    assert_rejected("CREATE TABLE t AS SELECT city, COUNT(*) FROM src WINDOW TUMBLING (SIZE 1 FORTNIGHT) GROUP BY city;", "unknown time unit FORTNIGHT");
}

#[test]
fn properties_and_types() {
    assert_rejected(
        "CREATE STREAM s2 (id VARCHAR) WITH (VALUE_FORMAT='JSON');",
        "needs WITH (KAFKA_TOPIC='...')",
    );
    assert_rejected(
        "CREATE STREAM s2 (id VARCHAR) WITH (KAFKA_TOPIC='x', VALUE_FORMAT='AVRO');",
        "VALUE_FORMAT 'AVRO' is not supported",
    );
    assert_rejected("CREATE STREAM s2 (id VARCHAR) WITH (KAFKA_TOPIC='x', VALUE_FORMAT='JSON', RETENTION_MS=5);", "unsupported property RETENTION_MS");
    assert_rejected(
        "CREATE STREAM s2 (price DECIMAL(10,2)) WITH (KAFKA_TOPIC='x', VALUE_FORMAT='JSON');",
        "type DECIMAL is not supported",
    );
    assert_rejected(
        "CREATE STREAM s2 (id VARCHAR, id INT) WITH (KAFKA_TOPIC='x', VALUE_FORMAT='JSON');",
        "duplicate column ID",
    );
}

#[test]
fn syntax_errors_say_what_was_expected_and_where() {
    let (number, line, text) = reject("CREATE STREAM s AS\n  SELECT id,\n  FROM src;");
    assert_eq!((number, line), (2, 4), "{text}");
    assert!(
        text.contains("column 3: expected an expression, found 'FROM'"),
        "{text}"
    );
    let (_, line, text) = reject("CREATE STREAM s AS SELECT 'unterminated FROM src;");
    assert_eq!(line, 2);
    assert!(text.contains("unterminated string literal"), "{text}");
    let (_, _, text) = reject("CREATE STREAM s AS SELECT id FROM src WHERE id = 'a' EXTRA;");
    assert!(
        text.contains("expected ';' or the end of the statement, found 'EXTRA'"),
        "{text}"
    );
}

#[test]
fn duplicate_output_columns_need_an_alias() {
    assert_rejected(
        "CREATE STREAM s AS SELECT city, loc->city FROM src;",
        "duplicate output column CITY; add an alias with AS",
    );
}

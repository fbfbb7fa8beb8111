-- Stream SQL for the lakehouse, in ksqlDB's dialect.
-- Runs unchanged on ksqlDB (cluster setup) and on the embedded engine
-- (`stream-sql run producer/ksql_queries.sql`, started by `lakectl up`).
-- Unquoted names are upper-cased: a derived stream or table writes to the
-- topic named after it in upper case unless KAFKA_TOPIC says otherwise.

---------------------------------------------------------------------------
-- Source streams over the raw topic
---------------------------------------------------------------------------

-- Every field of the transaction message, nested objects as STRUCTs.
CREATE STREAM transactions_raw (
    transaction_id VARCHAR,
    timestamp VARCHAR,
    user_id VARCHAR,
    user_name VARCHAR,
    product_id VARCHAR,
    amount DOUBLE,
    currency VARCHAR,
    transaction_type VARCHAR,
    status VARCHAR,
    location STRUCT<city VARCHAR, country VARCHAR>,
    payment_method VARCHAR,
    product_category VARCHAR,
    quantity INT,
    shipping_address STRUCT<street VARCHAR, zip VARCHAR, city VARCHAR, country VARCHAR>,
    device_info STRUCT<os VARCHAR, browser VARCHAR, ip_address VARCHAR>,
    customer_rating INT,
    discount_code VARCHAR,
    tax_amount DOUBLE,
    thread INT,
    message_number BIGINT,
    timestamp_of_reception_log VARCHAR
) WITH (KAFKA_TOPIC = 'transaction_log', VALUE_FORMAT = 'JSON');

-- A second, narrower view of the same topic.
CREATE STREAM transactions_payments (
    transaction_id VARCHAR,
    user_id VARCHAR,
    amount DOUBLE,
    currency VARCHAR,
    payment_method VARCHAR,
    status VARCHAR
) WITH (KAFKA_TOPIC = 'transaction_log', VALUE_FORMAT = 'JSON');

---------------------------------------------------------------------------
-- Derived streams
---------------------------------------------------------------------------

-- Flattened: struct fields become columns.
CREATE STREAM transactions_flat AS
SELECT
    transaction_id,
    timestamp AS event_timestamp,
    user_id,
    user_name,
    product_id,
    amount,
    currency,
    transaction_type,
    status,
    location->city AS city,
    location->country AS country,
    payment_method,
    product_category,
    quantity,
    shipping_address->city AS shipping_city,
    shipping_address->country AS shipping_country,
    shipping_address->zip AS shipping_zip,
    device_info->os AS device_os,
    device_info->browser AS device_browser,
    customer_rating,
    discount_code,
    tax_amount,
    amount + tax_amount AS amount_with_tax
FROM transactions_raw
EMIT CHANGES;

-- Anonymised: hashed identity, masked IP address, normalised names.
CREATE STREAM transactions_anonymized AS
SELECT
    transaction_id,
    MD5(user_id) AS user_id_hash,
    MD5(user_name) AS user_name_hash,
    UCASE(SUBSTRING(user_name, 1, 1)) AS user_initial,
    MASK(device_info->ip_address) AS masked_ip,
    LCASE(device_info->browser) AS browser,
    amount,
    currency,
    status,
    location->country AS country
FROM transactions_raw
EMIT CHANGES;

-- Every amount converted to USD.
CREATE STREAM transactions_usd AS
SELECT
    transaction_id,
    user_id,
    amount,
    currency,
    CASE
        WHEN currency = 'USD' THEN amount
        WHEN currency = 'EUR' THEN amount * 1.08
        WHEN currency = 'GBP' THEN amount * 1.27
        WHEN currency = 'CAD' THEN amount * 0.73
        WHEN currency = 'JPY' THEN amount * 0.0067
        WHEN currency = 'AUD' THEN amount * 0.66
        ELSE NULL
    END AS amount_usd,
    CONCAT(payment_method, ':', status) AS method_and_status
FROM transactions_payments
EMIT CHANGES;

-- High amounts, and a city blacklist with its complement.
CREATE STREAM high_amount_transactions AS
SELECT * FROM transactions_flat WHERE amount > 700 EMIT CHANGES;

CREATE STREAM blacklisted_city_transactions AS
SELECT transaction_id, user_id, amount, city, country, status
FROM transactions_flat
WHERE city IN ('Paris', 'Mumbai', 'Sao Paulo', 'São Paulo') OR (country = 'USA' AND city = 'Chicago')
EMIT CHANGES;

CREATE STREAM clean_city_transactions AS
SELECT transaction_id, user_id, amount, city, country, status
FROM transactions_flat
WHERE NOT (city IN ('Paris', 'Mumbai', 'Sao Paulo', 'São Paulo') OR (country = 'USA' AND city = 'Chicago'))
EMIT CHANGES;

-- One stream per status.
CREATE STREAM transactions_completed AS SELECT * FROM transactions_flat WHERE status = 'completed' EMIT CHANGES;
CREATE STREAM transactions_pending AS SELECT * FROM transactions_flat WHERE status = 'pending' EMIT CHANGES;
CREATE STREAM transactions_failed AS SELECT * FROM transactions_flat WHERE status = 'failed' EMIT CHANGES;
CREATE STREAM transactions_processing AS SELECT * FROM transactions_flat WHERE status = 'processing' EMIT CHANGES;
CREATE STREAM transactions_cancelled AS SELECT * FROM transactions_flat WHERE status = 'cancelled' EMIT CHANGES;

---------------------------------------------------------------------------
-- Tables
---------------------------------------------------------------------------

CREATE TABLE total_par_transaction_type AS
SELECT transaction_type, SUM(amount) AS total_amount, COUNT(*) AS transaction_count
FROM transactions_flat
GROUP BY transaction_type
EMIT CHANGES;

CREATE TABLE total_par_payment_method AS
SELECT payment_method, SUM(amount) AS total_amount, COUNT(*) AS transaction_count
FROM transactions_flat
GROUP BY payment_method
EMIT CHANGES;

CREATE TABLE quantity_par_product AS
SELECT product_id, SUM(quantity) AS total_quantity
FROM transactions_flat
GROUP BY product_id
EMIT CHANGES;

-- Grouped by an expression: the key column is named KSQL_COL_0.
CREATE TABLE total_spent_par_user_type AS
SELECT CONCAT(user_id, '_', transaction_type), SUM(amount) AS total_spent, COUNT(*) AS transaction_count
FROM transactions_flat
GROUP BY CONCAT(user_id, '_', transaction_type)
EMIT CHANGES;

CREATE TABLE latest_status_par_transaction AS
SELECT transaction_id, LATEST_BY_OFFSET(status) AS latest_status, LATEST_BY_OFFSET(amount) AS amount
FROM transactions_flat
GROUP BY transaction_id
EMIT CHANGES;

CREATE TABLE stats_par_category AS
SELECT
    product_category,
    COUNT(*) AS transaction_count,
    AVG(amount) AS avg_amount,
    MIN(amount) AS min_amount,
    MAX(amount) AS max_amount,
    AVG(customer_rating) AS avg_rating
FROM transactions_flat
GROUP BY product_category
EMIT CHANGES;

-- Windows on ingestion time (the Kafka record timestamp): `timestamp` is back-dated.
CREATE TABLE transactions_per_minute AS
SELECT currency, WINDOWSTART AS window_start, WINDOWEND AS window_end,
       COUNT(*) AS transaction_count, SUM(amount) AS total_amount
FROM transactions_flat
WINDOW TUMBLING (SIZE 1 MINUTE)
GROUP BY currency
EMIT CHANGES;

CREATE TABLE amount_per_method_5min AS
SELECT payment_method, WINDOWSTART AS window_start, WINDOWEND AS window_end,
       SUM(amount) AS total_amount, COUNT(*) AS transaction_count
FROM transactions_flat
WINDOW HOPPING (SIZE 5 MINUTES, ADVANCE BY 1 MINUTE)
GROUP BY payment_method
EMIT CHANGES;

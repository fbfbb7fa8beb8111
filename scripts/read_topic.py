#!/usr/bin/env python3
"""Independent reader: consumes a topic with confluent-kafka (PyPI, its own
librdkafka build) and checks every transaction against SYSTEM.md section 2.

Prints one JSON object: counts, distinct transaction ids, and the first
problems found. Exit status 0 when it read the expected number of records.
"""
import argparse
import json
import re
import sys
import time
from datetime import datetime

from confluent_kafka import Consumer, KafkaError

FIELDS = {
    "transaction_id": str, "timestamp": str, "user_id": str, "user_name": str,
    "product_id": str, "amount": (int, float), "currency": str,
    "transaction_type": str, "status": str, "location": dict,
    "payment_method": str, "product_category": str, "quantity": int,
    "shipping_address": dict, "device_info": dict, "customer_rating": (int, type(None)),
    "discount_code": (str, type(None)), "tax_amount": (int, float), "thread": int,
    "message_number": int, "timestamp_of_reception_log": str,
}
DOMAINS = {
    "currency": {"USD", "EUR", "GBP", "CAD", "JPY", "AUD"},
    "transaction_type": {"purchase", "refund", "payment", "withdrawal"},
    "status": {"completed", "pending", "failed", "processing", "cancelled"},
    "payment_method": {"credit_card", "paypal", "bank_transfer", "apple_pay", "google_pay", "cryptocurrency"},
    "product_category": {"electronics", "clothing", "books", "home_goods", "food"},
}
COUNTRIES = {"USA", "Canada", "UK", "Germany", "France", "Japan", "Australia", "Brazil", "India", "China"}


def problems(record):
    if set(record) != set(FIELDS):
        return f"fields differ: {sorted(set(record) ^ set(FIELDS))}"
    for name, kind in FIELDS.items():
        if not isinstance(record[name], kind) or isinstance(record[name], bool):
            return f"{name} has type {type(record[name]).__name__}"
    for name, values in DOMAINS.items():
        if record[name] not in values:
            return f"{name}={record[name]!r}"
    checks = [
        ("transaction_id", re.fullmatch(r"TXN-[0-9A-Fa-f]{8}", record["transaction_id"])),
        ("user_id", re.fullmatch(r"USER-\d{4}", record["user_id"]) and 1000 <= int(record["user_id"][5:]) <= 9999),
        ("product_id", re.fullmatch(r"PROD-\d{3}", record["product_id"]) and 100 <= int(record["product_id"][5:]) <= 999),
        ("amount", 10 <= record["amount"] <= 1000),
        ("quantity", 1 <= record["quantity"] <= 10),
        ("customer_rating", record["customer_rating"] is None or 1 <= record["customer_rating"] <= 5),
        ("discount_code", record["discount_code"] is None or re.fullmatch(r"DISCOUNT-\d{3}", record["discount_code"])),
        ("location", record["location"].get("country") in COUNTRIES and set(record["location"]) == {"city", "country"}),
        ("shipping_address", set(record["shipping_address"]) == {"street", "zip", "city", "country"}
         and re.fullmatch(r"\d{5}", record["shipping_address"]["zip"])),
        ("device_info", set(record["device_info"]) == {"os", "browser", "ip_address"}),
        ("tax_amount", (record["tax_amount"] == 0) if record["status"] != "completed"
         else 0.049 <= record["tax_amount"] / record["amount"] <= 0.201),
        ("timestamp", record["timestamp"].endswith("Z")
         and datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))),
        ("timestamp_of_reception_log", datetime.strptime(record["timestamp_of_reception_log"], "%d/%m/%Y %H:%M:%S")),
    ]
    for name, ok in checks:
        if not ok:
            return f"{name}={record[name]!r}"
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()

    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": f"independent-reader-{time.time_ns()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "broker.address.family": "v4",
    })
    consumer.subscribe([args.topic])
    count, valid, ids, first_problems = 0, 0, set(), []
    deadline = time.time() + args.timeout
    while count < args.expect and time.time() < deadline:
        for message in consumer.consume(num_messages=1000, timeout=0.5):
            if message.error():
                if message.error().code() != KafkaError._PARTITION_EOF:
                    first_problems.append(str(message.error()))
                continue
            count += 1
            try:
                record = json.loads(message.value())
                problem = problems(record)
            except Exception as error:  # a reader must survive anything
                problem = f"undecodable: {error}"
            if problem is None:
                valid += 1
                ids.add(record["transaction_id"])
            elif len(first_problems) < 10:
                first_problems.append(problem)
    consumer.close()
    print(json.dumps({"count": count, "valid": valid, "distinct_ids": len(ids), "problems": first_problems}))
    return 0 if count == args.expect else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Reads the whole lake with ordinary Hive-partitioned readers (DuckDB and
pyarrow), independently of the sink's code, and prints per topic the row
count, the column types and the null count per column, as JSON.

    python3 scripts/read_lake.py data_lake
"""
import json
import os
import sys

import duckdb
import pyarrow.dataset as ds


def topics(lake):
    return sorted(
        name for name in os.listdir(lake)
        if not name.startswith(("_", ".")) and os.path.isdir(os.path.join(lake, name))
    )


def read_with_duckdb(lake, topic):
    con = duckdb.connect()
    source = f"read_parquet('{os.path.join(lake, topic)}/*/*.parquet', hive_partitioning = true)"
    rows = con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
    columns = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    types = {name: kind for name, kind, *_ in columns}
    nulls_sql = ", ".join(f'count(*) - count("{name}")' for name in types)
    nulls = dict(zip(types, con.execute(f"SELECT {nulls_sql} FROM {source}").fetchone()))
    return {"rows": rows, "types": types, "nulls": nulls}


def read_with_pyarrow(lake, topic):
    table = ds.dataset(os.path.join(lake, topic), format="parquet", partitioning="hive").to_table()
    return {
        "rows": table.num_rows,
        "types": {field.name: str(field.type) for field in table.schema},
        "nulls": {name: table.column(name).null_count for name in table.column_names},
    }


def main():
    lake = sys.argv[1] if len(sys.argv) > 1 else "data_lake"
    report = {"duckdb": {}, "pyarrow": {}}
    for topic in topics(lake):
        report["duckdb"][topic] = read_with_duckdb(lake, topic)
        report["pyarrow"][topic] = read_with_pyarrow(lake, topic)
    json.dump(report, sys.stdout, indent=1, default=str)


if __name__ == "__main__":
    main()

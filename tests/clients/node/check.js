// node-postgres against semproxy: a parameterized metric query (extended protocol), a
// catalog query, an error with its SQLSTATE and the connection still usable.
// Usage: node check.js <host> <port>; prints one JSON object.
const { Client } = require("pg");

async function main() {
  const client = new Client({ host: process.argv[2], port: Number(process.argv[3]), user: "tester", database: "semantic" });
  await client.connect();
  const out = {};
  const byRegion = await client.query(
    "SELECT region, MEASURE(revenue) AS revenue FROM orders WHERE order_date >= $1 AND status <> $2 GROUP BY 1 ORDER BY 1",
    ["2024-01-01", "cancelled"],
  );
  out.fields = byRegion.fields.map((f) => [f.name, f.dataTypeID]);
  out.rows = byRegion.rows;
  const named = { name: "orders-by-status", text: "SELECT status, MEASURE(order_count) AS n FROM orders WHERE channel = $1 GROUP BY 1 ORDER BY 1" };
  out.named = [(await client.query({ ...named, values: ["web"] })).rows, (await client.query({ ...named, values: ["store"] })).rows];
  out.tables = (await client.query(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1", ["production"],
  )).rows.map((r) => r.table_name);
  try {
    await client.query("SELECT nope, MEASURE(revenue) FROM orders GROUP BY 1");
  } catch (err) {
    out.error = err.code;
  }
  out.after = (await client.query("SELECT 1 AS one")).rows[0].one;
  await client.end();
  console.log(JSON.stringify(out));
}

main().catch((err) => { console.error(err); process.exit(1); });

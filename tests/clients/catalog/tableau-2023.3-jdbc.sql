-- Tableau 2023.3's PostgreSQL connector over pgjdbc (Tableau Server on Linux, Tableau Cloud):
-- the connection's session setup and temp-table probe, each an extended-protocol message.
-- message: server version | columns: version
SELECT version()
-- message: current schema | columns: current_schema
SELECT current_schema()
-- message: Tableau temp-table probe | columns:
CREATE LOCAL TEMPORARY TABLE "#Tableau_27_2_Connect" ("COL" INTEGER) ON COMMIT PRESERVE ROWS
-- message: Tableau temp-table probe, drop | columns:
DROP TABLE "#Tableau_27_2_Connect"
-- message: pgjdbc getSchemas | columns: table_schem, table_catalog
SELECT nspname AS TABLE_SCHEM, NULL AS TABLE_CATALOG FROM pg_catalog.pg_namespace  WHERE nspname <> 'pg_toast' AND (nspname !~ '^pg_temp_'  OR nspname = (pg_catalog.current_schemas(true))[1]) AND (nspname !~ '^pg_toast_temp_'  OR nspname = replace((pg_catalog.current_schemas(true))[1], 'pg_temp_', 'pg_toast_temp_'))  ORDER BY TABLE_SCHEM

-- Tableau 2023.3's PostgreSQL connector over psqlODBC (the Windows and Mac default): what the
-- driver sends as it connects, Tableau's temp-table capability probe, and a catalog read
-- through the driver's declare/fetch mode (UseDeclareFetch=1), as one message each.
-- message: psqlODBC connect settings | columns: ; ; transaction_isolation
SET DateStyle = 'ISO';SET extra_float_digits = 2;show transaction_isolation
-- message: psqlODBC large-object type lookup | columns: oid, typbasetype
select oid, typbasetype from pg_type where typname = 'lo'
-- message: Tableau temp-table probe | columns:
CREATE LOCAL TEMPORARY TABLE "#Tableau_13_1_Connect" ("COL" INTEGER) ON COMMIT PRESERVE ROWS
-- message: Tableau temp-table probe, insert | columns:
INSERT INTO "#Tableau_13_1_Connect" ("COL") VALUES (1)
-- message: Tableau temp-table probe, read back | columns: COL
SELECT "COL" FROM "#Tableau_13_1_Connect"
-- message: Tableau temp-table probe, drop | columns:
DROP TABLE "#Tableau_13_1_Connect"
-- message: declare/fetch of the schema list | columns: ; ; nspname
BEGIN;declare "SQL_CUR0x7f1c2c0" cursor with hold for select nspname from pg_catalog.pg_namespace where nspname !~ '^pg_' and nspname <> 'information_schema' order by 1;fetch 100 in "SQL_CUR0x7f1c2c0"
-- message: close of the cursor | columns: ;
close "SQL_CUR0x7f1c2c0";COMMIT

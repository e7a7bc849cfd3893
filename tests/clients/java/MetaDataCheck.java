import java.sql.*;

/** pgjdbc's DatabaseMetaData against semproxy, as DBeaver, Tableau's JDBC connection and
 *  Metabase read it. Usage: java MetaDataCheck host:port. Prints one line per fact. */
public class MetaDataCheck {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://" + args[0] + "/semantic?sslmode=disable&ApplicationName=MetaDataCheck";
        try (Connection conn = DriverManager.getConnection(url, "tester", "")) {
            DatabaseMetaData md = conn.getMetaData();
            System.out.println("product " + md.getDatabaseProductName() + " " + md.getDatabaseMajorVersion());
            System.out.println("valid " + conn.isValid(5));
            try (ResultSet rs = md.getSchemas()) {
                while (rs.next()) System.out.println("schema " + rs.getString("TABLE_SCHEM"));
            }
            try (ResultSet rs = md.getTables(null, "production", "%", new String[] {"TABLE", "VIEW"})) {
                while (rs.next()) {
                    System.out.println("table " + rs.getString("TABLE_NAME") + "|" + rs.getString("TABLE_TYPE")
                        + "|" + rs.getString("REMARKS"));
                }
            }
            try (ResultSet rs = md.getColumns(null, "production", "orders", "%")) {
                while (rs.next()) {
                    System.out.println("column " + rs.getString("COLUMN_NAME") + "|" + rs.getString("TYPE_NAME")
                        + "|" + rs.getInt("DATA_TYPE") + "|" + rs.getInt("ORDINAL_POSITION") + "|" + rs.getString("REMARKS"));
                }
            }
            try (ResultSet rs = md.getPrimaryKeys(null, "production", "orders")) {
                int n = 0;
                while (rs.next()) n++;
                System.out.println("primary keys " + n);
            }
            try (ResultSet rs = md.getImportedKeys(null, "production", "orders")) {
                int n = 0;
                while (rs.next()) n++;
                System.out.println("imported keys " + n);
            }
            try (ResultSet rs = md.getIndexInfo(null, "production", "orders", false, true)) {
                int n = 0;
                while (rs.next()) n++;
                System.out.println("indexes " + n);
            }
            try (ResultSet rs = md.getTypeInfo()) {
                while (rs.next()) System.out.println("type " + rs.getString("TYPE_NAME") + "|" + rs.getInt("DATA_TYPE"));
            }
            try (Statement st = conn.createStatement()) {
                try {
                    st.executeQuery("SELECT regoin, MEASURE(revenue) FROM orders GROUP BY 1");
                    System.out.println("error none");
                } catch (SQLException e) {
                    System.out.println("error " + e.getSQLState());
                }
                try (ResultSet rs = st.executeQuery("SELECT status, MEASURE(order_count) AS n FROM orders GROUP BY 1 ORDER BY 1")) {
                    ResultSetMetaData rmd = rs.getMetaData();
                    System.out.println("result columns " + rmd.getColumnName(1) + "|" + rmd.getColumnTypeName(1)
                        + "|" + rmd.getColumnName(2) + "|" + rmd.getColumnTypeName(2));
                    while (rs.next()) System.out.println("row " + rs.getString(1) + "|" + rs.getLong(2));
                }
            }
        }
    }
}

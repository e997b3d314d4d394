-- The database role the service runs as: `serve` warns at start when it has more power than
-- it needs (a superuser, or the owner of the tables, can get around the audit trail's
-- triggers).

-- name: get-own-privileges()^
-- Is the current role a superuser, and does it own (or belong to the owner of) any of the
-- service's tables? pg_has_role(…, 'USAGE') is true for the owner role itself and for
-- roles that inherit it.
SELECT r.rolsuper AS superuser,
       EXISTS (SELECT 1 FROM pg_tables t
                WHERE t.schemaname = 'public'
                  AND t.tablename = 'payment_audit'
                  AND pg_has_role(current_user, t.tableowner, 'USAGE')) AS owns_tables
  FROM pg_roles r
 WHERE r.rolname = current_user;

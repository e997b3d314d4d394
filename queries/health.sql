-- Liveness of the database as the service sees it, through its own pool.

-- name: ping()$
-- The cheapest round trip: proves a pooled connection and the server answer.
SELECT 1;

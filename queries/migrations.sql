-- Serialises `python -m service migrate` across processes and replicas. yoyo has a lock of its
-- own, but it lives in a table yoyo must first create; two fresh replicas would race on that.

-- name: lock-migrations()!
-- Session-level advisory lock held while yoyo applies migrations; the number is arbitrary.
SELECT pg_advisory_lock(87050311);

-- name: unlock-migrations()!
-- Releases lock-migrations (closing the connection would too).
SELECT pg_advisory_unlock(87050311);

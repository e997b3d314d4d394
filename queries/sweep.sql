-- serve's own reconcile sweep (service/payments/sweep.py): one replica at a time, over the
-- events since the last sweep, then what is still owed to Stripe.

-- name: try-lock-sweep()$
-- A session-level advisory lock: true for the one replica whose turn it is. Released by
-- unlock-sweep on the same connection (the pool's release does not unlock by itself).
SELECT pg_try_advisory_lock(87050312);

-- name: unlock-sweep()$
-- Releases try-lock-sweep.
SELECT pg_advisory_unlock(87050312);

-- name: get-sweep-position(sweep)$
-- Where the sweep last got to (NULL before the first).
SELECT swept_to FROM reconcile_sweeps WHERE sweep = :sweep;

-- name: save-sweep-position(sweep, swept_to)!
-- Records how far a finished sweep got.
INSERT INTO reconcile_sweeps (sweep, swept_to) VALUES (:sweep, :swept_to)
ON CONFLICT (sweep) DO UPDATE SET swept_to = EXCLUDED.swept_to, updated_at = now();

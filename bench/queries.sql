-- The bench's own statements (loaded with aiosql, like the service's queries/): seeding the
-- projects a round's events are for, and checking afterwards that each event took effect
-- exactly once. Never run by the service.

-- name: seed-pending-projects(project_ids, session_ids)!
-- What a finished POST /api/checkout leaves behind (queries/projects.sql insert-project),
-- in bulk: one pending project per id, pointing at its checkout session.
INSERT INTO projects (project_id, status, checkout_session_id, checkout_url,
                      checkout_expires_at)
SELECT project_id, 'pending', session_id, 'https://checkout.stripe.com/c/pay/' || session_id,
       now() + interval '1 hour'
  FROM unnest(CAST(:project_ids AS text[]), CAST(:session_ids AS text[]))
       AS seed(project_id, session_id);

-- name: seed-pgbench-projects(base, clients, per_client)!
-- The same for a pgbench round: ids base + client * 1000000 + 1 .. per_client, as the
-- script computes them (bench/pgbench_script.py).
INSERT INTO projects (project_id, status, checkout_session_id, checkout_url,
                      checkout_expires_at)
SELECT CAST(id AS text), 'pending', 'cs_bench_' || id,
       'https://checkout.stripe.com/c/pay/cs_bench_' || id, now() + interval '1 hour'
  FROM (SELECT CAST(:base AS bigint) + c * 1000000 + s AS id
          FROM generate_series(0, CAST(:clients AS int) - 1) AS c,
               generate_series(1, CAST(:per_client AS int)) AS s) AS ids;

-- name: uses-facts()$
-- Whether the service measured derives statuses from facts (migrations/0003.facts.sql): its
-- sessions must then be seeded as the service's own. The bench also measures older trees.
SELECT to_regclass('checkout_sessions') IS NOT NULL;

-- name: seed-checkout-sessions(project_ids, session_ids)!
-- What a finished checkout also leaves behind in the facts model: the session, the service's.
INSERT INTO checkout_sessions (session_id, project_id)
SELECT session_id, project_id
  FROM unnest(CAST(:project_ids AS text[]), CAST(:session_ids AS text[]))
       AS seed(project_id, session_id);

-- name: seed-pgbench-sessions(base, clients, per_client)!
-- The same for a pgbench round; the session id is the project's number (pgbench variables
-- are numbers), which is also what the script sends as the event's session.
INSERT INTO checkout_sessions (session_id, project_id)
SELECT CAST(id AS text), CAST(id AS text)
  FROM (SELECT CAST(:base AS bigint) + c * 1000000 + s AS id
          FROM generate_series(0, CAST(:clients AS int) - 1) AS c,
               generate_series(1, CAST(:per_client AS int)) AS s) AS ids;

-- name: recorded-event-ids(pattern)$
-- The ids of one round's recorded events (event ids `LIKE :pattern`), as one array.
SELECT coalesce(array_agg(event_id), '{}') FROM stripe_events WHERE event_id LIKE :pattern;

-- name: exactly-once(pattern)^
-- For the projects of one round (ids `LIKE :pattern`): how many are paid, and whether each
-- paid one has exactly one event row (outcome applied) and exactly one audit row naming it.
WITH p AS (
    SELECT project_id, status FROM projects WHERE project_id LIKE :pattern
), e AS (
    SELECT event_id, project_id, outcome FROM stripe_events WHERE project_id LIKE :pattern
), a AS (
    SELECT project_id, cause_event_id, from_status, to_status
      FROM payment_audit WHERE project_id LIKE :pattern
)
SELECT (SELECT count(*) FROM p) AS projects,
       (SELECT count(*) FROM p WHERE status = 'paid') AS paid,
       (SELECT count(*) FROM p WHERE status NOT IN ('paid', 'pending')) AS other_status,
       (SELECT count(*) FROM e) AS events,
       (SELECT count(*) FROM e WHERE outcome = 'applied') AS events_applied,
       (SELECT count(*) FROM a) AS audit_rows,
       (SELECT count(DISTINCT project_id) FROM a) AS audited_projects,
       (SELECT count(*) FROM (SELECT project_id FROM e GROUP BY project_id
                              HAVING count(*) > 1) AS twice) AS projects_with_two_events,
       (SELECT count(*)
          FROM projects AS pp
          JOIN stripe_events AS ee ON ee.project_id = pp.project_id
          JOIN payment_audit AS aa
            ON aa.project_id = pp.project_id AND aa.cause_event_id = ee.event_id
         WHERE pp.project_id LIKE :pattern AND pp.status = 'paid'
           AND aa.from_status = 'pending' AND aa.to_status = 'paid') AS consistent;

-- name: checkout-sessions(pattern)^
-- Projects of one checkout round that got a pending session.
SELECT count(*) AS projects,
       count(*) FILTER (WHERE status = 'pending' AND checkout_session_id IS NOT NULL)
           AS with_session
  FROM projects WHERE project_id LIKE :pattern;

-- name: analyze-tables()!
-- Fresh statistics before a check: without them the planner, seeing a round's rows as
-- one, picks nested loops over thousands of rows.
ANALYZE projects, stripe_events, payment_audit;

-- name: checkpoint()!
-- Before each measured round, so that no round pays for an earlier round's dirty pages.
CHECKPOINT;

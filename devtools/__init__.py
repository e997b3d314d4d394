"""Developer tooling: the embedded PostgreSQL, `make run`, process helpers. Never imported by
service/."""

"""Developer tooling: the embedded PostgreSQL and `make run`. Never imported by service/."""

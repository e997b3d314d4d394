"""The benchmark (`make bench`, BENCHMARKS.md), one job a module: run (the command line),
measure (the rounds), service and standin (the processes under test), database, pgbench (the
ceiling), wrk, webhooks, procstat (CPU and memory from /proc), results, report (the table),
profiling (py-spy), snapshots (--ref, --before), common (what they all share)."""

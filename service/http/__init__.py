"""The HTTP side: the Tornado application and its start-up (app.py, server.py), the thin
handlers (one module per route group, on base.py), the one mapping of errors to HTTP
(error_status.py), who may call (auth.py) and how often (limits.py)."""

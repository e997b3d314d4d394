"""The HTTP side: the Tornado application and its start-up (app.py, server.py), the thin
handlers (one module per route group, on base.py), the one mapping of errors to HTTP
(error_status.py), who may call (identity.py; auth.py picks the API_AUTH mode, jwt_auth.py
is its JWT one) and how often (limits.py)."""

"""The local Stripe stand-in (`python -m sandbox`): API, checkout pages, dashboard, webhooks."""

"""The payment service: payments for projects through Stripe Checkout (`python -m service`)."""

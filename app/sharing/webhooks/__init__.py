"""Push delivery to partners (webhooks): admin-managed endpoints, the events they receive, the delivery worker.

See docs/sharing.md, "Push delivery (webhooks)". Events go through the transactional outbox (`app.ledger.outbox`).
"""

"""The transactional outbox: events for partners, written in the same transaction as the change that caused them.

`service.enqueue` stores an event next to the change (a rolled-back change leaves no event); the delivery worker
(`app.sharing.webhooks.delivery`, run by `migrant outbox-run`) claims due events, sends them holding no connection,
and settles each attempt in the delivery log. The outbox knows no partner and no domain: an event names its target
endpoint by id and carries its body as the exact bytes to send.
"""

"""django-q2 tasks of accounts: take ids, call a service. Safe to run twice."""

from accounts import services


def credits_low_check(tenant_id: int) -> bool:
    return services.credits_low_check(tenant_id=tenant_id)


def idempotency_keys_expire() -> int:
    return services.idempotency_keys_expire()


def webhook_deliver(delivery_id: str) -> bool:
    # Nothing queues this any more (the sender, `webhooks_send_due`, sends every delivery
    # in the webhooks cluster); it stays for tasks queued before that.
    return services.webhook_delivery_send(delivery_id=delivery_id)


def webhooks_send_due() -> dict[str, int]:
    # The webhook sender: runs in the webhooks cluster (see `webhook_sender_ensure`).
    return services.webhooks_send_due()

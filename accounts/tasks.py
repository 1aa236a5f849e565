"""django-q2 tasks of accounts: take ids, call a service. Safe to run twice."""

from accounts import services


def credits_low_check(tenant_id: int) -> bool:
    return services.credits_low_check(tenant_id=tenant_id)


def idempotency_keys_expire() -> int:
    return services.idempotency_keys_expire()


def webhook_deliver(delivery_id: str) -> bool:
    return services.webhook_delivery_send(delivery_id=delivery_id)


def webhooks_send_due() -> dict[str, int]:
    return services.webhooks_send_due()

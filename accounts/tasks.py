"""django-q2 tasks of accounts: take ids, call a service. Safe to run twice."""

from accounts import services


def credits_low_check(tenant_id: int) -> bool:
    return services.credits_low_check(tenant_id=tenant_id)


def idempotency_keys_expire() -> int:
    return services.idempotency_keys_expire()

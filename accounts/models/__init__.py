"""Users, shops' workspaces (tenants), their members, invitations, API keys, credits and
webhooks.

Where things live (callers import from `accounts.models`; the modules import each other
directly; every model is imported here, so Django registers it):

- users:       User and its manager
- workspaces:  Tenant, Membership, Role; the Segmind plans a workspace's own key may be on
- invitations: invitations to join a workspace
- api_keys:    workspaces' keys for the REST API
- security:    idempotency keys, throttle counters, sign-ups waiting for their email link
- credits:     the credit ledger (CreditEntry, CreditKind), packs, Stripe Checkout and events
- webhooks:    endpoints and deliveries
- audit:       the operators' audit trail (OperatorAction)
- leases:      Lease, a named lease with at most one holder
"""

from accounts.models.api_keys import API_KEY_PREFIX, ApiKey, ApiKeyQuerySet
from accounts.models.audit import (
    OperatorAction,
    OperatorActionCode,
    OperatorActionImmutable,
    OperatorActionQuerySet,
)
from accounts.models.credits import (
    CURRENCY_SYMBOLS,
    JOB_CREDIT_KINDS,
    PLAIN_KINDS,
    ZERO_DECIMAL_CURRENCIES,
    CheckoutSession,
    CheckoutSessionQuerySet,
    CheckoutStatus,
    CreditEntry,
    CreditEntryQuerySet,
    CreditKind,
    CreditPack,
    CreditPackQuerySet,
    StripeEvent,
    format_money,
)
from accounts.models.invitations import Invitation, InvitationQuerySet
from accounts.models.leases import Lease
from accounts.models.security import (
    IdempotencyKey,
    IdempotencyKeyQuerySet,
    PendingSignup,
    ThrottleCounter,
    ThrottleCounterQuerySet,
    ThrottleScope,
)
from accounts.models.users import User, UserManager
from accounts.models.webhooks import (
    JOB_EVENT_TYPES,
    SUBSCRIBABLE_EVENT_TYPES,
    DeliveryStatus,
    WebhookDelivery,
    WebhookDeliveryQuerySet,
    WebhookEndpoint,
    WebhookEndpointQuerySet,
    WebhookEventType,
)
from accounts.models.workspaces import (
    SEGMIND_CUSTOM_MAX_PER_MINUTE,
    SEGMIND_DEFAULT_PLAN,
    SEGMIND_PLAN_PER_MINUTE,
    Membership,
    MembershipQuerySet,
    Role,
    SegmindPlan,
    Tenant,
    TenantQuerySet,
    default_low_balance_threshold,
)

__all__ = [
    "API_KEY_PREFIX",
    "CURRENCY_SYMBOLS",
    "JOB_CREDIT_KINDS",
    "JOB_EVENT_TYPES",
    "PLAIN_KINDS",
    "SEGMIND_CUSTOM_MAX_PER_MINUTE",
    "SEGMIND_DEFAULT_PLAN",
    "SEGMIND_PLAN_PER_MINUTE",
    "SUBSCRIBABLE_EVENT_TYPES",
    "ZERO_DECIMAL_CURRENCIES",
    "ApiKey",
    "ApiKeyQuerySet",
    "CheckoutSession",
    "CheckoutSessionQuerySet",
    "CheckoutStatus",
    "CreditEntry",
    "CreditEntryQuerySet",
    "CreditKind",
    "CreditPack",
    "CreditPackQuerySet",
    "DeliveryStatus",
    "IdempotencyKey",
    "IdempotencyKeyQuerySet",
    "Invitation",
    "InvitationQuerySet",
    "Lease",
    "Membership",
    "MembershipQuerySet",
    "OperatorAction",
    "OperatorActionCode",
    "OperatorActionImmutable",
    "OperatorActionQuerySet",
    "PendingSignup",
    "Role",
    "SegmindPlan",
    "StripeEvent",
    "Tenant",
    "TenantQuerySet",
    "ThrottleCounter",
    "ThrottleCounterQuerySet",
    "ThrottleScope",
    "User",
    "UserManager",
    "WebhookDelivery",
    "WebhookDeliveryQuerySet",
    "WebhookEndpoint",
    "WebhookEndpointQuerySet",
    "WebhookEventType",
    "default_low_balance_threshold",
    "format_money",
]

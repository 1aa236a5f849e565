"""Account operations, by area. Callers import from here (``accounts.services.tenant_create``);
the submodules import each other directly.

Where things live:
- ``members``: who is a member and may do what (``AccountError``, roles, removal)
- ``workspaces``: create, rename, Segmind plan
- ``signup``, ``invitations``, ``api_keys``, ``two_factor``
- ``throttling``: throttle counters and login locks
- ``idempotency``: idempotency keys of API requests
- ``credits``: the ledger, holds, low balance, thresholds, usage by month
- ``segmind_key``: the workspace's own Segmind key, stored encrypted (jobs asks Segmind about it)
- ``billing``: buying credits through Stripe Checkout
- ``webhooks``: endpoints, secrets, signing; ``webhook_delivery``: emitting, sending, the sender
- ``audit``: the operators' audit trail, and the operators' actions it records
- ``fernet``: the key that seals secrets stored in the database
"""

from accounts.services.api_keys import (
    API_KEY_LAST_USED_EVERY as API_KEY_LAST_USED_EVERY,
)
from accounts.services.api_keys import (
    NewApiKey as NewApiKey,
)
from accounts.services.api_keys import (
    api_key_authenticate as api_key_authenticate,
)
from accounts.services.api_keys import (
    api_key_create as api_key_create,
)
from accounts.services.api_keys import (
    api_key_manager_check as api_key_manager_check,
)
from accounts.services.api_keys import (
    api_key_revoke as api_key_revoke,
)
from accounts.services.audit import (
    OperatorActionError as OperatorActionError,
)
from accounts.services.audit import (
    api_key_operator_revoke as api_key_operator_revoke,
)
from accounts.services.audit import (
    credit_entry_operator_record as credit_entry_operator_record,
)
from accounts.services.audit import (
    credits_operator_adjust as credits_operator_adjust,
)
from accounts.services.audit import (
    credits_operator_grant as credits_operator_grant,
)
from accounts.services.audit import (
    membership_operator_add as membership_operator_add,
)
from accounts.services.audit import (
    membership_operator_remove as membership_operator_remove,
)
from accounts.services.audit import (
    membership_operator_role_set as membership_operator_role_set,
)
from accounts.services.audit import (
    operator_action_record as operator_action_record,
)
from accounts.services.billing import (
    CHECKOUT_EXPIRED_EVENT as CHECKOUT_EXPIRED_EVENT,
)
from accounts.services.billing import (
    CHECKOUT_PAID_EVENTS as CHECKOUT_PAID_EVENTS,
)
from accounts.services.billing import (
    STRIPE_TIMEOUT_SECONDS as STRIPE_TIMEOUT_SECONDS,
)
from accounts.services.billing import (
    BillingContact as BillingContact,
)
from accounts.services.billing import (
    BillingError as BillingError,
)
from accounts.services.billing import (
    StartedCheckout as StartedCheckout,
)
from accounts.services.billing import (
    billing_contacts as billing_contacts,
)
from accounts.services.billing import (
    billing_stripe_enabled as billing_stripe_enabled,
)
from accounts.services.billing import (
    checkout_start as checkout_start,
)
from accounts.services.billing import (
    stripe_event_handle as stripe_event_handle,
)
from accounts.services.credits import (
    CreditedJob as CreditedJob,
)
from accounts.services.credits import (
    CreditError as CreditError,
)
from accounts.services.credits import (
    MonthlyUsage as MonthlyUsage,
)
from accounts.services.credits import (
    credits_adjust as credits_adjust,
)
from accounts.services.credits import (
    credits_capture as credits_capture,
)
from accounts.services.credits import (
    credits_grant as credits_grant,
)
from accounts.services.credits import (
    credits_hold as credits_hold,
)
from accounts.services.credits import (
    credits_ledger as credits_ledger,
)
from accounts.services.credits import (
    credits_low_check as credits_low_check,
)
from accounts.services.credits import (
    credits_refund as credits_refund,
)
from accounts.services.credits import (
    credits_release as credits_release,
)
from accounts.services.credits import (
    credits_threshold_set as credits_threshold_set,
)
from accounts.services.credits import (
    credits_usage_by_month as credits_usage_by_month,
)
from accounts.services.idempotency import (
    IdempotencyError as IdempotencyError,
)
from accounts.services.idempotency import (
    idempotency_begin as idempotency_begin,
)
from accounts.services.idempotency import (
    idempotency_finish as idempotency_finish,
)
from accounts.services.idempotency import (
    idempotency_keys_expire as idempotency_keys_expire,
)
from accounts.services.idempotency import (
    idempotency_release as idempotency_release,
)
from accounts.services.invitations import (
    INVITATION_RESEND_SECONDS as INVITATION_RESEND_SECONDS,
)
from accounts.services.invitations import (
    WRONG_INVITEE_MESSAGE as WRONG_INVITEE_MESSAGE,
)
from accounts.services.invitations import (
    invitation_accept as invitation_accept,
)
from accounts.services.invitations import (
    invitation_create as invitation_create,
)
from accounts.services.invitations import (
    invitation_lookup as invitation_lookup,
)
from accounts.services.invitations import (
    invitation_resend as invitation_resend,
)
from accounts.services.invitations import (
    invitation_revoke as invitation_revoke,
)
from accounts.services.invitations import (
    invitation_signup as invitation_signup,
)
from accounts.services.members import (
    AccountError as AccountError,
)
from accounts.services.members import (
    membership_change_role as membership_change_role,
)
from accounts.services.members import (
    membership_remove as membership_remove,
)
from accounts.services.segmind_key import (
    KeyCheck as KeyCheck,
)
from accounts.services.segmind_key import (
    segmind_key_changed as segmind_key_changed,
)
from accounts.services.segmind_key import (
    segmind_key_clear as segmind_key_clear,
)
from accounts.services.segmind_key import (
    segmind_key_get as segmind_key_get,
)
from accounts.services.segmind_key import (
    segmind_key_manager_check as segmind_key_manager_check,
)
from accounts.services.segmind_key import (
    segmind_key_set as segmind_key_set,
)
from accounts.services.segmind_key import (
    segmind_key_verifier_set as segmind_key_verifier_set,
)
from accounts.services.signup import (
    signup_complete as signup_complete,
)
from accounts.services.signup import (
    signup_lookup as signup_lookup,
)
from accounts.services.signup import (
    signup_request as signup_request,
)
from accounts.services.signup import (
    user_signup as user_signup,
)
from accounts.services.throttling import (
    login_failures_forget as login_failures_forget,
)
from accounts.services.throttling import (
    login_lock_lift as login_lock_lift,
)
from accounts.services.throttling import (
    throttle_admit as throttle_admit,
)
from accounts.services.throttling import (
    throttle_count as throttle_count,
)
from accounts.services.throttling import (
    throttle_lock_lift as throttle_lock_lift,
)
from accounts.services.throttling import (
    throttle_wait as throttle_wait,
)
from accounts.services.two_factor import (
    RECOVERY_CODE_COUNT as RECOVERY_CODE_COUNT,
)
from accounts.services.two_factor import (
    TwoFactorError as TwoFactorError,
)
from accounts.services.two_factor import (
    TwoFactorOn as TwoFactorOn,
)
from accounts.services.two_factor import (
    recovery_codes_left as recovery_codes_left,
)
from accounts.services.two_factor import (
    recovery_codes_regenerate as recovery_codes_regenerate,
)
from accounts.services.two_factor import (
    totp_secret_base32 as totp_secret_base32,
)
from accounts.services.two_factor import (
    two_factor_confirm as two_factor_confirm,
)
from accounts.services.two_factor import (
    two_factor_disable as two_factor_disable,
)
from accounts.services.two_factor import (
    two_factor_setup_device as two_factor_setup_device,
)
from accounts.services.two_factor import (
    two_factor_setup_start as two_factor_setup_start,
)
from accounts.services.two_factor import (
    two_factor_verify as two_factor_verify,
)
from accounts.services.two_factor import (
    user_two_factor_reset as user_two_factor_reset,
)
from accounts.services.webhook_delivery import (
    WEBHOOK_SENDER_CANDIDATES as WEBHOOK_SENDER_CANDIDATES,
)
from accounts.services.webhook_delivery import (
    WEBHOOK_SENDER_LEASE as WEBHOOK_SENDER_LEASE,
)
from accounts.services.webhook_delivery import (
    WEBHOOK_SENDER_LEASE_SECONDS as WEBHOOK_SENDER_LEASE_SECONDS,
)
from accounts.services.webhook_delivery import (
    WEBHOOK_SENDER_RENEW_SECONDS as WEBHOOK_SENDER_RENEW_SECONDS,
)
from accounts.services.webhook_delivery import (
    WEBHOOK_SENDER_TICK_SECONDS as WEBHOOK_SENDER_TICK_SECONDS,
)
from accounts.services.webhook_delivery import (
    EventJob as EventJob,
)
from accounts.services.webhook_delivery import (
    webhook_delivery_send as webhook_delivery_send,
)
from accounts.services.webhook_delivery import (
    webhook_endpoints_listening as webhook_endpoints_listening,
)
from accounts.services.webhook_delivery import (
    webhook_event_emit as webhook_event_emit,
)
from accounts.services.webhook_delivery import (
    webhook_retry_delay as webhook_retry_delay,
)
from accounts.services.webhook_delivery import (
    webhook_sender_ensure as webhook_sender_ensure,
)
from accounts.services.webhook_delivery import (
    webhook_test_send as webhook_test_send,
)
from accounts.services.webhook_delivery import (
    webhooks_send_due as webhooks_send_due,
)
from accounts.services.webhooks import (
    WEBHOOK_EXCERPT_BYTES as WEBHOOK_EXCERPT_BYTES,
)
from accounts.services.webhooks import (
    WEBHOOK_MANAGERS_ONLY as WEBHOOK_MANAGERS_ONLY,
)
from accounts.services.webhooks import (
    WEBHOOK_MAX_ATTEMPTS as WEBHOOK_MAX_ATTEMPTS,
)
from accounts.services.webhooks import (
    WEBHOOK_RETRY_CAPS_SECONDS as WEBHOOK_RETRY_CAPS_SECONDS,
)
from accounts.services.webhooks import (
    WEBHOOK_SECRET_BYTES as WEBHOOK_SECRET_BYTES,
)
from accounts.services.webhooks import (
    WEBHOOK_SECRET_PREFIX as WEBHOOK_SECRET_PREFIX,
)
from accounts.services.webhooks import (
    WEBHOOK_TOLERANCE_SECONDS as WEBHOOK_TOLERANCE_SECONDS,
)
from accounts.services.webhooks import (
    NewWebhookEndpoint as NewWebhookEndpoint,
)
from accounts.services.webhooks import (
    WebhookError as WebhookError,
)
from accounts.services.webhooks import (
    webhook_endpoint_create as webhook_endpoint_create,
)
from accounts.services.webhooks import (
    webhook_endpoint_delete as webhook_endpoint_delete,
)
from accounts.services.webhooks import (
    webhook_endpoint_disable as webhook_endpoint_disable,
)
from accounts.services.webhooks import (
    webhook_endpoint_enable as webhook_endpoint_enable,
)
from accounts.services.webhooks import (
    webhook_endpoint_secret as webhook_endpoint_secret,
)
from accounts.services.webhooks import (
    webhook_headers as webhook_headers,
)
from accounts.services.webhooks import (
    webhook_manager_check as webhook_manager_check,
)
from accounts.services.webhooks import (
    webhook_secret_new as webhook_secret_new,
)
from accounts.services.webhooks import (
    webhook_sign as webhook_sign,
)
from accounts.services.webhooks import (
    webhook_url_check as webhook_url_check,
)
from accounts.services.webhooks import (
    webhook_verify as webhook_verify,
)
from accounts.services.webhooks import (
    webhook_workspace_secret as webhook_workspace_secret,
)
from accounts.services.workspaces import (
    tenant_create as tenant_create,
)
from accounts.services.workspaces import (
    tenant_rename as tenant_rename,
)
from accounts.services.workspaces import (
    tenant_segmind_plan_set as tenant_segmind_plan_set,
)

"""ProductStudio's URLs: the portal under /w/<workspace>/, the API under /api/v1/."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.api import credits as accounts_api
from accounts.api import webhooks as webhooks_api
from accounts.views import api_keys as api_key_views
from accounts.views import auth as account_views
from accounts.views import billing as billing_views
from accounts.views import security as security_views
from accounts.views import team as team_views
from accounts.views import workspace as workspace_views
from jobs import api as jobs_api
from jobs import views as job_views
from productstudio.lib.csp import csp_extend

auth_patterns = [
    path("login/", security_views.PasswordLoginView.as_view(), name="login"),
    path("login/code/", security_views.login_code, name="login_code"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password-reset/", account_views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        account_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("account/security/", security_views.account_security, name="account_security"),
    path("account/security/setup/", security_views.security_setup, name="security_setup"),
    path("account/security/confirm/", security_views.security_confirm, name="security_confirm"),
    path(
        "account/security/recovery-codes/",
        security_views.recovery_codes_regenerate,
        name="recovery_codes_regenerate",
    ),
    path("account/security/off/", security_views.two_factor_disable, name="two_factor_disable"),
    path("signup/", account_views.signup, name="signup"),
    path("signup/sent/", account_views.signup_sent, name="signup_sent"),
    path("signup/confirm/<str:token>/", account_views.signup_confirm, name="signup_confirm"),
    path("invite/<str:token>/", team_views.invitation_accept, name="invitation_accept"),
    path("workspaces/new/", workspace_views.workspace_create, name="workspace_create"),
]

workspace_patterns = [
    path("", job_views.dashboard, name="dashboard"),
    path("jobs/new/", job_views.job_new, name="job_new"),
    path("jobs/preview/", job_views.job_preview, name="job_preview"),
    path("jobs/<uuid:job_id>/", job_views.job_detail, name="job_detail"),
    path("jobs/<uuid:job_id>/status/", job_views.job_status, name="job_status"),
    path("jobs/<uuid:job_id>/cancel/", job_views.job_cancel, name="job_cancel"),
    path("jobs/<uuid:job_id>/rerun/", job_views.job_rerun, name="job_rerun"),
    path("batches/", job_views.batch_list, name="batch_list"),
    path("batches/<uuid:batch_id>/", job_views.batch_detail, name="batch_detail"),
    path("batches/<uuid:batch_id>/status/", job_views.batch_status, name="batch_status"),
    path(
        "batches/<uuid:batch_id>/retry-failed/",
        job_views.batch_retry_failed,
        name="batch_retry_failed",
    ),
    path("gallery/", job_views.gallery, name="gallery"),
    path("assets/zip/", job_views.assets_zip, name="assets_zip"),
    path("assets/delete/", job_views.assets_delete, name="assets_delete"),
    path("assets/<uuid:asset_id>/", job_views.asset_file, name="asset_file"),
    path("assets/<uuid:asset_id>/thumb/", job_views.asset_thumbnail, name="asset_thumbnail"),
    path("assets/<uuid:asset_id>/view/", job_views.asset_detail, name="asset_detail"),
    path("assets/<uuid:asset_id>/favourite/", job_views.asset_favourite, name="asset_favourite"),
    path("assets/<uuid:asset_id>/delete/", job_views.asset_delete, name="asset_delete"),
    path("presets/", job_views.preset_list, name="preset_list"),
    path("presets/new/", job_views.preset_new, name="preset_new"),
    path("presets/<int:preset_id>/", job_views.preset_edit, name="preset_edit"),
    path("presets/<int:preset_id>/copy/", job_views.preset_copy, name="preset_copy"),
    path("presets/<int:preset_id>/delete/", job_views.preset_delete, name="preset_delete"),
    path("settings/", workspace_views.workspace_settings, name="workspace_settings"),
    path("settings/name/", workspace_views.workspace_rename, name="workspace_rename"),
    path(
        "settings/segmind-plan/",
        workspace_views.workspace_segmind_plan,
        name="workspace_segmind_plan",
    ),
    path("api-keys/", api_key_views.api_keys, name="api_keys"),
    path("api-keys/<uuid:key_id>/revoke/", api_key_views.api_key_revoke, name="api_key_revoke"),
    path("credits/", billing_views.credits, name="credits"),
    path("credits/export.csv", billing_views.credits_export, name="credits_export"),
    path("credits/threshold/", billing_views.credits_threshold, name="credits_threshold"),
    path("credits/buy/", billing_views.credits_buy, name="credits_buy"),
    path("team/", team_views.team, name="team"),
    path("team/invite/", team_views.team_invite, name="team_invite"),
    path("team/<int:member_id>/role/", team_views.team_change_role, name="team_change_role"),
    path("team/<int:member_id>/remove/", team_views.team_remove, name="team_remove"),
    path(
        "team/invitations/<int:invitation_id>/revoke/",
        team_views.team_revoke_invitation,
        name="team_revoke_invitation",
    ),
    path(
        "team/invitations/<int:invitation_id>/resend/",
        team_views.team_resend_invitation,
        name="team_resend_invitation",
    ),
]

api_patterns = [
    path("models", jobs_api.models_list, name="api_models"),
    path("models/<str:slug>", jobs_api.model_retrieve, name="api_model"),
    path("models/<str:slug>/resolve", jobs_api.model_resolve, name="api_model_resolve"),
    path("jobs", jobs_api.jobs_list, name="api_jobs"),
    path("jobs/<uuid:job_id>", jobs_api.job_retrieve, name="api_job"),
    path("jobs/<uuid:job_id>/cancel", jobs_api.job_cancel, name="api_job_cancel"),
    path("jobs/<uuid:job_id>/rerun", jobs_api.job_rerun, name="api_job_rerun"),
    path("presets", jobs_api.presets_list, name="api_presets"),
    path("presets/<int:preset_id>", jobs_api.preset_detail, name="api_preset"),
    path("presets/<int:preset_id>/copy", jobs_api.preset_copy, name="api_preset_copy"),
    path("batches", jobs_api.batches_list, name="api_batches"),
    path("batches/<uuid:batch_id>", jobs_api.batch_retrieve, name="api_batch"),
    path("assets", jobs_api.assets_list, name="api_assets"),
    path("assets/<uuid:asset_id>", jobs_api.asset_retrieve, name="api_asset"),
    path("assets/<uuid:asset_id>/download", jobs_api.asset_download, name="api_asset_download"),
    path("credits", accounts_api.credits_retrieve, name="api_credits"),
    path("credits/ledger", accounts_api.credits_ledger, name="api_credits_ledger"),
    path("webhooks", webhooks_api.webhooks_list, name="api_webhooks"),
    path("webhooks/secret", webhooks_api.webhook_secret, name="api_webhook_secret"),
    path("webhooks/<uuid:endpoint_id>", webhooks_api.webhook_detail, name="api_webhook"),
    path("webhooks/<uuid:endpoint_id>/test", webhooks_api.webhook_test, name="api_webhook_test"),
    path(
        "webhooks/<uuid:endpoint_id>/deliveries",
        webhooks_api.webhook_deliveries,
        name="api_webhook_deliveries",
    ),
]

urlpatterns = [
    path("", account_views.home, name="home"),
    path("favicon.ico", account_views.favicon, name="favicon"),
    path("", include(auth_patterns)),
    path("w/<slug:workspace>/", include(workspace_patterns)),
    path("api/v1/", include(api_patterns)),
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[]), name="api_schema"),
    path(
        "api/docs/",
        # The split view loads its script from a URL rather than inline; the page still
        # has a small inline <style> of drf-spectacular's template.
        csp_extend(style_src=["'unsafe-inline'"])(
            SpectacularSwaggerSplitView.as_view(
                url_name="api_schema", permission_classes=[], template_name="api_docs.html"
            )
        ),
        name="api_docs",
    ),
    path("stripe/webhook/", billing_views.stripe_webhook, name="stripe_webhook"),
    path("samples/<str:name>.jpg", job_views.sample_image, name="sample_image"),
    path("samples/thumbs/<str:name>.jpg", job_views.sample_thumbnail, name="sample_thumbnail"),
    # Behind the admin's own check: staff whose session passed the second factor.
    path(
        "admin/assets/<uuid:asset_id>/",
        admin.site.admin_view(job_views.staff_asset_file),
        name="staff_asset_file",
    ),
    path("admin/", admin.site.urls),
]

handler404 = "productstudio.lib.errors.page_not_found"
handler500 = "productstudio.lib.errors.server_error"

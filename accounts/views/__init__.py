"""Account pages, by area (only productstudio/urls.py imports them):
- ``auth``: home, sign-up, password reset; ``security``: signing in, two factors
- ``workspace``: creating a workspace, its settings
- ``team``: members, roles, invitations
- ``api_keys``: the workspace's API keys
- ``billing``: the credits page, buying credits, Stripe's webhook
"""

"""What each role may do, and the API-key scopes that grant the same permissions."""

from __future__ import annotations

import enum

from vibethink.tenancy.models import Role


class Permission(enum.StrEnum):
    CELEBRITIES_READ = "celebrities:read"
    CELEBRITIES_WRITE = "celebrities:write"
    CONTRACTS_READ = "contracts:read"
    CONTRACTS_WRITE = "contracts:write"
    MEMBERS_READ = "members:read"
    MEMBERS_WRITE = "members:write"
    API_KEYS_READ = "api_keys:read"
    API_KEYS_WRITE = "api_keys:write"
    TENANT_READ = "tenant:read"
    TENANT_WRITE = "tenant:write"
    KNOWLEDGE_READ = "knowledge:read"
    KNOWLEDGE_WRITE = "knowledge:write"
    MODERATION_READ = "moderation:read"
    MODERATION_WRITE = "moderation:write"
    CHAT_COMPLETIONS = "chat:completions"
    DEPLOYMENTS_READ = "deployments:read"
    DEPLOYMENTS_WRITE = "deployments:write"
    CAMPAIGNS_READ = "campaigns:read"
    CAMPAIGNS_WRITE = "campaigns:write"
    BILLING_READ = "billing:read"
    BILLING_WRITE = "billing:write"
    COMPLIANCE_READ = "compliance:read"
    COMPLIANCE_WRITE = "compliance:write"
    COMPLIANCE_EVENTS = "compliance:events"


ALL_SCOPES = frozenset(p.value for p in Permission)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.PLATFORM_ADMIN: frozenset(Permission),
    Role.TALENT_OWNER: frozenset(Permission),
    Role.TALENT_MANAGER: frozenset(
        {
            Permission.CELEBRITIES_READ,
            Permission.CELEBRITIES_WRITE,
            Permission.CONTRACTS_READ,
            Permission.MEMBERS_READ,
            Permission.API_KEYS_READ,
            Permission.TENANT_READ,
            Permission.KNOWLEDGE_READ,
            Permission.KNOWLEDGE_WRITE,
            Permission.MODERATION_READ,
            Permission.MODERATION_WRITE,
            Permission.DEPLOYMENTS_READ,
            Permission.DEPLOYMENTS_WRITE,
            Permission.CAMPAIGNS_READ,
            Permission.CAMPAIGNS_WRITE,
            Permission.BILLING_READ,
            Permission.COMPLIANCE_READ,
        }
    ),
    Role.BRAND_MANAGER: frozenset(
        {
            Permission.CAMPAIGNS_READ,
            Permission.CAMPAIGNS_WRITE,
            Permission.CELEBRITIES_READ,
            Permission.MEMBERS_READ,
            Permission.MEMBERS_WRITE,
            Permission.API_KEYS_READ,
            Permission.API_KEYS_WRITE,
            Permission.TENANT_READ,
            Permission.TENANT_WRITE,
            Permission.BILLING_READ,
            Permission.COMPLIANCE_READ,
            Permission.COMPLIANCE_WRITE,
            Permission.COMPLIANCE_EVENTS,
        }
    ),
}

# Which roles a member holding `role` may grant to others (never more than they hold).
GRANTABLE_ROLES: dict[Role, frozenset[Role]] = {
    Role.PLATFORM_ADMIN: frozenset(Role),
    Role.TALENT_OWNER: frozenset({Role.TALENT_OWNER, Role.TALENT_MANAGER}),
    Role.TALENT_MANAGER: frozenset(),
    Role.BRAND_MANAGER: frozenset({Role.BRAND_MANAGER}),
}

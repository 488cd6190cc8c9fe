"""Imports every domain's tables so one metadata describes the whole schema (Alembic, tests)."""

from vibethink.billing import models as billing_models
from vibethink.campaigns import models as campaign_models
from vibethink.chat import models as chat_models
from vibethink.compliance import models as compliance_models
from vibethink.core import models as core_models
from vibethink.deployments import models as deployment_models
from vibethink.talent import models as talent_models
from vibethink.tenancy import models as tenancy_models
from vibethink.twin import models as twin_models

metadata = core_models.Base.metadata

__all__ = [
    "billing_models",
    "campaign_models",
    "chat_models",
    "compliance_models",
    "core_models",
    "deployment_models",
    "metadata",
    "talent_models",
    "tenancy_models",
    "twin_models",
]

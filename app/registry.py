"""Import every domain's models so SQLModel.metadata is complete whatever was imported first."""

from app.audit import models as audit_models
from app.auth import models as auth_models
from app.catalog import models as catalog_models
from app.people import models as people_models
from app.places import models as places_models
from app.sync import models as sync_models
from app.sync import tracking as sync_tracking  # the sync_log flush listener and its seal hook
from app.visits import models as visits_models

__all__ = ["audit_models", "auth_models", "catalog_models", "people_models", "places_models", "sync_models",
           "sync_tracking", "visits_models"]

"""Import every domain's models so SQLModel.metadata is complete whatever was imported first."""

from app.audit import models as audit_models
from app.auth import models as auth_models
from app.catalog import models as catalog_models
from app.people import models as people_models
from app.places import models as places_models
from app.visits import models as visits_models

__all__ = ["audit_models", "auth_models", "catalog_models", "people_models", "places_models", "visits_models"]

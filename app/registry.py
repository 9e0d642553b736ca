"""Import every domain's models so SQLModel.metadata is complete whatever was imported first."""

from app.auth import models as auth_models
from app.catalog import models as catalog_models
from app.cycle import models as cycle_models
from app.cycle.assistance import models as assistance_models
from app.cycle.reports import models as report_models
from app.cycle.verification import models as verification_models
from app.ledger import models as ledger_models
from app.ledger.outbox import models as outbox_models
from app.people import models as people_models
from app.places import models as places_models
from app.sharing.approvals import models as approval_models
from app.sharing.landlords import models as landlord_partner_models
from app.sharing.partners import models as partner_models
from app.sharing.profiles import models as profile_models
from app.sharing.uploads import models as police_upload_models
from app.sharing.webhooks import models as webhook_models
from app.sync import models as sync_models
from app.visits import models as visits_models

__all__ = ["approval_models", "assistance_models", "auth_models", "catalog_models", "cycle_models",
           "landlord_partner_models", "ledger_models", "outbox_models", "partner_models", "people_models",
           "places_models",
           "police_upload_models", "profile_models", "report_models", "sync_models", "verification_models",
           "visits_models", "webhook_models"]

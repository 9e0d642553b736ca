"""The URL map: public routes first, then one authenticated router per domain."""

from __future__ import annotations

from fastapi import APIRouter

from app.accounts.router import me_router
from app.accounts.router import router as users_router
from app.audit.access.router import router as audit_access_router
from app.audit.activity.router import router as audit_activity_router
from app.audit.board.router import public_router as audit_board_router
from app.audit.checkpoints.router import router as audit_checkpoints_router
from app.audit.pictures.router import router as audit_pictures_router
from app.audit.quality.router import router as audit_quality_router
from app.audit.router import router as audit_router
from app.auth.router import public_router as auth_public_router
from app.auth.router import router as auth_router
from app.catalog.router import router as catalog_router
from app.cycle.assistance.router import router as assistance_router
from app.cycle.reports.router import router as reports_router
from app.cycle.tasks.router import router as tasks_router
from app.cycle.verification.router import router as cycle_router
from app.people.imports.router import router as resident_import_router
from app.people.landlords.router import router as landlords_router
from app.people.records.router import router as resident_records_router
from app.people.register.router import router as residents_router
from app.people.workflows.router import router as resident_workflows_router
from app.places.router import router as places_router
from app.sharing.approvals.router import partner_router as disclosure_requests_partner_router
from app.sharing.approvals.router import router as disclosure_requests_router
from app.sharing.landlords.router import partner_router as landlord_partner_router
from app.sharing.landlords.router import public_router as landlord_public_router
from app.sharing.landlords.router import router as landlord_accounts_router
from app.sharing.landlords.tenants.router import partner_router as landlord_tenants_partner_router
from app.sharing.landlords.tenants.router import router as landlord_reports_router
from app.sharing.outflow.assistance.router import router as outflow_assistance_router
from app.sharing.outflow.router import router as outflow_router
from app.sharing.partners.oauth.router import router as partner_oauth_router
from app.sharing.partners.router import router as partner_clients_router
from app.sharing.police.router import router as police_router
from app.sharing.profiles.router import router as profiles_router
from app.sharing.uploads.router import partner_router as police_uploads_router
from app.sharing.uploads.router import router as police_reports_router
from app.sharing.webhooks.router import router as webhooks_router
from app.sync.router import router as sync_router
from app.system.router import public_router as system_public_router
from app.visits.photos.router import router as visit_photos_router
from app.visits.router import router as visits_router

API_PREFIX = "/api/v1"

# Reachable without a token. Everything else needs one and declares an access rule.
public_api = APIRouter()
public_api.include_router(auth_public_router)
public_api.include_router(partner_oauth_router)
public_api.include_router(landlord_public_router)

api = APIRouter()
api.include_router(auth_router)
api.include_router(me_router)
api.include_router(users_router)
api.include_router(places_router)
# Fixed paths (/residents/import…) before /residents/{id}.
api.include_router(resident_import_router)
api.include_router(residents_router)
api.include_router(landlords_router)
api.include_router(resident_records_router)
api.include_router(resident_workflows_router)
api.include_router(catalog_router)
api.include_router(visits_router)
api.include_router(visit_photos_router)
api.include_router(tasks_router)
api.include_router(assistance_router)
api.include_router(cycle_router)
api.include_router(reports_router)
api.include_router(sync_router)
api.include_router(audit_router)
api.include_router(audit_checkpoints_router)
api.include_router(audit_quality_router)
api.include_router(audit_activity_router)
api.include_router(audit_access_router)
api.include_router(audit_pictures_router)
api.include_router(partner_clients_router)
api.include_router(profiles_router)
api.include_router(police_router)
api.include_router(outflow_router)
api.include_router(outflow_assistance_router)
# Partners: landlords (docs/sharing.md).
api.include_router(landlord_partner_router)
api.include_router(landlord_tenants_partner_router)
api.include_router(landlord_accounts_router)
api.include_router(landlord_reports_router)
api.include_router(police_uploads_router)
api.include_router(police_reports_router)
api.include_router(webhooks_router)
api.include_router(disclosure_requests_router)
api.include_router(disclosure_requests_partner_router)

root_public = APIRouter()
root_public.include_router(system_public_router)
root_public.include_router(audit_board_router)

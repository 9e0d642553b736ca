// The phone's local database schema (WatermelonDB appSchema, version 4) for the synced tables.
//
// Written from app/sync/wire.py (docs/sync.md "Synced tables and columns"): one column per wire column
// except `id` (WatermelonDB adds id, _status and _changed itself). Strings stay strings; integers, reals,
// dates and times are numbers (dates and times as epoch milliseconds); booleans are booleans; a column the
// server may leave null is optional. tests/sync/test_watermelon_interop.py fails when this file and
// wire.py disagree, so a server column change cannot silently drift from what phones declare.
'use strict'

const { appSchema, tableSchema } = require('@nozbe/watermelondb')
const { schemaMigrations, createTable, addColumns } = require('@nozbe/watermelondb/Schema/migrations')

const SCHEMA_VERSION = 4

// Version 2: the monthly verification (periods and verifications, docs/cycle.md).
const periods = {
  name: 'periods',
  columns: [
    { name: 'month', type: 'string' },
    { name: 'community_id', type: 'string' },
    { name: 'state', type: 'string' },
    { name: 'opened_at', type: 'number' },
    { name: 'opened_by', type: 'string', isOptional: true },
    { name: 'closed_at', type: 'number', isOptional: true },
    { name: 'closed_by', type: 'string', isOptional: true },
    { name: 'created_at', type: 'number' },
    { name: 'updated_at', type: 'number' },
    { name: 'version', type: 'number' },
  ],
}

const verificationsV2 = {
  name: 'verifications',
  columns: [
    { name: 'period_id', type: 'string' },
    { name: 'month', type: 'string' },
    { name: 'resident_id', type: 'string' },
    { name: 'community_id', type: 'string' },
    { name: 'dwelling_id', type: 'string', isOptional: true },
    { name: 'outcome', type: 'string', isOptional: true },
    { name: 'evidence', type: 'string', isOptional: true },
    { name: 'visit_id', type: 'string', isOptional: true },
    { name: 'note', type: 'string', isOptional: true },
    { name: 'new_dwelling_id', type: 'string', isOptional: true },
    { name: 'moved_on', type: 'number', isOptional: true },
    { name: 'not_found_streak', type: 'number' },
    { name: 'verified_by', type: 'string', isOptional: true },
    { name: 'verified_at', type: 'number', isOptional: true },
    { name: 'created_at', type: 'number' },
    { name: 'updated_at', type: 'number' },
    { name: 'version', type: 'number' },
  ],
}

// Version 3: the linked visit's check-in flags and a partner's proposed outcome on a verification.
const verificationsV3Columns = [
  { name: 'checkin_flags', type: 'string' },
  { name: 'proposed_outcome', type: 'string', isOptional: true },
  { name: 'proposed_source', type: 'string', isOptional: true },
  { name: 'proposed_on', type: 'number', isOptional: true },
  { name: 'proposed_at', type: 'number', isOptional: true },
  { name: 'proposed_by', type: 'string', isOptional: true },
]
const verifications = { name: 'verifications', columns: [...verificationsV2.columns, ...verificationsV3Columns] }

// Version 4: a task may have no resident yet (a reported arrival: a person a police station registered here whom
// the register does not have), and names the reported dwelling. WatermelonDB reads `isOptional` from the schema
// in code (its SQLite columns carry no NOT NULL), so making `resident_id` optional needs no migration step.
const tasksV4Columns = [{ name: 'dwelling_id', type: 'string', isOptional: true }]

const schema = appSchema({
  version: SCHEMA_VERSION,
  tables: [
    tableSchema({
      name: 'divisions',
      columns: [
        { name: 'code', type: 'string' },
        { name: 'name', type: 'string' },
        { name: 'level', type: 'string' },
        { name: 'parent_id', type: 'string', isOptional: true },
        { name: 'path', type: 'string' },
        { name: 'district_code', type: 'string', isOptional: true },
        { name: 'community_type', type: 'string', isOptional: true },
        { name: 'vintage', type: 'number' },
        { name: 'active', type: 'boolean' },
        { name: 'created_at', type: 'number' },
        { name: 'updated_at', type: 'number' },
        { name: 'version', type: 'number' },
      ],
    }),
    tableSchema({
      name: 'service_items',
      columns: [
        { name: 'code', type: 'string' },
        { name: 'name_zh', type: 'string' },
        { name: 'name_en', type: 'string' },
        { name: 'description', type: 'string' },
        { name: 'unit', type: 'string' },
        { name: 'sort_order', type: 'number' },
        { name: 'effective_from', type: 'number' },
        { name: 'effective_to', type: 'number', isOptional: true },
        { name: 'sensitive', type: 'boolean' },
        { name: 'since_version', type: 'number' },
        { name: 'retired_in_version', type: 'number', isOptional: true },
        { name: 'created_at', type: 'number' },
        { name: 'updated_at', type: 'number' },
        { name: 'version', type: 'number' },
      ],
    }),
    tableSchema({
      name: 'dwellings',
      columns: [
        { name: 'community_id', type: 'string' },
        { name: 'grid_id', type: 'string', isOptional: true },
        { name: 'address', type: 'string' },
        { name: 'kind', type: 'string' },
        { name: 'lat', type: 'number', isOptional: true },
        { name: 'lng', type: 'number', isOptional: true },
        { name: 'landlord_id', type: 'string', isOptional: true },
        { name: 'active', type: 'boolean' },
        { name: 'created_at', type: 'number' },
        { name: 'updated_at', type: 'number' },
        { name: 'version', type: 'number' },
      ],
    }),
    tableSchema({
      name: 'residents',
      columns: [
        { name: 'community_id', type: 'string' },
        { name: 'dwelling_id', type: 'string', isOptional: true },
        { name: 'name', type: 'string' },
        { name: 'sex', type: 'string' },
        { name: 'birth_date', type: 'number' },
        { name: 'id_number', type: 'string', isOptional: true },
        { name: 'id_verified', type: 'boolean' },
        { name: 'phone', type: 'string', isOptional: true },
        { name: 'ethnicity', type: 'string', isOptional: true },
        { name: 'hukou_code', type: 'string' },
        { name: 'hukou_address', type: 'string', isOptional: true },
        { name: 'arrival_date', type: 'number' },
        { name: 'marital_status', type: 'string' },
        { name: 'employer', type: 'string', isOptional: true },
        { name: 'occupation', type: 'string', isOptional: true },
        { name: 'residence_permit_no', type: 'string', isOptional: true },
        { name: 'status', type: 'string' },
        { name: 'left_on', type: 'number', isOptional: true },
        { name: 'left_reason', type: 'string', isOptional: true },
        { name: 'key_person', type: 'boolean' },
        { name: 'merged_into_id', type: 'string', isOptional: true },
        { name: 'created_at', type: 'number' },
        { name: 'updated_at', type: 'number' },
        { name: 'version', type: 'number' },
      ],
    }),
    tableSchema({
      name: 'fp_documents',
      columns: [
        { name: 'resident_id', type: 'string' },
        { name: 'number', type: 'string', isOptional: true },
        { name: 'issuing_division', type: 'string', isOptional: true },
        { name: 'issued_on', type: 'number', isOptional: true },
        { name: 'expires_on', type: 'number', isOptional: true },
        { name: 'status', type: 'string' },
        { name: 'checked_at', type: 'number', isOptional: true },
        { name: 'checked_by', type: 'string', isOptional: true },
        { name: 'created_at', type: 'number' },
        { name: 'updated_at', type: 'number' },
        { name: 'version', type: 'number' },
      ],
    }),
    tableSchema({
      name: 'visits',
      columns: [
        { name: 'resident_id', type: 'string' },
        { name: 'worker_id', type: 'string' },
        { name: 'community_id', type: 'string' },
        { name: 'dwelling_id', type: 'string', isOptional: true },
        { name: 'mode', type: 'string' },
        { name: 'purpose', type: 'string' },
        { name: 'outcome', type: 'string' },
        { name: 'started_at', type: 'number' },
        { name: 'ended_at', type: 'number' },
        { name: 'received_at', type: 'number' },
        { name: 'notes', type: 'string' },
        { name: 'catalog_version', type: 'number' },
        { name: 'lat', type: 'number', isOptional: true },
        { name: 'lng', type: 'number', isOptional: true },
        { name: 'coord_system', type: 'string', isOptional: true },
        { name: 'accuracy_m', type: 'number', isOptional: true },
        { name: 'provider', type: 'string', isOptional: true },
        { name: 'mock_location', type: 'boolean' },
        { name: 'fix_time', type: 'number', isOptional: true },
        { name: 'distance_m', type: 'number', isOptional: true },
        { name: 'no_coordinates_reason', type: 'string', isOptional: true },
        { name: 'flags', type: 'string' },
        { name: 'review_state', type: 'string' },
        { name: 'reviewed_by', type: 'string', isOptional: true },
        { name: 'reviewed_at', type: 'number', isOptional: true },
        { name: 'review_reason', type: 'string', isOptional: true },
        { name: 'corrects_visit_id', type: 'string', isOptional: true },
        { name: 'correction_reason', type: 'string', isOptional: true },
        { name: 'created_at', type: 'number' },
        { name: 'version', type: 'number' },
      ],
    }),
    tableSchema({
      name: 'service_deliveries',
      columns: [
        { name: 'visit_id', type: 'string' },
        { name: 'resident_id', type: 'string' },
        { name: 'item_id', type: 'string' },
        { name: 'item_code', type: 'string' },
        { name: 'quantity', type: 'number' },
        { name: 'notes', type: 'string' },
        { name: 'delivered_on', type: 'number' },
        { name: 'created_at', type: 'number' },
      ],
    }),
    tableSchema({
      name: 'tasks',
      columns: [
        { name: 'resident_id', type: 'string', isOptional: true },
        ...tasksV4Columns,
        { name: 'community_id', type: 'string' },
        { name: 'kind', type: 'string' },
        { name: 'period', type: 'string' },
        { name: 'due_date', type: 'number' },
        { name: 'state', type: 'string' },
        { name: 'reason', type: 'string', isOptional: true },
        { name: 'note', type: 'string', isOptional: true },
        { name: 'created_by', type: 'string', isOptional: true },
        { name: 'source_visit_id', type: 'string', isOptional: true },
        { name: 'completed_by_visit_id', type: 'string', isOptional: true },
        { name: 'completed_at', type: 'number', isOptional: true },
        { name: 'cancelled_by', type: 'string', isOptional: true },
        { name: 'cancel_reason', type: 'string', isOptional: true },
        { name: 'created_at', type: 'number' },
        { name: 'updated_at', type: 'number' },
        { name: 'version', type: 'number' },
      ],
    }),
    tableSchema(periods),
    tableSchema(verifications),
  ],
})

// Later schema versions add their steps here (and the server adds the version to SUPPORTED_SCHEMA_VERSIONS);
// the next pull then sends `migration`, and the server resends the tables the steps touched.
const migrations = schemaMigrations({
  migrations: [
    { toVersion: 4, steps: [addColumns({ table: 'tasks', columns: tasksV4Columns })] },
    { toVersion: 3, steps: [addColumns({ table: 'verifications', columns: verificationsV3Columns })] },
    { toVersion: 2, steps: [createTable(periods), createTable(verificationsV2)] },
  ],
})

module.exports = { schema, migrations, SCHEMA_VERSION }

// How a phone app syncs with the server: WatermelonDB's own synchronize(), unchanged.
//
// This is the code docs/sync.md ("How to call synchronize()") shows app developers, and the code the
// interop test runs (tests/interop/phone.js, driven by tests/sync/test_watermelon_interop.py).
'use strict'

const { synchronize } = require('@nozbe/watermelondb/sync')

class SyncHttpError extends Error {
  constructor(status, body) {
    super(`sync: HTTP ${status} ${(body && body.code) || ''}`.trim())
    this.status = status
    this.code = (body && body.code) || null // e.g. device_revoked, cursor_ahead: see docs/sync.md
  }
}

// server: { baseUrl, token, deviceId, appVersion }. `token` is read on every request, so the app can
// refresh it between syncs.
function headers(server) {
  return {
    Authorization: `Bearer ${server.token}`,
    'X-Device-Id': server.deviceId, // stable per installation: 8-64 of [A-Za-z0-9._-]
    'X-App-Version': server.appVersion,
    'X-Device-Time': String(Date.now()), // reported as clock skew only, never trusted
  }
}

async function failed(response) {
  let body = null
  try {
    body = await response.json()
  } catch (e) {
    body = null
  }
  return new SyncHttpError(response.status, body)
}

async function pullChanges(server, { lastPulledAt, schemaVersion, migration }) {
  const query = new URLSearchParams({
    last_pulled_at: lastPulledAt == null ? 'null' : String(lastPulledAt),
    schema_version: String(schemaVersion),
    migration: JSON.stringify(migration == null ? null : migration),
  })
  // fetch() sends Accept-Encoding: gzip and inflates the (large, on a first sync) response itself.
  const response = await fetch(`${server.baseUrl}/api/v1/sync/pull?${query}`, { headers: headers(server) })
  if (!response.ok) throw await failed(response)
  const { changes, timestamp } = await response.json()
  return { changes, timestamp }
}

async function pushChanges(server, { changes, lastPulledAt }) {
  const response = await fetch(`${server.baseUrl}/api/v1/sync/push?last_pulled_at=${lastPulledAt}`, {
    method: 'POST',
    headers: { ...headers(server), 'Content-Type': 'application/json' },
    body: JSON.stringify(changes),
  })
  if (!response.ok) throw await failed(response) // nothing was applied: the same changes go next time
  // {ok: true, rejected: [{table, id, code, message}]}: a rejected record is marked synced like the rest;
  // the next pull brings the server's version of it (a refused create arrives as deleted).
  const result = await response.json()
  return { rejected: result.rejected || [] }
}

// One sync: pull, apply, push. `wrapPush` exists for tests (to lose a push response on purpose).
async function sync(database, server, { wrapPush = (push) => push } = {}) {
  let rejected = []
  const push = wrapPush((args) => pushChanges(server, args))
  await synchronize({
    database,
    pullChanges: (args) => pullChanges(server, args),
    pushChanges: async (args) => {
      rejected = (await push(args)).rejected
    },
    sendCreatedAsUpdated: true, // required: the server reports every change under `updated`
    migrationsEnabledAtVersion: 1,
  })
  return { rejected } // when non-empty, sync again soon: the next pull corrects the refused records
}

module.exports = { sync, pullChanges, pushChanges, SyncHttpError }

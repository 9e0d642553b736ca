// A fleet of simulated phones: WatermelonDB (LokiJS adapter, in memory) syncing with the real server.
//
// Driven by tests/sync/test_watermelon_interop.py over stdin/stdout, one JSON object per line:
//   request  {"seq": n, "cmd": "...", ...arguments}
//   response {"seq": n, "ok": true, "result": ...} or {"seq": n, "ok": false, "error": "...", "code": ...}
// Commands:
//   open    {phone, baseUrl, token, deviceId}        a new, empty phone database
//   token   {phone, token}                           a fresh access token
//   sync    {phone, loseResponse?}                   synchronize(); with loseResponse the push request is
//                                                    sent and answered but the answer is thrown away
//   get     {phone, table, id}                       the raw record (with _status/_changed) or null
//   ids     {phone, table}                           ids of the records not deleted locally
//   count   {phone}                                  {table: number of records} for every table
//   dump    {phone}                                  {table: {id: raw record without _status/_changed}}
//   update  {phone, table, id, fields}               change columns through the model API
//   create  {phone, table, fields}                   a new record (WatermelonDB's 16-character id)
//   delete  {phone, table, id}                       markAsDeleted (synced as a deletion)
//   pending {phone}                                  {table: {created, updated, deleted}} not yet pushed
//   ids-as {kind}                                    new records' ids: "uuid" (crypto.randomUUID) or "default"
// Anything WatermelonDB logs goes to stderr, so stdout carries only responses.
'use strict'

const readline = require('readline')
const { Database, Model, Q } = require('@nozbe/watermelondb')
const LokiJSAdapter = require('@nozbe/watermelondb/adapters/lokijs').default
const { hasUnsyncedChanges } = require('@nozbe/watermelondb/sync')
const { setGenerator } = require('@nozbe/watermelondb/utils/common/randomId')
const builtinRandomId = require('@nozbe/watermelondb/utils/common/randomId/randomId').default
const crypto = require('crypto')
const { schema, migrations } = require('./schema')
const { sync, SyncHttpError } = require('./sync')

const out = process.stdout
for (const level of ['log', 'info', 'warn', 'debug']) console[level] = (...args) => console.error(...args)

const TABLES = Object.keys(schema.tables)
const modelClasses = TABLES.map((table) => {
  const cls = class extends Model {}
  cls.table = table
  return cls
})

const phones = new Map()
let dbCounter = 0

function phone(name) {
  const p = phones.get(name)
  if (!p) throw new Error(`no phone ${name}`)
  return p
}

function setFields(record, fields) {
  for (const [column, value] of Object.entries(fields)) record._setRaw(column, value)
}

async function find(database, table, id) {
  const found = await database.get(table).query(Q.where('id', id)).fetch()
  return found.length ? found[0] : null
}

const commands = {
  async open({ phone: name, baseUrl, token, deviceId }) {
    dbCounter += 1
    const adapter = new LokiJSAdapter({
      schema,
      migrations,
      useWebWorker: false,
      useIncrementalIndexedDB: false,
      dbName: `phone-${dbCounter}`,
      extraLokiOptions: { autosave: false }, // in memory; Loki's autosave timer would keep Node alive
    })
    const database = new Database({ adapter, modelClasses })
    phones.set(name, { database, server: { baseUrl, token, deviceId, appVersion: '1.0.0-interop' } })
    return { tables: TABLES }
  },

  async token({ phone: name, token }) {
    phone(name).server.token = token
    return null
  },

  async sync({ phone: name, loseResponse = false }) {
    const { database, server } = phone(name)
    let pushed = null
    const wrapPush = (push) => async (args) => {
      pushed = {}
      for (const [table, c] of Object.entries(args.changes)) {
        const n = c.created.length + c.updated.length + c.deleted.length
        if (n) pushed[table] = { created: c.created.length, updated: c.updated.length, deleted: c.deleted.length }
      }
      const result = await push(args)
      if (loseResponse) throw new Error('push response lost (simulated)')
      return result
    }
    try {
      const { rejected } = await sync(database, server, { wrapPush })
      return { pushed, rejected, unsynced: await hasUnsyncedChanges({ database }) }
    } catch (error) {
      const code = error instanceof SyncHttpError ? error.code : null
      return { pushed, error: error.message, code, status: error.status || null,
        unsynced: await hasUnsyncedChanges({ database }) }
    }
  },

  async get({ phone: name, table, id }) {
    const record = await find(phone(name).database, table, id)
    return record ? { ...record._raw } : null
  },

  async ids({ phone: name, table }) {
    return (await phone(name).database.get(table).query().fetchIds()).sort()
  },

  async dump({ phone: name }) {
    const { database } = phone(name)
    const result = {}
    for (const table of TABLES) {
      result[table] = {}
      for (const record of await database.get(table).query().fetch()) {
        const { _status, _changed, ...raw } = record._raw
        result[table][record.id] = raw
      }
    }
    return result
  },

  async count({ phone: name }) {
    const { database } = phone(name)
    const counts = {}
    for (const table of TABLES) counts[table] = await database.get(table).query().fetchCount()
    return counts
  },

  async update({ phone: name, table, id, fields }) {
    const { database } = phone(name)
    await database.write(async () => {
      const record = await database.get(table).find(id)
      await record.update((r) => setFields(r, fields))
    })
    return { ...(await database.get(table).find(id))._raw }
  },

  async create({ phone: name, table, fields }) {
    const { database } = phone(name)
    const record = await database.write(() => database.get(table).create((r) => setFields(r, fields)))
    return { ...record._raw }
  },

  async delete({ phone: name, table, id }) {
    const { database } = phone(name)
    await database.write(async () => {
      const record = await database.get(table).find(id)
      await record.markAsDeleted()
    })
    return null
  },

  async 'ids-as'({ kind }) {
    // An app may install a UUID generator (WatermelonDB's setGenerator); the server must answer it so the
    // phone converges (docs/sync.md: residents and dwellings take WatermelonDB ids only).
    setGenerator(kind === 'uuid' ? () => crypto.randomUUID() : builtinRandomId)
    return null
  },

  async pending({ phone: name }) {
    const { database } = phone(name)
    const result = {}
    for (const table of TABLES) {
      const local = await database.get(table).query().fetch()
      const deleted = await database.adapter.getDeletedRecords(table)
      const created = local.filter((r) => r._raw._status === 'created').map((r) => r.id).sort()
      const updated = local.filter((r) => r._raw._status === 'updated').map((r) => r.id).sort()
      if (created.length || updated.length || deleted.length) result[table] = { created, updated, deleted }
    }
    return result
  },
}

async function handle(line) {
  let request = null
  try {
    request = JSON.parse(line)
    const command = commands[request.cmd]
    if (!command) throw new Error(`unknown command ${request.cmd}`)
    const result = await command(request)
    out.write(JSON.stringify({ seq: request.seq, ok: true, result }) + '\n')
  } catch (error) {
    const seq = request ? request.seq : null
    out.write(JSON.stringify({ seq, ok: false, error: String(error && error.stack ? error.stack : error) }) + '\n')
  }
}

async function main() {
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
  for await (const line of lines) {
    if (line.trim()) await handle(line)
  }
  process.exit(0)
}

main()

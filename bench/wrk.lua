-- One figure of bench/floor.py, driven by wrk (bench/wrk.py writes the spec and reads the result).
-- The spec file named by WRK_SPEC returns {method, paths, headers, bodies, prefix}: requests rotate over the
-- paths (and the bodies, when there are any); "{{ID}}" in a body becomes a client id unique to the request.
-- Every response is counted by status; done() prints the counts and wrk's summary as one JSON line.

local spec = dofile(os.getenv("WRK_SPEC"))
local threads = {}
local made = 0

function setup(thread)
  made = made + 1
  thread:set("tid", made)
  table.insert(threads, thread)
end

function init(args)
  counts = {}
  sent = 0
  prepared = {}
  if #spec.bodies == 0 then
    for i, path in ipairs(spec.paths) do
      prepared[i] = wrk.format(spec.method, path, spec.headers)
    end
  end
end

function request()
  sent = sent + 1
  if #spec.bodies == 0 then
    return prepared[(sent - 1) % #prepared + 1]
  end
  local id = string.format("%s-%02d-%010d", spec.prefix, tid, sent)
  local body = string.gsub(spec.bodies[(sent - 1) % #spec.bodies + 1], "{{ID}}", id)
  return wrk.format(spec.method, spec.paths[(sent - 1) % #spec.paths + 1], spec.headers, body)
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("counts") or {}) do
      merged[status] = (merged[status] or 0) + n
    end
  end
  local statuses = {}
  for status, n in pairs(merged) do
    table.insert(statuses, string.format('"%d": %d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, ' ..
    '"timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    table.concat(statuses, ", ")))
end

-- POST one body per request, taken in turn from a file of JSON bodies (one per line); "{ID}" in a body
-- is replaced by a number unique to this thread and request, so no request repeats an earlier one (the
-- service would answer a repeat from its idempotency record instead of deciding again).
-- Environment: TG_BODIES (file), TG_AUTH (bearer key). At the end, one JSON line with the latency
-- percentiles in microseconds, prefixed "TGRESULT ".

local bodies, counter, thread_id = {}, 0, 0
local threads = {}

function setup(thread)
    thread:set("id", #threads + 1)
    table.insert(threads, thread)
end

function init(args)
    thread_id = id
    for line in io.lines(os.getenv("TG_BODIES")) do
        table.insert(bodies, line)
    end
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
    local auth = os.getenv("TG_AUTH")
    if auth and auth ~= "" then
        wrk.headers["Authorization"] = "Bearer " .. auth
    end
end

function request()
    counter = counter + 1
    local body = bodies[(counter + thread_id * 7919) % #bodies + 1]
    body = body:gsub("{ID}", string.format("%d-%d-%d", os.time() % 100000, thread_id, counter))
    return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
    local errors = summary.errors
    io.write(string.format(
        'TGRESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
        '"max_us": %d, "non_2xx": %d, "socket_errors": %d}\n',
        summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
        latency:percentile(99), latency.max, errors.status,
        errors.connect + errors.read + errors.write + errors.timeout))
end

-- wrk script for scripts/loadtest.sh. Configured through the environment:
--   LOADTEST_METHOD            GET (default) or POST
--   LOADTEST_BODY_FILE         file whose contents are the request body (sent as JSON)
--   LOADTEST_HEADER            one extra header, "Name: value" (e.g. the API key)
--   LOADTEST_RATE_PER_THREAD   0 or unset: as fast as the connections go (closed loop);
--                              N > 0: pace each wrk thread to N requests/s
--   LOADTEST_SPREAD            N > 0: each request's path has its "%06d" replaced by a random
--                              number below N (many companies instead of one)
-- and prints one machine-readable line at the end:
--   LOADTEST rps=.. p50_us=.. p99_us=.. requests=.. non2xx=.. socket_errors=..
--
-- Pacing: Debian's wrk cannot hold a fixed rate (that is wrk2), but it calls delay() before
-- every request and waits that many milliseconds. delay() hands out send slots 1/N s apart on
-- a monotonic clock (LuaJIT FFI), so a thread sends at most N requests/s. A slot already past is
-- moved to now, so a slow server lowers the rate instead of getting a burst: the rate wrk
-- reports is the one achieved. Latency is still measured from the moment each request is
-- written, as wrk always does (no coordinated-omission correction).

wrk.method = os.getenv("LOADTEST_METHOD") or "GET"

local body_file = os.getenv("LOADTEST_BODY_FILE")
if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/json"
end

local header = os.getenv("LOADTEST_HEADER")
if header and header ~= "" then
  local name, value = header:match("^([^:]+):%s*(.*)$")
  wrk.headers[name] = value
end

local spread = tonumber(os.getenv("LOADTEST_SPREAD") or "0") or 0
if spread > 0 then
  local template = wrk.path
  function request()
    local path = template:gsub("%%06d", string.format("%06d", math.random(0, spread - 1)))
    return wrk.format(nil, path)
  end
end

local rate = tonumber(os.getenv("LOADTEST_RATE_PER_THREAD") or "0") or 0
if rate > 0 then
  local ffi = require("ffi")
  ffi.cdef [[
    typedef struct { long tv_sec; long tv_nsec; } loadtest_timespec;
    int clock_gettime(int clock_id, loadtest_timespec *tp);
  ]]
  local ts = ffi.new("loadtest_timespec")
  local CLOCK_MONOTONIC = 1
  local function now_ms()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
    return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
  end
  local interval_ms = 1000 / rate
  local next_slot = nil

  function delay()
    local now = now_ms()
    if next_slot == nil or next_slot < now then
      next_slot = now
    end
    local wait = next_slot - now
    next_slot = next_slot + interval_ms
    return math.floor(wait)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "LOADTEST rps=%.1f p50_us=%d p99_us=%d requests=%d non2xx=%d socket_errors=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout))
end

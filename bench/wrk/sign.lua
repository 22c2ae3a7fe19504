-- The sign form flow, one new supporter per signature (the same mix as bench/load.py sign):
--   wrk -t N -c N -s sign.lua http://host:port -- SLUG TAG MAX_PER_THREAD
-- Run with one connection per thread: each thread is one supporter at a time with its own
-- cookie. It GETs the petition page without a cookie (a first visit), takes the CSRF token
-- from the form and the session cookie from Set-Cookie, POSTs a valid signature with a
-- unique email, and starts over; the 303 is not followed. It stops after MAX_PER_THREAD
-- signatures (or when wrk's duration ends). done() prints one JSON line (WRKSIGN ...) with
-- the signatures, the statuses, the errors by kind and the GET/POST/flow latencies, timed
-- with the monotonic clock through LuaJIT's FFI.
--
-- Each thread keeps what done() reads as strings and numbers: wrk 4.1's thread:get() pops
-- one value too many from the thread's stack when it copies a table (script_copy_value),
-- which corrupts that stack and crashed wrk now and then.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("bench_timespec")

local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local NAMES = { "Ayşe Yılmaz", "Иван Петров", "ئابدۇرېھىم ئۆتكۈر", "王小明", "Marie Dubois",
  "John O'Neill", "Zoë Ünal", "Gulnara Ablikim", "Sam Taylor", "Nur Aziz" }
local COUNTRIES = { "GB", "DE", "TR", "US", "NL", "FR", "KZ", "SE", "CA", "AU" }
local DOMAINS = { "example.org", "example.com", "gmail.com", "posteo.de", "proton.me" }
local POSTCODES = { "SW1A 1AA", "10115", "34000", "1012 AB", "M5V 2T6" }
local SOURCES = { "stall-2026-12-05", "qr-poster" }
local CSRF = 'name="csrf_token" type="hidden" value="([^"]+)"'

local function encode(text)
  return (text:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

local function pick(list)
  return list[math.random(#list)]
end

-- main state: one entry per thread, read back in done()
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  slug, tag, max_signed = args[1], args[2], tonumber(args[3])
  math.randomseed(thread_id + 1)
  for i, name in ipairs(NAMES) do NAMES[i] = encode(name) end
  for i, code in ipairs(POSTCODES) do POSTCODES[i] = encode(code) end
  phase = "get"          -- what the next request is; changed only by responses
  signed, issued = 0, 0
  statuses, errors = {}, {}
  -- read by done(): "key=n" lines and comma-separated seconds
  statuses_s, errors_s = "", ""
  lat_get_s, lat_post_s, lat_flow_s = "", "", ""
  started, flow_started = 0, 0
  page, form, cookie = nil, nil, nil
end

local function serialise(map)
  local lines = {}
  for key, n in pairs(map) do lines[#lines + 1] = key .. "=" .. n end
  return table.concat(lines, "\n")
end

local function count_status(key)
  statuses[key] = (statuses[key] or 0) + 1
  statuses_s = serialise(statuses)
end

local function count_error(key)
  errors[key] = (errors[key] or 0) + 1
  errors_s = serialise(errors)
end

local function seconds(value)
  return string.format("%.6f,", value)
end

local function next_page()
  local src = math.random() < 0.3 and pick(SOURCES) or ""
  page = "/petitions/" .. slug .. (src ~= "" and ("?src=" .. src) or "")
  return src
end

local function next_form(token, src)
  issued = issued + 1
  -- A hyphen between the numbers: Gmail ignores dots, and so does the app's duplicate check
  -- (DOTLESS_EMAIL_DOMAINS), which took supporter.T.1.23 and supporter.T.12.3 as one address.
  local email = string.format("supporter.%s.%d-%d@%s", tag, thread_id, issued,
    DOMAINS[issued % #DOMAINS + 1])
  local parts = { "csrf_token=" .. encode(token), "src=" .. src, "name=" .. pick(NAMES),
    "email=" .. encode(email), "country=" .. pick(COUNTRIES),
    "postcode=" .. (math.random() < 0.5 and pick(POSTCODES) or "") }
  if math.random() < 0.4 then parts[#parts + 1] = "contact_consent=y" end
  if math.random() < 0.5 then parts[#parts + 1] = "public_consent=y" end
  return table.concat(parts, "&")
end

local pending_src = ""

function request()
  started = now()
  if phase == "get" then
    if page == nil then pending_src = next_page() end
    flow_started = started
    return wrk.format("GET", page, {})
  end
  return wrk.format("POST", "/petitions/" .. slug .. "/sign", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = cookie,
  }, form)
end

function response(status, headers, body)
  local elapsed = now() - started
  if phase == "get" then
    lat_get_s = lat_get_s .. seconds(elapsed)
    count_status("GET " .. status)
    page = nil -- the next supporter picks their own page
    if status < 200 or status >= 400 then
      count_error("GET " .. status)
      return
    end
    local token = body and body:match(CSRF)
    local set_cookie = headers["Set-Cookie"] or headers["set-cookie"]
    if token == nil or set_cookie == nil then
      count_error("no CSRF token or cookie")
      return
    end
    cookie = set_cookie:match("^[^;]+")
    form = next_form(token, pending_src)
    phase = "post"
    return
  end
  local done_at = now()
  lat_post_s = lat_post_s .. seconds(elapsed)
  lat_flow_s = lat_flow_s .. seconds(done_at - flow_started)
  count_status("POST " .. status)
  if status == 303 then
    signed = signed + 1
  else
    count_error("POST " .. status)
  end
  phase = "get"
  if signed >= max_signed then
    wrk.thread:stop()
  end
end

local function percentiles(values)
  if #values == 0 then
    return '{"p50": null, "p90": null, "p99": null, "max": null, "mean": null}'
  end
  table.sort(values)
  local sum = 0
  for _, v in ipairs(values) do sum = sum + v end
  local function rank(p)
    local i = math.floor(p / 100 * #values + 0.5)
    return values[math.min(#values, math.max(1, i))] * 1000
  end
  return string.format('{"p50": %.2f, "p90": %.2f, "p99": %.2f, "max": %.2f, "mean": %.2f}',
    rank(50), rank(90), rank(99), values[#values] * 1000, sum / #values * 1000)
end

local function json_counts(map)
  local parts = {}
  for key, n in pairs(map) do
    parts[#parts + 1] = string.format('"%s": %d', key, n)
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

function done(summary, latency, requests)
  local total_signed = 0
  local all_statuses, all_errors = {}, {}
  local get, post, flow = {}, {}, {}
  local function add_counts(into, text)
    for key, n in text:gmatch("([^\n=]+)=(%d+)") do into[key] = (into[key] or 0) + tonumber(n) end
  end
  local function add_seconds(into, text)
    for v in text:gmatch("([^,]+),") do into[#into + 1] = tonumber(v) end
  end
  for _, thread in ipairs(threads) do
    total_signed = total_signed + thread:get("signed")
    add_counts(all_statuses, thread:get("statuses_s"))
    add_counts(all_errors, thread:get("errors_s"))
    add_seconds(get, thread:get("lat_get_s"))
    add_seconds(post, thread:get("lat_post_s"))
    add_seconds(flow, thread:get("lat_flow_s"))
  end
  local e = summary.errors
  for key, n in pairs({ connect = e.connect, read = e.read, write = e.write, timeout = e.timeout }) do
    if n > 0 then all_errors[key] = n end
  end
  io.write(string.format(
    'WRKSIGN {"requests": %d, "duration_us": %d, "bytes": %d, "signatures": %d, ' ..
    '"statuses": %s, "errors": %s, "latency_ms": {"get": %s, "post": %s, "flow": %s}}\n',
    summary.requests, summary.duration, summary.bytes, total_signed,
    json_counts(all_statuses), json_counts(all_errors),
    percentiles(get), percentiles(post), percentiles(flow)))
end

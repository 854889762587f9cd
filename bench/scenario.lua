-- bench/scenario.lua: the one wrk script behind every scenario of bench/run.
--
--   wrk -t1 -c64 -d5s --latency -s bench/scenario.lua URL -- METHOD PATH DEPTH CLOSE BODY [HEADERS]
--
--   METHOD  request method (GET, FOO, POST, ...)
--   PATH    request target (/index.html)
--   DEPTH   requests per write: 1, or 16 for pipelining
--   CLOSE   "close" sends Connection: close (a new connection per request),
--           "keep" does not
--   BODY    request body, or "-" for none (no Content-Length either)
--   HEADERS extra request fields, "Name: value" each, "|" between them,
--           or "-" for none (optional)
--
-- It counts the status code of every response (the `response` hook) and
-- prints one machine-readable line from `done`, which bench/run parses:
--
--   BENCH requests=N duration_us=N p50_us=N p99_us=N max_us=N
--         connect=N read=N write=N timeout=N status_errors=N statuses=200:N,404:N

local threads = {}

-- The methods of the HTTP parser inside wrk (http_parser.c).
local parser_knows = {}
for m in string.gmatch("DELETE GET HEAD POST PUT CONNECT OPTIONS TRACE COPY " ..
      "LOCK MKCOL MOVE PROPFIND PROPPATCH SEARCH UNLOCK BIND REBIND UNBIND " ..
      "ACL REPORT MKACTIVITY CHECKOUT MERGE M-SEARCH NOTIFY SUBSCRIBE " ..
      "UNSUBSCRIBE PATCH PURGE MKCALENDAR LINK UNLINK", "%S+") do
   parser_knows[m] = true
end

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local method = args[1] or "GET"
   local path = args[2] or "/"
   local depth = tonumber(args[3] or "1") or 1
   local close = args[4] == "close"
   local body = args[5]
   if body == "-" or body == "" then body = nil end

   -- wrk.init has put Host into wrk.headers already: keep that table.
   local headers = wrk.headers
   local extra = args[6]
   if extra and extra ~= "-" and extra ~= "" then
      for field in string.gmatch(extra, "[^|]+") do
         local name, value = string.match(field, "^%s*([^:]+):%s*(.-)%s*$")
         if name then headers[name] = value end
      end
   end
   if close then headers["Connection"] = "close" end
   wrk.method = method
   wrk.path = path
   wrk.body = body

   if not parser_knows[method] then
      -- wrk checks the first request() with its own HTTP parser, which
      -- rejects methods it does not know (FOO): hand it a GET for that
      -- check, and the real request from then on.
      -- (as many GETs as requests per write, so that wrk expects as many
      -- responses per write)
      local real, check = {}, {}
      for i = 1, depth do
         real[i] = wrk.format(method, path, headers, body)
         check[i] = wrk.format("GET", path, headers, nil)
      end
      real, check = table.concat(real), table.concat(check)
      local checked = false
      request = function()
         if checked then return real end
         checked = true
         return check
      end
   elseif depth > 1 then
      -- wrk counts the requests in what request() returns and expects that
      -- many responses per write: this is how it pipelines.
      local r = {}
      for i = 1, depth do r[i] = wrk.format(method, path, headers, body) end
      local batch = table.concat(r)
      request = function() return batch end
   end
   statuses = {}
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local total = {}
   for _, t in ipairs(threads) do
      local s = t:get("statuses")
      if s then
         for code, n in pairs(s) do total[code] = (total[code] or 0) + n end
      end
   end
   local codes = {}
   for code, _ in pairs(total) do table.insert(codes, code) end
   table.sort(codes)
   local parts = {}
   for _, code in ipairs(codes) do
      table.insert(parts, string.format("%d:%d", code, total[code]))
   end
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d " ..
      "connect=%d read=%d write=%d timeout=%d status_errors=%d statuses=%s\n",
      summary.requests, summary.duration,
      latency:percentile(50), latency:percentile(99), latency.max,
      e.connect, e.read, e.write, e.timeout, e.status,
      table.concat(parts, ",")))
end

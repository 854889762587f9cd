-- PROPFIND Depth: 1, allprop, for bench/dav_side_by_side: any answer but
-- 207 Multi-Status is counted and printed as "non-207 N" at the end.
wrk.method = "PROPFIND"
wrk.headers["Depth"] = "1"
wrk.headers["Content-Type"] = "application/xml"
wrk.body = '<?xml version="1.0" encoding="utf-8"?>' ..
           '<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'

local threads = {}
non207 = 0

function setup(thread)
   table.insert(threads, thread)
end

function response(status, headers, body)
   if status ~= 207 then
      non207 = non207 + 1
   end
end

function done(summary, latency, requests)
   local n = 0
   for _, t in ipairs(threads) do
      n = n + t:get("non207")
   end
   io.write(string.format("non-207 %d\n", n))
end

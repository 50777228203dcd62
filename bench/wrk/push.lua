-- POST one push per request to the URL given to wrk (its query carries the
-- signature). Two modes, chosen by the script arguments:
--   template FILE BASE   the body is FILE with {openid} and {msgid} filled
--                   in: a distinct MsgId per request (BASE + thread * 1e9 +
--                   count), so no request takes the de-duplication shortcut
--   replay FILE N   FILE holds one "query<TAB>body" per line (pre-signed, e.g.
--                   AES envelopes); thread k of N sends lines k, k+N, k+2N…
local made = 0

function setup(thread)
  made = made + 1
  thread:set("tid", made)
end

function init(args)
  mode = args[1]
  local f = assert(io.open(args[2], "rb"))
  if mode == "template" then
    template = f:read("*a")
    msgbase = tonumber(args[3])
  else
    local n = tonumber(args[3])
    lines = {}
    local i = 0
    for line in f:lines() do
      if i % n == tid - 1 then
        local tab = string.find(line, "\t", 1, true)
        table.insert(lines, { string.sub(line, 1, tab - 1), string.sub(line, tab + 1) })
      end
      i = i + 1
    end
  end
  f:close()
  counter = 0
  headers = { ["Content-Type"] = "text/xml" }
  base = wrk.path
  if string.find(base, "?", 1, true) then
    base = string.sub(base, 1, string.find(base, "?", 1, true) - 1)
  end
end

function request()
  counter = counter + 1
  if mode == "template" then
    local msgid = string.format("%d", msgbase + tid * 1000000000 + counter)
    local body = string.gsub(template, "{msgid}", msgid)
    body = string.gsub(body, "{openid}", "o_bench_" .. (counter % 997))
    return wrk.format("POST", nil, headers, body)
  end
  local item = lines[(counter - 1) % #lines + 1]
  return wrk.format("POST", base .. "?" .. item[1], headers, item[2])
end

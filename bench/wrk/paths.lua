-- GET each path of a file exactly once (e.g. confirmation links), spread over wrk's threads.
--   wrk -t N -c N -s paths.lua http://host:port -- FILE N
-- Run with one connection per thread: the thread takes the lines i, i+N, i+2N, ... of FILE
-- and stops after the response to its last line, so no link is ever requested twice.
package.path = debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua;" .. package.path
local report = require("report")

local counter = 0

function setup(thread)
  thread:set("thread_id", counter)
  counter = counter + 1
end

function init(args)
  local file, nthreads = args[1], tonumber(args[2])
  paths = {}
  local i = 0
  for line in io.lines(file) do
    if i % nthreads == thread_id then
      paths[#paths + 1] = line
    end
    i = i + 1
  end
  received = 0
end

function request()
  -- Indexed by responses, not by calls: wrk calls request() once more to check the script.
  -- Past the end only if the thread got no line at all: a harmless 404, counted as an error.
  return wrk.format("GET", paths[received + 1] or "/signatures/confirm/none")
end

function response(status, headers, body)
  received = received + 1
  if received >= #paths then
    wrk.thread:stop()
  end
end

done = report.done

-- GET the URL given to wrk, again and again (keep-alive, no cookies, like a first visit).
-- Any status >= 400 is counted by wrk as a status error; done() prints the JSON summary.
package.path = debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua;" .. package.path
local report = require("report")

done = report.done

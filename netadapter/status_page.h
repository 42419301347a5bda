// The admin listener's status page (GET /): one self-contained HTML document, its style and
// script inline, that polls the admin API's own JSON (performance/metrics, report, alerts,
// security/blocks) from the same origin and draws connections, requests/s and errors by op,
// latency percentiles, storage and breaker state, active alerts and recent blocks. It loads
// nothing from anywhere else, and the Content-Security-Policy it is served with forbids it
// to: only the hashes of its own inline style and script may run, and it may connect only to
// the admin origin.
#pragma once

#include <string>
#include <string_view>

namespace warren {

std::string_view status_page_html();
// The Content-Security-Policy header the page is served with.
const std::string& status_page_csp();

}  // namespace warren

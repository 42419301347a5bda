// route_admin: which core AdminRequest an admin HTTP request asks for, or the error to answer
// at once (404 no such endpoint, 405 with the Allow header, 400 naming the bad field). Pure:
// no sockets and no Beast, so that the libFuzzer target (fuzz/admin_http.cc) drives exactly
// the routing the server runs. Host, Origin and token checks come before it (admin_http.cc).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/admin/admin.h"

namespace warren {

struct AdminRoute {
    std::optional<AdminRequest> request;
    int status = 200;  // not 200: answer this error at once
    std::string message;
    std::string allow;  // 405: the Allow header
};

// `method` is the HTTP method's name ("GET"); `target` the request target with its query.
AdminRoute route_admin(std::string_view method, std::string_view target, const std::string& body);

}  // namespace warren

// The one way to include Boost.Asio in Warren. Boost 1.74's Asio under C++20 with GCC 12
// uses std::exchange without including <utility>; including it first fixes the build.
// Include this only from netadapter/*.cc, never from a header others include.
#pragma once

#include <utility>

#include <boost/asio.hpp>

// Request decoding: one protocol line -> {id, op, arguments}, with the checks PROTOCOL.md puts
// first (frame, then id). Argument access is typed and reports the offending field.
//
// RequestDecoder owns a simdjson parser and reuses its buffers; a DecodedRequest and every
// string_view obtained through Args stay valid only until the next decode() on the same
// decoder. Callers copy what they keep. Single-threaded.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <simdjson.h>

namespace warren {

// "'key' what", built by appending (GCC 12 at -O3 misreports `const char* + string` as an
// overlapping copy, -Wrestrict).
std::string quoted_key(std::string_view key, std::string_view what);

struct ArgError {
    std::string field;
    std::string message;
};

// Typed, non-throwing access to a request's arguments. A missing key and JSON null both read
// as absent. A present value of the wrong type sets error() and returns false.
class Args {
  public:
    explicit Args(simdjson::dom::object obj) : obj_(obj) {}

    bool opt_string(std::string_view key, std::optional<std::string_view>& out);
    bool req_string(std::string_view key, std::string_view& out);
    bool opt_int(std::string_view key, std::optional<int64_t>& out);
    bool opt_bool(std::string_view key, std::optional<bool>& out);
    bool req_int(std::string_view key, int64_t& out);
    // The value of `key` when it is a JSON string, whatever type the op expects (so that a
    // string sent where a number belongs can still be inspected for attack signatures).
    std::optional<std::string_view> string_of(std::string_view key) const;
    const ArgError& error() const { return error_; }

  private:
    bool fail(std::string_view key, std::string message);
    simdjson::dom::object obj_;
    ArgError error_;
};

struct DecodedRequest {
    enum class Kind { ok, bad_frame, bad_id, bad_op };
    Kind kind = Kind::bad_frame;
    int64_t id = 0;       // valid when kind is ok or bad_op
    std::string_view op;  // valid when kind is ok
    std::string detail;   // why, for the error message
    simdjson::dom::object args;
};

class RequestDecoder {
  public:
    DecodedRequest decode(std::string_view line);

  private:
    simdjson::dom::parser parser_;
};

// Largest id a client may use: 2^53 - 1, the largest integer every JSON reader keeps exactly.
inline constexpr int64_t request_id_max = (int64_t{1} << 53) - 1;

}  // namespace warren

// Vocabulary shared by every layer: time, ids, the internal Status/Result, and WARREN_CHECK.
//
// Time is always supplied by a driver (never read here): `mono_us` is monotonic microseconds,
// orders deadlines and never goes back (microseconds so that sub-millisecond work shows in
// the latency histograms); `wall_ms` is Unix epoch milliseconds and only stamps data shown to
// users and stored. Durations in Config are milliseconds (what operators write); code that
// compares them with mono_us converts with us_from_ms().
// Status carries internal failures between layers. Its codes are few and named for what the
// caller does about them (see Status::Code). Wire errors are a separate closed set
// (ops/codes.h). WARREN_CHECK is always on: it guards programmer errors and aborts loudly.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace warren {

struct Time {
    int64_t mono_us = 0;
    int64_t wall_ms = 0;
    int64_t mono_ms() const { return mono_us / 1000; }
};

constexpr int64_t us_from_ms(int64_t ms) {
    return ms * 1000;
}
// A wait in microseconds as the whole milliseconds a client is told (retry_after_ms), rounded
// up so that waiting that long is always enough.
constexpr int64_t ms_ceil(int64_t us) {
    return us <= 0 ? 0 : (us + 999) / 1000;
}

using ConnId = uint64_t;
using UserId = int64_t;
using RoomId = int64_t;
using MessageId = int64_t;
using BatchId = uint64_t;
using QueryId = uint64_t;
using JobId = uint64_t;
using InvitationId = int64_t;

[[noreturn]] inline void check_failed(const char* expr, const char* file, int line) {
    std::fprintf(stderr, "WARREN_CHECK failed: %s at %s:%d\n", expr, file, line);
    std::abort();
}

#define WARREN_CHECK(expr) \
    ((expr) ? static_cast<void>(0) : ::warren::check_failed(#expr, __FILE__, __LINE__))

// Internal outcome. Handling rule per code:
//   ok         -> proceed.
//   transient  -> the operation may succeed if retried later (SQLITE_BUSY, a full queue):
//                 retry with backoff or answer UNAVAILABLE with retry_after_ms.
//   failed     -> the operation cannot succeed as asked (I/O error, constraint broken, disk
//                 full): roll back, answer UNAVAILABLE, alert the operator.
//   corrupt    -> stored data breaks an invariant: refuse to start or stop; never guess.
//   aborted    -> not tried: a commit it builds on did not land (core/txn/commit_chain.h);
//                 send it again once that one is sent again, or drop it with that one.
class [[nodiscard]] Status {
  public:
    enum class Code { ok, transient, failed, corrupt, aborted };

    Status() = default;
    static Status ok() { return {}; }
    static Status transient(std::string msg) { return {Code::transient, std::move(msg)}; }
    static Status failed(std::string msg) { return {Code::failed, std::move(msg)}; }
    static Status corrupt(std::string msg) { return {Code::corrupt, std::move(msg)}; }
    static Status aborted(std::string msg) { return {Code::aborted, std::move(msg)}; }

    bool is_ok() const { return code_ == Code::ok; }
    Code code() const { return code_; }
    const std::string& message() const { return message_; }

  private:
    Status(Code c, std::string m) : code_(c), message_(std::move(m)) {}
    Code code_ = Code::ok;
    std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
  public:
    Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
    Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
        WARREN_CHECK(!std::get<Status>(v_).is_ok());
    }
    bool is_ok() const { return v_.index() == 0; }
    T& value() {
        WARREN_CHECK(is_ok());
        return std::get<T>(v_);
    }
    const T& value() const {
        WARREN_CHECK(is_ok());
        return std::get<T>(v_);
    }
    const Status& status() const {
        WARREN_CHECK(!is_ok());
        return std::get<Status>(v_);
    }

  private:
    std::variant<T, Status> v_;
};

}  // namespace warren

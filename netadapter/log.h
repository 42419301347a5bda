// Structured logging for the process: one event name plus fields, written as text
// ("event key=value ...") or as one JSON object per line (--log-format json), through
// spdlog to stderr or, with --log-file, appended to a file that reopen_log_file() (SIGHUP)
// opens afresh, so logrotate can move it away.
//
// log_event() is rate-limited (a token bucket of lines per second): under attack the log
// cannot grow faster than the limit; lines dropped are counted and reported by the next line
// that gets through. log_always() bypasses the limit, for start-up, shutdown and errors.
// Thread-safe (spdlog's logger is; the bucket has its own lock).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace warren {

enum class LogFormat { text, json };
enum class LogLevel { debug, info, warn, error };

// Returns "" or what is wrong (a level other than trace, debug, info, warn, error; a file that
// cannot be opened for appending). `file` empty: stderr.
std::string configure_logging(LogFormat format, const std::string& level,
                              double lines_per_second = 200, double burst = 1000,
                              const std::string& file = {});
// Reopens the log file at its path (after logrotate moved it). Returns "" or the error; the
// old file stays in use when the new one cannot be opened. Without a log file: nothing.
std::string reopen_log_file();

using LogFields = std::initializer_list<std::pair<std::string_view, std::string_view>>;

void log_event(LogLevel level, std::string_view event, LogFields fields = {});
void log_always(LogLevel level, std::string_view event, LogFields fields = {});

}  // namespace warren

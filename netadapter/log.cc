#include "netadapter/log.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>

#include "core/protocol/json_writer.h"

namespace warren {

namespace {

struct LogState {
    std::mutex mu;
    LogFormat format = LogFormat::text;
    double rate = 200, burst = 1000, tokens = 1000;
    std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();
    uint64_t dropped = 0;
};

// A file appended to line by line; reopen() swaps in a fresh handle at the same path under
// the sink's own lock, so no line is lost or torn while logrotate moves the old file away.
class ReopenableFileSink final : public spdlog::sinks::base_sink<std::mutex> {
  public:
    explicit ReopenableFileSink(std::string path) : path_(std::move(path)) {}
    ~ReopenableFileSink() override {
        if (file_) std::fclose(file_);
    }
    std::string open() {
        std::FILE* f = std::fopen(path_.c_str(), "a");
        if (!f) return "cannot open log file " + path_ + ": " + std::strerror(errno);
        std::lock_guard lock(mutex_);
        if (file_) std::fclose(file_);
        file_ = f;
        return {};
    }

  protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        spdlog::memory_buf_t formatted;
        formatter_->format(msg, formatted);
        std::fwrite(formatted.data(), 1, formatted.size(), file_);
        std::fflush(file_);  // a crash loses no line already logged
    }
    void flush_() override { std::fflush(file_); }

  private:
    std::string path_;
    std::FILE* file_ = nullptr;
};

std::shared_ptr<ReopenableFileSink>& file_sink() {
    static std::shared_ptr<ReopenableFileSink> sink;
    return sink;
}

LogState& state() {
    static LogState s;
    return s;
}

spdlog::level::level_enum to_spd(LogLevel l) {
    switch (l) {
        case LogLevel::debug:
            return spdlog::level::debug;
        case LogLevel::info:
            return spdlog::level::info;
        case LogLevel::warn:
            return spdlog::level::warn;
        case LogLevel::error:
            return spdlog::level::err;
    }
    return spdlog::level::info;
}

bool needs_quotes(std::string_view v) {
    return v.empty() || std::any_of(v.begin(), v.end(), [](char c) {
               return c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20;
           });
}

void write(LogLevel level, std::string_view event, LogFields fields, uint64_t dropped,
           LogFormat format) {
    std::string line;
    if (format == LogFormat::json) {
        // The pattern supplies {"ts":..,"level":.., and this the rest of the object.
        JsonWriter w;
        w.key("event").value(event);
        for (const auto& [k, v] : fields) w.key(k).value(v);
        if (dropped) w.key("log_lines_suppressed").value(static_cast<int64_t>(dropped));
        line = w.str() + "}";
    } else {
        line = std::string(event);
        for (const auto& [k, v] : fields) {
            line += ' ';
            line += k;
            line += '=';
            if (needs_quotes(v)) {
                std::string quoted;
                append_json_string(quoted, v);
                line += quoted;
            } else {
                line += v;
            }
        }
        if (dropped) line += " log_lines_suppressed=" + std::to_string(dropped);
    }
    spdlog::log(to_spd(level), "{}", line);
}

}  // namespace

std::string configure_logging(LogFormat format, const std::string& level,
                              double lines_per_second, double burst, const std::string& file) {
    auto lvl = spdlog::level::from_str(level);
    if (lvl == spdlog::level::off && level != "off")
        return "log level '" + level + "' must be one of trace, debug, info, warn, error";
    std::shared_ptr<spdlog::logger> logger;
    if (file.empty()) {
        logger = spdlog::stderr_color_mt("warrend");
    } else {
        auto sink = std::make_shared<ReopenableFileSink>(file);
        if (std::string bad = sink->open(); !bad.empty()) return bad;
        file_sink() = sink;
        logger = std::make_shared<spdlog::logger>("warrend", sink);
    }
    LogState& s = state();
    {
        std::lock_guard lock(s.mu);
        s.format = format;
        s.rate = lines_per_second;
        s.burst = s.tokens = burst;
    }
    spdlog::set_default_logger(logger);
    if (format == LogFormat::json)
        spdlog::set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l",%v)",
                            spdlog::pattern_time_type::utc);
    spdlog::set_level(lvl);
    return {};
}

std::string reopen_log_file() {
    return file_sink() ? file_sink()->open() : std::string();
}

void log_event(LogLevel level, std::string_view event, LogFields fields) {
    LogState& s = state();
    uint64_t dropped = 0;
    LogFormat format;
    {
        std::lock_guard lock(s.mu);
        auto now = std::chrono::steady_clock::now();
        double elapsed = std::chrono::duration<double>(now - s.last).count();
        s.last = now;
        s.tokens = std::min(s.burst, s.tokens + elapsed * s.rate);
        if (s.tokens < 1) {
            ++s.dropped;
            return;
        }
        s.tokens -= 1;
        std::swap(dropped, s.dropped);
        format = s.format;
    }
    write(level, event, fields, dropped, format);
}

void log_always(LogLevel level, std::string_view event, LogFields fields) {
    LogFormat format;
    {
        std::lock_guard lock(state().mu);
        format = state().format;
    }
    write(level, event, fields, 0, format);
}

}  // namespace warren

#include "app/settings.h"

#include <toml++/toml.h>

#include <charconv>
#include <set>

namespace warren {

bool parse_host_port(const std::string& text, std::string& host, uint16_t& port) {
    auto colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0) return false;
    host = text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    std::string p = text.substr(colon + 1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
    if (ec != std::errc() || end != p.data() + p.size() || value > 65535 || p.empty()) return false;
    port = static_cast<uint16_t>(value);
    return !host.empty();
}

namespace {

template <typename T>
std::optional<std::string> read_int(const toml::table& t, const char* key, T& out) {
    if (!t.contains(key)) return std::nullopt;
    auto v = t[key].value<int64_t>();
    if (!v || *v < 0) return std::string(key) + " must be a non-negative integer";
    out = static_cast<T>(*v);
    return std::nullopt;
}

std::optional<std::string> check_keys(const toml::table& t, const std::string& table,
                                      const std::set<std::string>& known) {
    for (const auto& [k, v] : t)
        if (!known.contains(std::string(k.str())))
            return "unknown key '" + std::string(k.str()) + "' in [" + table + "]";
    return std::nullopt;
}

}  // namespace

std::optional<std::string> load_settings_file(const std::string& path, Settings& s) {
    toml::table root;
    try {
        root = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
        return "cannot read " + path + ": " + std::string(e.description());
    }
    if (auto bad = check_keys(root, "", {"server", "storage", "limits", "hashing", "auth"}))
        return bad;
    if (auto* auth = root["auth"].as_table()) {
        if (auto bad = check_keys(*auth, "auth", {"admins"})) return bad;
        if (auto* admins = (*auth)["admins"].as_array()) {
            for (const auto& a : *admins) {
                auto name = a.value<std::string>();
                if (!name) return std::string("auth.admins must be a list of usernames");
                s.core.admin_usernames.push_back(*name);
            }
        }
    }
    if (auto* server = root["server"].as_table()) {
        if (auto bad = check_keys(*server, "server", {"listen", "data_dir", "log_level"}))
            return bad;
        if (auto listen = (*server)["listen"].value<std::string>())
            if (!parse_host_port(*listen, s.driver.listen_host, s.driver.listen_port))
                return "server.listen must be HOST:PORT";
        if (auto dir = (*server)["data_dir"].value<std::string>()) s.data_dir = *dir;
        if (auto lvl = (*server)["log_level"].value<std::string>()) s.log_level = *lvl;
    }
    if (auto* storage = root["storage"].as_table()) {
        if (auto bad = check_keys(*storage, "storage", {"synchronous"})) return bad;
        if (auto sync = (*storage)["synchronous"].value<std::string>()) {
            if (*sync == "normal")
                s.synchronous = Synchronous::normal;
            else if (*sync == "full")
                s.synchronous = Synchronous::full;
            else
                return "storage.synchronous must be \"normal\" or \"full\"";
        }
    }
    if (auto* limits = root["limits"].as_table()) {
        Config& c = s.core;
        if (auto bad = check_keys(
                *limits, "limits",
                {"max_frame_bytes", "bad_frames_max", "text_max_bytes", "outbound_bytes_max",
                 "conn_pending_max", "room_cache_messages_max", "session_ttl_ms"}))
            return bad;
        for (auto bad : {read_int(*limits, "max_frame_bytes", c.max_frame_bytes),
                         read_int(*limits, "bad_frames_max", c.bad_frames_max),
                         read_int(*limits, "text_max_bytes", c.text_max_bytes),
                         read_int(*limits, "outbound_bytes_max", c.outbound_bytes_max),
                         read_int(*limits, "conn_pending_max", c.conn_pending_max),
                         read_int(*limits, "room_cache_messages_max", c.room_cache_messages_max),
                         read_int(*limits, "session_ttl_ms", c.session_ttl_ms)})
            if (bad) return "limits." + *bad;
        if (c.max_frame_bytes < 1024 || c.text_max_bytes + 512 > c.max_frame_bytes)
            return "limits.max_frame_bytes must be at least 1024 and exceed text_max_bytes by 512";
        if (c.room_cache_messages_max < c.history_page_max)
            return "limits.room_cache_messages_max must be at least " +
                   std::to_string(c.history_page_max);
    }
    if (auto* hashing = root["hashing"].as_table()) {
        if (auto bad = check_keys(*hashing, "hashing", {"threads", "queue_max"})) return bad;
        if (auto bad = read_int(*hashing, "threads", s.driver.hash_threads))
            return "hashing." + *bad;
        if (auto bad = read_int(*hashing, "queue_max", s.driver.hash_queue_max))
            return "hashing." + *bad;
        if (s.driver.hash_threads < 1) return "hashing.threads must be at least 1";
    }
    return std::nullopt;
}

}  // namespace warren

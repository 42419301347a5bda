#include "sim/scenario_file.h"

#include <toml++/toml.h>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "app/settings.h"
#include "core/validate/rules.h"
#include "sim/actors/attackers.h"
#include "sim/actors/population.h"
#include "sim/engine/report.h"
#include "sim/faults/faults.h"

namespace warren::sim {

namespace {

constexpr int64_t hour_ms = 3'600'000;
constexpr size_t file_bytes_max = 1 << 20;

class Reader {
  public:
    explicit Reader(std::vector<std::string>& errors) : errors_(errors) {}

    static std::string where(const toml::node& n) {
        const toml::source_region& src = n.source();
        if (!src.path) return "--set: ";
        return *src.path + ":" + std::to_string(src.begin.line) + ":" +
               std::to_string(src.begin.column) + ": ";
    }
    void error(const toml::node& n, const std::string& what) { errors_.push_back(where(n) + what); }
    size_t error_count() const { return errors_.size(); }

    // Unknown keys are errors; keys of a later step are named as such.
    void keys(const toml::table& t, const std::string& table, const std::set<std::string>& known,
              const std::set<std::string>& later = {}) {
        for (const auto& [k, v] : t) {
            std::string key(k.str());
            if (known.contains(key)) continue;
            if (later.contains(key)) {
                error(v, "'" + key + "' in " + table + " is not supported yet");
                continue;
            }
            std::string list;
            for (const auto& x : known) list += (list.empty() ? "" : ", ") + x;
            error(v, "unknown key '" + key + "' in " + table + " (known: " + list + ")");
        }
    }

    bool text(const toml::table& t, const std::string& key, std::string& out) {
        const toml::node* n = t.get(key);
        if (!n) return false;
        if (auto v = n->value_exact<std::string>()) {
            out = *v;
            return true;
        }
        error(*n, key + " must be a string");
        return false;
    }
    bool integer(const toml::table& t, const std::string& key, int64_t& out, int64_t min,
                 int64_t max) {
        const toml::node* n = t.get(key);
        if (!n) return false;
        auto v = n->value_exact<int64_t>();
        if (!v || *v < min || *v > max) {
            error(*n, key + " must be an integer from " + std::to_string(min) + " to " +
                          std::to_string(max));
            return false;
        }
        out = *v;
        return true;
    }
    bool number(const toml::table& t, const std::string& key, double& out, double min, double max) {
        const toml::node* n = t.get(key);
        if (!n) return false;
        std::optional<double> v;
        if (auto i = n->value_exact<int64_t>()) v = static_cast<double>(*i);
        if (auto d = n->value_exact<double>()) v = *d;
        if (!v || !std::isfinite(*v) || *v < min || *v > max) {
            std::ostringstream o;
            o << key << " must be a number from " << min << " to " << max;
            error(*n, o.str());
            return false;
        }
        out = *v;
        return true;
    }
    bool boolean(const toml::table& t, const std::string& key, bool& out) {
        const toml::node* n = t.get(key);
        if (!n) return false;
        if (auto v = n->value_exact<bool>()) {
            out = *v;
            return true;
        }
        error(*n, key + " must be true or false");
        return false;
    }
    bool duration(const toml::table& t, const std::string& key, int64_t& out, int64_t min_ms,
                  int64_t max_ms) {
        const toml::node* n = t.get(key);
        if (!n) return false;
        auto v = n->value_exact<std::string>();
        int64_t ms = 0;
        if (!v) {
            error(*n, key + " is a duration and needs a unit: \"250ms\", \"30s\", \"5m\", \"1h\"");
            return false;
        }
        if (!parse_duration(*v, ms)) {
            error(*n,
                  key + ": '" + *v + "' is not a duration (\"250ms\", \"30s\", \"5m\", \"1h\")");
            return false;
        }
        if (ms < min_ms || ms > max_ms) {
            error(*n, key + " must be from " + std::to_string(min_ms) + "ms to " +
                          std::to_string(max_ms) + "ms");
            return false;
        }
        out = ms;
        return true;
    }
    const toml::table* table(const toml::table& t, const std::string& key) {
        const toml::node* n = t.get(key);
        if (!n) return nullptr;
        if (const toml::table* tt = n->as_table()) return tt;
        error(*n, key + " must be a table, like " + key + " = { ... }");
        return nullptr;
    }
    // An array of tables, each handed to `each`.
    template <typename F>
    void tables(const toml::table& root, const std::string& key, F each) {
        const toml::node* n = root.get(key);
        if (!n) return;
        const toml::array* a = n->as_array();
        if (!a) {
            error(*n, key + " must be an array of tables: [[" + key + "]]");
            return;
        }
        if (a->size() > 1000) {
            error(*n, "more than 1000 [[" + key + "]] tables");
            return;
        }
        for (size_t i = 0; i < a->size(); ++i) {
            const toml::table* t = (*a)[i].as_table();
            if (!t)
                error((*a)[i], key + " entries must be tables");
            else
                each(*t, i);
        }
    }
    std::vector<std::string> strings(const toml::table& t, const std::string& key) {
        std::vector<std::string> out;
        const toml::node* n = t.get(key);
        if (!n) return out;
        const toml::array* a = n->as_array();
        if (!a) {
            error(*n, key + " must be an array of strings");
            return out;
        }
        for (const auto& x : *a) {
            if (auto v = x.value_exact<std::string>())
                out.push_back(*v);
            else
                error(x, key + " must hold strings");
        }
        return out;
    }
    // A selector: `name{key=value,key!=value}`.
    bool selector(const toml::node& n, const std::string& text, Selector& out) {
        out = Selector{};
        out.text = text;
        size_t brace = text.find('{');
        out.name = text.substr(0, brace);
        if (out.name.empty()) {
            error(n, "'" + text + "' names nothing");
            return false;
        }
        if (brace == std::string::npos) return true;
        if (text.back() != '}') {
            error(n, "'" + text + "': labels end with '}'");
            return false;
        }
        std::string inner = text.substr(brace + 1, text.size() - brace - 2);
        std::stringstream ss(inner);
        std::string part;
        while (std::getline(ss, part, ',')) {
            Selector::Label l;
            size_t ne = part.find("!=");
            size_t eq = part.find('=');
            if (ne != std::string::npos) {
                l.key = part.substr(0, ne);
                l.value = part.substr(ne + 2);
                l.equal = false;
            } else if (eq != std::string::npos) {
                l.key = part.substr(0, eq);
                l.value = part.substr(eq + 1);
            } else {
                error(n, "'" + text + "': a label is key=value or key!=value");
                return false;
            }
            out.labels.push_back(l);
        }
        return true;
    }

  private:
    std::vector<std::string>& errors_;
};

bool valid_name(const std::string& s, size_t max) {
    if (s.empty() || s.size() > max || !(s[0] >= 'a' && s[0] <= 'z')) return false;
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    return true;
}

// "--set" overrides onto the document, before it is read.
std::optional<std::string> apply_override(toml::table& root, const std::string& kv) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return "--set " + kv + ": expected KEY=VALUE";
    std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
    std::optional<toml::table> as_doc;
    try {
        as_doc = toml::parse("v = " + value);
    } catch (const toml::parse_error&) {
        as_doc = toml::table{{"v", value}};  // a bare word: a string
    }
    std::vector<std::string> parts;
    if (key.starts_with("server.set.")) {
        parts = {"server", "set", key.substr(11)};
    } else {
        std::stringstream ss(key);
        std::string p;
        while (std::getline(ss, p, '.')) parts.push_back(p);
    }
    if (parts.size() < 2) return "--set " + kv + ": a key is SECTION.KEY";
    static const std::set<std::string> arrays = {"population", "attacker", "fault", "operator",
                                                 "expect"};
    toml::table* t = &root;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
        const std::string& p = parts[i];
        if (arrays.contains(p) && t == &root) {
            toml::array* a = root[p].as_array();
            if (!a) return "--set " + kv + ": the file has no [[" + p + "]]";
            const std::string& which = parts[++i];
            // By name (populations), id (expectations), kind (attackers, faults) or action
            // (operators) when one entry has it; else by index.
            toml::table* found = nullptr;
            size_t matches = 0;
            for (auto& x : *a) {
                toml::table* e = x.as_table();
                if (!e) continue;
                for (const char* field : {"name", "id", "kind", "action"}) {
                    auto id = (*e)[field].value<std::string>();
                    if (id && *id == which) {
                        found = e;
                        ++matches;
                        break;
                    }
                }
            }
            if (matches > 1)
                return "--set " + kv + ": several [[" + p + "]] are " + which + ": use its index";
            if (!found && !which.empty() &&
                which.find_first_not_of("0123456789") == std::string::npos) {
                size_t idx = std::stoul(which);
                if (idx < a->size()) found = (*a)[idx].as_table();
            }
            if (!found) return "--set " + kv + ": no [[" + p + "]] named or numbered " + which;
            if (i + 1 >= parts.size()) return "--set " + kv + ": which key of it?";
            t = found;
            continue;
        }
        if (!t->contains(p)) t->insert(p, toml::table{});
        t = (*t)[p].as_table();
        if (!t) return "--set " + kv + ": " + p + " is not a table";
    }
    t->insert_or_assign(parts.back(), *(*as_doc).get("v"));
    return std::nullopt;
}

void read_scenario(Reader& r, const toml::table& t, ScenarioSpec& s) {
    r.keys(t, "[scenario]", {"name", "summary", "owner", "tags", "duration", "seeds", "timeout"});
    if (r.text(t, "name", s.name) && !valid_name(s.name, 64))
        r.error(*t.get("name"), "name: lowercase letters, digits, '_' and '-', from a letter");
    r.text(t, "summary", s.summary);
    std::string ignored;
    r.text(t, "owner", ignored);
    r.strings(t, "tags");
    r.duration(t, "duration", s.duration_ms, 1000, 24 * hour_ms);
    if (const toml::table* seeds = r.table(t, "seeds")) {
        r.keys(*seeds, "seeds", {"first", "count"});
        int64_t first = 1, count = 10;
        r.integer(*seeds, "first", first, 0, INT64_MAX / 2);
        r.integer(*seeds, "count", count, 1, 1'000'000);
        s.seed_first = static_cast<uint64_t>(first);
        s.seed_count = static_cast<uint64_t>(count);
    }
    s.timeout_sim_ms = s.duration_ms;
    if (const toml::table* timeout = r.table(t, "timeout")) {
        r.keys(*timeout, "timeout", {"sim", "wall"});
        if (r.duration(*timeout, "sim", s.timeout_sim_ms, 1000, 48 * hour_ms) &&
            s.timeout_sim_ms < s.duration_ms)
            r.error(*timeout->get("sim"), "timeout.sim is shorter than the scenario's duration");
        r.duration(*timeout, "wall", s.timeout_wall_ms, 100, 24 * hour_ms);
    }
}

void read_server(Reader& r, const toml::table& t, const std::string& dir, ScenarioSpec& s) {
    r.keys(t, "[server]", {"config", "abuse_limits", "set"});
    Settings settings;
    toml::table doc;
    std::string config;
    if (r.text(t, "config", config)) {
        std::filesystem::path p = std::filesystem::path(config).is_absolute()
                                      ? std::filesystem::path(config)
                                      : std::filesystem::path(dir) / config;
        std::error_code ec;
        if (!std::filesystem::is_regular_file(p, ec)) {
            r.error(*t.get("config"), "config: no such file: " + p.string());
            return;
        }
        if (auto bad = load_settings_file(p.string(), settings)) {
            r.error(*t.get("config"), "config: " + *bad);
            return;
        }
        try {
            doc = toml::parse_file(p.string());
        } catch (const toml::parse_error&) {
        }
    }
    if (const toml::table* set = r.table(t, "set")) {
        size_t errors_before = r.error_count();
        for (const auto& [k, v] : *set) {
            std::string key(k.str());
            size_t dot = key.find('.');
            if (dot == std::string::npos) {
                r.error(v,
                        "server.set keys are TABLE.KEY as in the config file, e.g. "
                        "\"limits.outbound_bytes_max\"");
                continue;
            }
            std::string table = key.substr(0, dot), leaf = key.substr(dot + 1);
            if (!doc.contains(table)) doc.insert(table, toml::table{});
            toml::table* tt = doc[table].as_table();
            if (!tt) continue;
            tt->insert_or_assign(leaf, v);
            // Checked alone first, so an error points at the override.
            toml::table one;
            one.insert(table, toml::table{});
            one[table].as_table()->insert_or_assign(leaf, v);
            std::ostringstream text;
            text << one;
            Settings scratch;
            if (auto bad = load_settings_text(text.str(), "server.set", scratch)) {
                std::string msg = *bad;
                // Drop the scratch document's own position.
                if (msg.starts_with("server.set:")) {
                    size_t cut = msg.find(": ", 11);
                    if (cut != std::string::npos) msg = msg.substr(cut + 2);
                }
                r.error(v, "server.set \"" + key + "\": " + msg);
            }
        }
        std::ostringstream text;
        text << doc;
        // What no single override showed (keys that contradict each other, or the config
        // file): reported once, at the table.
        if (auto bad = load_settings_text(text.str(), "server.set", settings);
            bad && r.error_count() == errors_before)
            r.error(*t.get("set"), "server.set: " + *bad);
    }
    s.config = settings.core;
    s.synchronous = settings.synchronous;
    bool abuse = true;
    r.boolean(t, "abuse_limits", abuse);
    if (!abuse) s.config = without_abuse_limits(s.config);
}

// `readers = { min_bytes_per_s, max_bytes_per_s }` of [network] or a [[population]].
void read_readers(Reader& r, const toml::table& rd, const std::string& where, int64_t& min,
                  int64_t& max) {
    r.keys(rd, where, {"min_bytes_per_s", "max_bytes_per_s"});
    r.integer(rd, "min_bytes_per_s", min, 1, int64_t{1} << 40);
    r.integer(rd, "max_bytes_per_s", max, 1, int64_t{1} << 40);
    if (!min || !max)
        r.error(rd, where + " needs min_bytes_per_s and max_bytes_per_s");
    else if (min > max)
        r.error(rd, where + ": min_bytes_per_s is over max_bytes_per_s");
}

void read_network(Reader& r, const toml::table& t, ScenarioSpec& s) {
    r.keys(t, "[network]", {"delay", "chunks", "server_chunks", "coalesce", "readers"});
    r.duration(t, "coalesce", s.network.coalesce_ms, 0, 10'000);
    if (const toml::table* d = r.table(t, "delay")) {
        r.keys(*d, "network.delay", {"dist", "min", "max", "value", "mean"});
        std::string dist = "uniform";
        r.text(*d, "dist", dist);
        if (dist == "fixed") {
            int64_t v = 1;
            r.duration(*d, "value", v, 0, 60'000);
            s.network.delay_min_ms = s.network.delay_max_ms = v;
        } else if (dist == "uniform" || dist == "exp") {
            r.duration(*d, "min", s.network.delay_min_ms, 0, 60'000);
            r.duration(*d, "max", s.network.delay_max_ms, 0, 60'000);
            if (s.network.delay_min_ms > s.network.delay_max_ms)
                r.error(*d, "network.delay: min is over max");
            if (dist == "exp" && !r.duration(*d, "mean", s.network.delay_mean_ms, 1, 60'000))
                r.error(*d, "network.delay: dist = \"exp\" needs a mean");
            if (dist == "uniform" && d->get("mean"))
                r.error(*d->get("mean"), "network.delay: a mean is for dist = \"exp\"");
        } else {
            r.error(*d->get("dist"), "network.delay.dist is \"uniform\", \"exp\" or \"fixed\"");
        }
    }
    if (const toml::table* rd = r.table(t, "readers"))
        read_readers(r, *rd, "network.readers", s.network.readers_min_bps,
                     s.network.readers_max_bps);
    if (const toml::table* c = r.table(t, "chunks")) {
        r.keys(*c, "network.chunks", {"min", "max"});
        int64_t min = 1;
        r.integer(*c, "min", min, 1, 1);  // a piece is at least a byte
        r.integer(*c, "max", s.network.chunk_max, 1, 1 << 20);
    }
    if (const toml::table* c = r.table(t, "server_chunks")) {
        r.keys(*c, "network.server_chunks", {"min", "max"});
        int64_t min = 1;
        r.integer(*c, "min", min, 1, 1);
        r.integer(*c, "max", s.network.server_chunk_max, 1, 1 << 20);
    }
}

void read_population(Reader& r, const toml::table& t, ScenarioSpec& s) {
    PopulationSpec p;
    r.keys(t, "[[population]]",
           {"name", "count", "ip", "roam", "rooms", "arrive", "think", "mix", "readers"},
           {"give_up", "reconnect"});
    if (!r.text(t, "name", p.name))
        r.error(t, "[[population]] needs a name");
    else if (!valid_name(p.name, 12) || p.name.find_first_of("_-") != std::string::npos)
        r.error(*t.get("name"),
                "population name: 1-12 lowercase letters and digits, from a letter");
    for (const auto& other : s.populations)
        if (other.name == p.name) r.error(t, "a second population named " + p.name);
    int64_t count = p.count;
    if (r.integer(t, "count", count, 0, 5000)) p.count = static_cast<int>(count);
    // Its users are NAME0 .. NAME<count-1>: the server's username rules must take them.
    if (t.get("name"))
        for (const std::string& user :
             {p.name + "0", p.name + std::to_string(std::max(p.count, 1) - 1)})
            if (Refusal bad = check_username(user, s.config)) {
                r.error(*t.get("name"), "its users are named " + p.name + "0.." + p.name +
                                            "N, and " + user + " is not a username: " + *bad);
                break;
            }
    if (r.text(t, "ip", p.ip)) {
        if (address_in(p.ip, 0).empty() && p.count > 0)
            r.error(*t.get("ip"), "ip must be an IPv4 or IPv6 address or CIDR");
        else if (p.count > 0 && address_in(p.ip, p.count - 1).empty())
            r.error(*t.get("ip"), p.ip + " has fewer host addresses than count");
    }
    if (r.text(t, "roam", p.roam)) {
        std::optional<AddressRange> range = AddressRange::parse(p.roam);
        if (!range || p.roam.find('/') == std::string::npos)
            r.error(*t.get("roam"),
                    "roam must be an IPv4 or IPv6 CIDR (\"100.64.0.0/10\", "
                    "\"2001:db8:0:7::/64\")");
        if (t.get("ip"))
            r.error(*t.get("roam"),
                    "ip or roam, not both: roaming clients take their "
                    "addresses from roam");
    }
    if (const toml::node* rooms = t.get("rooms")) {
        if (rooms->is_table())
            r.error(*rooms, "rooms = { always, pick } is not supported yet: give an array");
        else
            p.rooms = r.strings(t, "rooms");
        if (p.rooms.empty() && !rooms->is_table()) r.error(*rooms, "rooms: at least one");
        for (const auto& room : p.rooms)
            if (Refusal bad = check_room_name(room, s.config))
                r.error(*rooms, "room '" + room + "': " + *bad);
    }
    if (const toml::table* a = r.table(t, "arrive")) {
        r.keys(*a, "arrive", {"from", "to"});
        r.duration(*a, "from", p.arrive_from_ms, 0, 24 * hour_ms);
        r.duration(*a, "to", p.arrive_to_ms, 0, 24 * hour_ms);
        if (p.arrive_from_ms > p.arrive_to_ms) r.error(*a, "arrive: from is after to");
    }
    if (const toml::table* th = r.table(t, "think")) {
        r.keys(*th, "think", {"dist", "min", "max"}, {"mean"});
        std::string dist = "uniform";
        if (r.text(*th, "dist", dist) && dist != "uniform")
            r.error(*th->get("dist"), "think.dist: only \"uniform\" is supported yet");
        r.duration(*th, "min", p.think_min_ms, 10, hour_ms);
        r.duration(*th, "max", p.think_max_ms, 10, hour_ms);
        if (p.think_min_ms > p.think_max_ms) r.error(*th, "think: min is over max");
    }
    if (const toml::table* rd = r.table(t, "readers"))
        read_readers(r, *rd, "readers", p.readers_min_bps, p.readers_max_bps);
    if (const toml::table* m = r.table(t, "mix")) {
        const std::pair<const char*, int Mix::*> weights[] = {
            {"send", &Mix::send},       {"history", &Mix::history},
            {"ping", &Mix::ping},       {"list_rooms", &Mix::list_rooms},
            {"react", &Mix::react},     {"edit", &Mix::edit},
            {"delete", &Mix::remove},   {"dm", &Mix::dm},
            {"search", &Mix::search},   {"mark_read", &Mix::mark_read},
            {"leave", &Mix::leave},     {"relogin", &Mix::relogin},
            {"invite", &Mix::invite},   {"thread", &Mix::thread},
            {"members", &Mix::members}, {"topic", &Mix::topic}};
        std::set<std::string> names;
        for (const auto& [name, member] : weights) names.insert(name);
        r.keys(*m, "mix", names);
        p.mix = Mix{0, 0, 0, 0};  // only what the file names
        for (const auto& [name, member] : weights) {
            int64_t v = 0;
            if (r.integer(*m, name, v, 0, 1000)) p.mix.*member = static_cast<int>(v);
        }
        if (p.mix.total() == 0) r.error(*m, "mix: the weights add up to 0");
    }
    s.populations.push_back(p);
}

bool parse_rate(const std::string& text, int64_t& gap_ms) {
    size_t slash = text.find('/');
    if (slash == std::string::npos) return false;
    double n = 0;
    try {
        size_t used = 0;
        n = std::stod(text.substr(0, slash), &used);
        if (used != slash) return false;
    } catch (...) {
        return false;
    }
    std::string unit = text.substr(slash + 1);
    double unit_ms = unit == "s" ? 1000 : unit == "m" ? 60'000 : unit == "h" ? hour_ms : 0;
    if (unit_ms == 0 || !(n > 0) || n > unit_ms) return false;  // at most one a millisecond
    gap_ms = std::max<int64_t>(1, static_cast<int64_t>(unit_ms / n));
    return true;
}

void read_attacker(Reader& r, const toml::table& t, ScenarioSpec& s) {
    AttackerSpec a;
    std::set<std::string> known = {"kind", "start"};
    const AttackerKind* kind = nullptr;
    if (!r.text(t, "kind", a.kind)) {
        r.error(t, "[[attacker]] needs a kind (warren-sim list attackers)");
        return;
    }
    kind = attacker_kind(a.kind);
    if (!kind) {
        r.error(*t.get("kind"),
                "unknown attacker kind '" + a.kind + "' (warren-sim list attackers)");
        return;
    }
    for (auto k : kind->keys) known.insert(std::string(k));
    if (known.contains("gap")) known.insert("rate");
    for (const auto& [k, v] : t) {
        std::string key(k.str());
        if (!known.contains(key))
            r.error(
                v, "'" + key + "' does not apply to " + a.kind + " (it reads: " + [&] {
                    std::string l;
                    for (const auto& x : known) l += (l.empty() ? "" : ", ") + x;
                    return l;
                }() + ")");
    }
    if (r.duration(t, "start", a.start_ms, 0, 24 * hour_ms) && a.start_ms >= s.duration_ms)
        r.error(*t.get("start"), "start is past the scenario's duration");
    if (r.text(t, "ip", a.ip) && address_in(a.ip, 0).empty())
        r.error(*t.get("ip"), "ip must be an IPv4 or IPv6 address or CIDR");
    r.integer(t, "count", a.count, 1, 10'000);
    if (a.count > 0 && a.ip.find('/') != std::string::npos && address_in(a.ip, a.count - 1).empty())
        r.error(t, a.ip + " has fewer host addresses than count");
    r.integer(t, "attempts", a.attempts, 1, 1'000'000);
    r.duration(t, "gap", a.gap_ms, 1, hour_ms);
    std::string rate;
    if (r.text(t, "rate", rate)) {
        if (t.get("gap")) r.error(*t.get("rate"), "give rate or gap, not both");
        if (!parse_rate(rate, a.gap_ms))
            r.error(*t.get("rate"), "rate: '" + rate + "' is not N/s, N/m or N/h (at most 1000/s)");
    }
    if (r.text(t, "target", a.target)) {
        bool found = false;
        for (const auto& p : s.populations) found |= p.name == a.target;
        if (!found)
            r.error(*t.get("target"), "target: no [[population]] named " + a.target +
                                          " (populations come before attackers)");
    }
    if (r.text(t, "account", a.account))
        if (Refusal bad = check_username(a.account, s.config))
            r.error(*t.get("account"), "account: " + *bad);
    if (r.text(t, "room", a.room))
        if (Refusal bad = check_room_name(a.room, s.config))
            r.error(*t.get("room"), "room '" + a.room + "': " + *bad);
    s.attackers.push_back(a);
}

// [disk]: the simulated disk under the store.
void read_disk(Reader& r, const toml::table& t, ScenarioSpec& s) {
    r.keys(t, "[disk]", {"sector_bytes", "capacity_bytes"});
    int64_t sector = s.disk.sector_bytes;
    if (r.integer(t, "sector_bytes", sector, 512, 65536) && (sector & (sector - 1)) != 0)
        r.error(*t.get("sector_bytes"), "sector_bytes is a power of two");
    s.disk.sector_bytes = static_cast<uint32_t>(sector);
    // Below a megabyte the database cannot even be created.
    r.integer(t, "capacity_bytes", s.disk.capacity_bytes, 1 << 20, int64_t{1} << 40);
}

void read_fault(Reader& r, const toml::table& t, ScenarioSpec& s) {
    FaultSpec f;
    if (!r.text(t, "kind", f.kind)) {
        r.error(t, "[[fault]] needs a kind (warren-sim list faults)");
        return;
    }
    const FaultKind* kind = fault_kind(f.kind);
    if (!kind) {
        r.error(*t.get("kind"), "unknown fault kind '" + f.kind + "' (warren-sim list faults)");
        return;
    }
    std::set<std::string> known = {"kind"};
    for (auto k : kind->keys) known.insert(std::string(k));
    r.keys(t, "[[fault]] " + f.kind, known);
    if (r.duration(t, "from", f.from_ms, 0, 24 * hour_ms) && f.from_ms >= s.duration_ms)
        r.error(*t.get("from"), "from is past the scenario's duration");
    r.duration(t, "to", f.to_ms, 0, 24 * hour_ms);
    if (f.from_ms >= f.to_ms) r.error(t, "the fault's window is empty: from is not before to");
    r.number(t, "probability", f.probability, 0, 1);
    // Latencies: uniform in min..max, or min plus an exponential of `mean`, at most max.
    for (const char* name : {"commit", "hash", "query"}) {
        const toml::table* c = r.table(t, name);
        if (!c) continue;
        std::string what(name);
        r.keys(*c, what, {"dist", "min", "max", "mean"});
        r.duration(*c, "min", f.latency_min_ms, 0, 10 * 60'000);
        r.duration(*c, "max", f.latency_max_ms, 0, 10 * 60'000);
        if (f.latency_min_ms > f.latency_max_ms) r.error(*c, what + ": min is over max");
        std::string dist = "uniform";
        if (r.text(*c, "dist", dist) && dist != "uniform" && dist != "exp") {
            r.error(*c->get("dist"), what + ".dist is \"uniform\" or \"exp\"");
            continue;
        }
        if (dist == "exp" && !r.duration(*c, "mean", f.latency_mean_ms, 1, 10 * 60'000))
            r.error(*c, what + ": dist = \"exp\" needs a mean");
        if (dist != "exp" && c->get("mean"))
            r.error(*c->get("mean"), what + ": a mean is for dist = \"exp\"");
    }
    r.duration(t, "restart_after", f.restart_after_ms, 1, hour_ms);
    r.integer(t, "max", f.max, 1, 1000);
    r.duration(t, "within", f.within_ms, 0, hour_ms);
    if (r.duration(t, "at", f.at_ms, 0, 24 * hour_ms) && f.at_ms >= s.duration_ms)
        r.error(*t.get("at"), "at is past the scenario's duration");
    if ((f.kind == "crash" || f.kind == "power_loss") && !t.get("probability") && !t.get("at"))
        r.error(t,
                "a " + f.kind + " fault needs a probability (per commit in its window) or an at");
    if (r.text(t, "during", f.during) && f.during != "commit" && f.during != "recovery" &&
        f.during != "prune" && f.during != "backup")
        r.error(*t.get("during"), "during is \"commit\", \"recovery\", \"prune\" or \"backup\"");
    if (f.during != "commit" && t.get("at"))
        r.error(*t.get("at"), "a power_loss during " + f.during + " has a probability (per " +
                                  f.during + "), not an at");
    if ((f.kind == "crash" || f.kind == "power_loss") && t.get("probability") && t.get("at"))
        r.error(*t.get("at"),
                "a " + f.kind + " fault has a probability (per commit) or an at, not both");
    r.number(t, "keep", f.keep, 0, 1);
    r.number(t, "torn", f.torn, 0, 1);
    if (f.keep + f.torn > 1) r.error(t, "keep + torn is over 1 (the rest of the sectors are lost)");
    if (f.kind == "restart" && !t.get("at")) r.error(t, "a restart fault needs an at");
    if (r.text(t, "who", f.who)) {
        bool population = false;
        for (const auto& p : s.populations) population |= p.name == f.who;
        if (!population && !Cidr::parse(f.who))
            r.error(*t.get("who"),
                    "who: no [[population]] named " + f.who + ", and not an IPv4 address or CIDR");
    } else if (f.kind == "partition" || f.kind == "reset" || f.kind == "half_open" ||
               f.kind == "reconnect_storm") {
        r.error(t, "a " + f.kind + " fault needs who (a population, or an address or CIDR)");
    }
    if (r.text(t, "mode", f.mode) && f.mode != "hold" && f.mode != "drop")
        r.error(*t.get("mode"), "mode is \"hold\" (bytes wait for the heal) or \"drop\"");
    if (const toml::node* by = t.get("by")) {
        auto v = by->value_exact<std::string>();
        std::string text = v ? *v : "";
        bool back = text.starts_with("-");
        if (back || text.starts_with("+")) text.erase(0, 1);
        int64_t ms = 0;
        if (!v || !parse_duration(text, ms) || ms == 0 || ms > 3650 * 24 * hour_ms)
            r.error(*by,
                    "by is a signed duration other than zero, at most 3650d either way: "
                    "\"+2h\", \"-90s\", \"8d\"");
        else
            f.by_ms = back ? -ms : ms;
    }
    if (f.kind == "clock_step" && (!t.get("at") || !t.get("by")))
        r.error(t, "a clock_step fault needs an at and a by");
    if (r.number(t, "ppm", f.ppm, -500'000, 500'000) && f.ppm == 0)
        r.error(*t.get("ppm"), "ppm must not be 0");
    if (f.kind == "clock_drift" && !t.get("ppm"))
        r.error(t,
                "a clock_drift fault needs ppm (the wall clock's gain per million; negative: "
                "it loses)");
    if (f.kind == "reset" && !t.get("probability"))
        r.error(t, "a reset fault needs a probability (per write in its window)");
    s.faults.push_back(f);
}

// [chaos]: a probability per chaos point of the core, each fired when reached with it.
void read_chaos(Reader& r, const toml::table& t, ScenarioSpec& s) {
    std::set<std::string> known;
    for (std::string_view n : chaos_site_names) known.emplace(n);
    r.keys(t, "[chaos]", known);
#ifndef WARREN_CHAOS_POINTS
    if (!t.empty()) {
        r.error(t, "[chaos]: this build has no chaos points (configured with -DWARREN_CHAOS=OFF)");
        return;
    }
#endif
    for (size_t i = 0; i < chaos_site_names.size(); ++i)
        r.number(t, std::string(chaos_site_names[i]), s.chaos[i], 0, 1);
}

void read_operator(Reader& r, const toml::table& t, ScenarioSpec& s) {
    OperatorSpec op;
    r.keys(t, "[[operator]]",
           {"action", "at", "after", "within", "user", "ip", "duration", "reason"});
    static const std::set<std::string> actions = {"suspend",  "unsuspend",       "block",
                                                  "unblock",  "revoke_sessions", "clear_alerts",
                                                  "shutdown", "backup"};
    if (!r.text(t, "action", op.action) || !actions.contains(op.action)) {
        r.error(t.get("action") ? *t.get("action") : static_cast<const toml::node&>(t),
                "action is one of suspend, unsuspend, block, unblock, revoke_sessions, "
                "clear_alerts, shutdown, backup");
        return;
    }
    bool at = r.duration(t, "at", op.at_ms, 0, 24 * hour_ms);
    if (at && op.at_ms >= s.duration_ms)
        r.error(*t.get("at"), "at is past the scenario's duration");
    bool after = r.text(t, "after", op.after);
    if (at == after) r.error(t, "an operator action needs either at or after");
    r.duration(t, "within", op.within_ms, 0, hour_ms);
    r.text(t, "user", op.user);
    r.text(t, "ip", op.ip);
    r.text(t, "reason", op.reason);
    int64_t d = 0;
    if (r.duration(t, "duration", d, 1000, 10 * 365 * 24 * hour_ms)) op.duration_ms = d;
    bool needs_user =
        op.action == "suspend" || op.action == "unsuspend" || op.action == "revoke_sessions";
    bool needs_ip = op.action == "block" || op.action == "unblock";
    if (needs_user && op.user.empty()) r.error(t, op.action + " needs a user");
    if (needs_ip && op.ip.empty()) r.error(t, op.action + " needs an ip");
    s.operators.push_back(op);
}

void read_liveness(Reader& r, const toml::table& t, ScenarioSpec& s) {
    r.keys(t, "[liveness]", {"heal_at", "within", "require"});
    if (!r.duration(t, "heal_at", s.liveness.heal_at_ms, 0, 24 * hour_ms))
        r.error(t, "[liveness] needs heal_at");
    r.duration(t, "within", s.liveness.within_ms, 1, hour_ms);
    static const std::set<std::string> known = {"clients_served", "breaker_closed",
                                                "alerts_resolved"};
    s.liveness.require = r.strings(t, "require");
    for (const auto& q : s.liveness.require)
        if (!known.contains(q))
            r.error(*t.get("require"),
                    q == "queues_empty" || q == "attackers_still_blocked"
                        ? "require '" + q + "' is not supported yet"
                        : "unknown require '" + q +
                              "' (clients_served, breaker_closed, alerts_resolved)");
    if (s.liveness.heal_at_ms >= 0 && s.liveness.heal_at_ms + s.liveness.within_ms > s.duration_ms)
        r.error(t, "heal_at + within is past the scenario's duration");
}

void read_expect(Reader& r, const toml::table& t, ScenarioSpec& s) {
    ExpectSpec e;
    std::string kind = "metric";
    r.text(t, "kind", kind);
    if (!r.text(t, "id", e.id)) r.error(t, "[[expect]] needs an id");
    for (const auto& other : s.expects)
        if (!e.id.empty() && other.id == e.id) r.error(t, "a second expectation with id " + e.id);
    if (kind == "metric") {
        r.keys(t, "[[expect]]", {"id", "kind", "metric", "min", "max", "during"}, {"after"});
        std::string m;
        if (!r.text(t, "metric", m)) {
            r.error(t, "a metric expectation needs metric");
            return;
        }
        if (!r.selector(*t.get("metric"), m, e.metric)) return;
        std::string why;
        if (!metric_known(e.metric.name, &why)) r.error(*t.get("metric"), why);
        bool windowed = e.metric.name.starts_with("legit.") || e.metric.name.starts_with("events.");
        if (!windowed && !e.metric.labels.empty())
            r.error(*t.get("metric"), e.metric.name + " has no labels");
        if (e.metric.name.starts_with("attacker.")) {
            std::string name = e.metric.name.substr(9, e.metric.name.rfind('.') - 9);
            auto names = attacker_names(s.attackers);
            if (std::find(names.begin(), names.end(), name) == names.end())
                r.error(*t.get("metric"), "no attacker named " + name +
                                              " (attackers are named by kind, kind#0, kind#1 "
                                              "when a kind comes twice; attackers come before "
                                              "expectations)");
        }
        double v = 0;
        if (r.number(t, "min", v, -1e18, 1e18)) e.min = v;
        if (r.number(t, "max", v, -1e18, 1e18)) e.max = v;
        if (!e.min && !e.max) r.error(t, "a metric expectation needs min or max");
        if (const toml::table* d = r.table(t, "during")) {
            r.keys(*d, "during", {"from", "to"}, {"exclude"});
            if (!windowed) r.error(*d, e.metric.name + " is whole-run: it has no window");
            int64_t ms = 0;
            if (r.duration(*d, "from", ms, 0, 24 * hour_ms)) e.from_ms = ms;
            if (r.duration(*d, "to", ms, 0, 24 * hour_ms)) e.to_ms = ms;
        }
    } else if (kind == "eventually") {
        e.kind = ExpectSpec::Kind::eventually;
        r.keys(t, "[[expect]]", {"id", "kind", "event", "after", "within"});
        std::string ev, after;
        if (!r.text(t, "event", ev) || !r.text(t, "after", after) ||
            !r.duration(t, "within", e.within_ms, 0, 24 * hour_ms)) {
            r.error(t, "an eventually expectation needs event, after and within");
            return;
        }
        r.selector(*t.get("event"), ev, e.event);
        r.selector(*t.get("after"), after, e.after);
    } else if (kind == "sometimes") {
        e.kind = ExpectSpec::Kind::sometimes;
        r.keys(t, "[[expect]]", {"id", "kind", "probe"});
        if (!r.text(t, "probe", e.probe)) r.error(t, "a sometimes expectation needs probe");
    } else {
        r.error(*t.get("kind"), "expect kind is metric, eventually or sometimes");
    }
    s.expects.push_back(e);
}

}  // namespace

bool parse_duration(const std::string& text, int64_t& ms) {
    size_t i = 0;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
        ++i;
    if (i == 0 || i > 15) return false;
    double n = 0;
    try {
        size_t used = 0;
        n = std::stod(text.substr(0, i), &used);
        if (used != i) return false;
    } catch (...) {
        return false;
    }
    std::string unit = text.substr(i);
    double scale = unit == "ms"  ? 1
                   : unit == "s" ? 1000
                   : unit == "m" ? 60'000
                   : unit == "h" ? hour_ms
                   : unit == "d" ? 24 * hour_ms
                                 : 0;
    if (scale == 0 || n * scale > 1e15) return false;
    ms = static_cast<int64_t>(std::llround(n * scale));
    return true;
}

Loaded load_scenario(const std::string& path, const std::vector<std::string>& overrides) {
    Loaded out;
    auto& errors = out.errors;
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        errors.push_back(path + ": cannot read the file");
        return out;
    }
    std::string text;
    text.resize(file_bytes_max + 1);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(in.gcount()));
    if (text.size() > file_bytes_max) {
        errors.push_back(path + ":1:1: the file is over 1 MiB; a scenario is a page or two");
        return out;
    }
    toml::table root;
    try {
        root = toml::parse(text, path);
    } catch (const toml::parse_error& e) {
        errors.push_back(path + ":" + std::to_string(e.source().begin.line) + ":" +
                         std::to_string(e.source().begin.column) + ": " +
                         std::string(e.description()));
        return out;
    }
    for (const auto& kv : overrides)
        if (auto bad = apply_override(root, kv)) errors.push_back(*bad);
    if (!errors.empty()) return out;
    Reader r(errors);
    ScenarioSpec& s = out.spec;
    // A scenario's server is warrend's as shipped unless [server] says otherwise.
    s.config = Settings{}.core;
    r.keys(root, "the file",
           {"schema", "scenario", "server", "network", "disk", "population", "attacker", "fault",
            "chaos", "operator", "liveness", "expect"},
           {"swarm", "report"});
    int64_t schema = 0;
    if (!root.get("schema"))
        errors.push_back(path + ":1:1: the file must say schema = 1");
    else if (r.integer(root, "schema", schema, 1, 1)) {
    }
    if (const toml::table* t = r.table(root, "scenario"))
        read_scenario(r, *t, s);
    else
        errors.push_back(path + ":1:1: the file needs a [scenario] table with a name");
    std::string dir = std::filesystem::path(path).parent_path().string();
    if (const toml::table* t = r.table(root, "server"))
        read_server(r, *t, dir.empty() ? "." : dir, s);
    if (const toml::table* t = r.table(root, "network")) read_network(r, *t, s);
    if (const toml::table* t = r.table(root, "disk")) read_disk(r, *t, s);
    r.tables(root, "population", [&](const toml::table& t, size_t) { read_population(r, t, s); });
    r.tables(root, "attacker", [&](const toml::table& t, size_t) { read_attacker(r, t, s); });
    r.tables(root, "fault", [&](const toml::table& t, size_t) { read_fault(r, t, s); });
    if (const toml::table* t = r.table(root, "chaos")) read_chaos(r, *t, s);
    r.tables(root, "operator", [&](const toml::table& t, size_t) { read_operator(r, t, s); });
    if (const toml::table* t = r.table(root, "liveness")) read_liveness(r, *t, s);
    r.tables(root, "expect", [&](const toml::table& t, size_t) { read_expect(r, t, s); });
    return out;
}

}  // namespace warren::sim

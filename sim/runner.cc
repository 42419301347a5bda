#include "sim/runner.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "sim/actors/attackers.h"
#include "sim/checkers/checkers.h"
#include "sim/engine/report.h"
#include "sim/engine/world.h"
#include "sim/faults/faults.h"
#include "sim/scenario_file.h"

#ifndef WARREN_SIM_SCENARIOS
#define WARREN_SIM_SCENARIOS "sim/scenarios"
#endif

namespace warren::sim {

namespace {

using json = nlohmann::json;

enum class Verdict { ok, safety, expectation, liveness, crash, timeout };

const char* verdict_name(Verdict v) {
    switch (v) {
        case Verdict::ok:
            return "ok";
        case Verdict::safety:
            return "safety";
        case Verdict::expectation:
            return "expectation";
        case Verdict::liveness:
            return "liveness";
        case Verdict::crash:
            return "crash";
        case Verdict::timeout:
            return "timeout";
    }
    return "?";
}

struct SeedResult {
    uint64_t seed = 0;
    Verdict verdict = Verdict::ok;
    std::string trace;
    std::vector<std::string> messages;  // "safety: ...", "expectation: ..."
    std::map<std::string, uint64_t> probes;
    std::map<std::string, double> metrics;
    std::vector<std::string> events;
    std::string summary;
};

// The worker's side: one seed, judged, as one JSON document.
std::string run_one(const ScenarioSpec& spec, uint64_t seed, bool events) {
    json out;
    out["seed"] = seed;
    try {
        RunReport r = run_world(spec, seed);
        out["trace"] = r.trace_hash;
        out["violations"] = r.violations;
        out["liveness"] = r.liveness_failures;
        out["expectations"] = check_expectations(spec, r);
        out["probes"] = r.probes;
        out["metrics"] = r.metrics;
        if (events) {
            json& ev = out["events"] = json::array();
            for (const Event& e : r.events) {
                std::string line = std::to_string(e.at_ms) + "ms " + e.name;
                for (const auto& [k, v] : e.labels) line += " " + k + "=" + v;
                ev.push_back(line);
            }
        }
        auto value = [&](const char* name) {
            return metric_value(r, Selector{name, {}, name}, {}, {});
        };
        char line[160];
        std::snprintf(line, sizeof line, "legit=%.0f errors=%.0f p99=%.0fms",
                      value("legit.requests").value_or(0), value("legit.errors").value_or(0),
                      value("legit.reply_ms.p99").value_or(0));
        out["summary"] = line;
    } catch (const std::exception& e) {
        out["crash"] = std::string("exception: ") + e.what();
    }
    return out.dump();
}

SeedResult judge(uint64_t seed, const std::string& text) {
    SeedResult r;
    r.seed = seed;
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        r.verdict = Verdict::crash;
        r.messages.push_back("crash: the worker's result is unreadable");
        return r;
    }
    if (j.contains("crash")) {
        r.verdict = Verdict::crash;
        r.messages.push_back("crash: " + j["crash"].get<std::string>());
        return r;
    }
    r.trace = j.value("trace", "");
    r.summary = j.value("summary", "");
    r.probes = j["probes"].get<std::map<std::string, uint64_t>>();
    r.metrics = j["metrics"].get<std::map<std::string, double>>();
    if (j.contains("events")) r.events = j["events"].get<std::vector<std::string>>();
    for (const auto& v : j["expectations"]) {
        r.verdict = Verdict::expectation;
        r.messages.push_back("expectation " + v.get<std::string>());
    }
    for (const auto& v : j["liveness"]) {
        r.verdict = Verdict::liveness;
        r.messages.push_back("liveness " + v.get<std::string>());
    }
    for (const auto& v : j["violations"]) {
        r.verdict = Verdict::safety;
        r.messages.push_back("safety " + v.get<std::string>());
    }
    return r;
}

std::string describe_status(int status) {
    if (WIFSIGNALED(status))
        return "crash: the worker died of signal " + std::to_string(WTERMSIG(status)) + " (" +
               strsignal(WTERMSIG(status)) + ")";
    return "crash: the worker exited with status " + std::to_string(WEXITSTATUS(status)) +
           " and no result";
}

// A worker process: reads seeds (8 bytes each) from `in`, runs each and writes its result
// (a 4-byte length, then the JSON) to `out`, until `in` closes. One process runs many seeds:
// a fork per seed cost more CPU than a small seed itself.
[[noreturn]] void worker(int in, int out, const ScenarioSpec& spec, const RunOptions& o) {
    for (;;) {
        uint64_t seed = 0;
        size_t got = 0;
        while (got < sizeof seed) {
            ssize_t n = read(in, reinterpret_cast<char*>(&seed) + got, sizeof seed - got);
            if (n <= 0) _exit(0);
            got += static_cast<size_t>(n);
        }
        if (o.abort_seed && *o.abort_seed == seed) std::abort();
        std::string result = run_one(spec, seed, o.print_events);
        uint32_t len = static_cast<uint32_t>(result.size());
        result.insert(0, reinterpret_cast<const char*>(&len), sizeof len);
        for (size_t off = 0; off < result.size();) {
            ssize_t n = write(out, result.data() + off, result.size() - off);
            if (n <= 0) _exit(3);
            off += static_cast<size_t>(n);
        }
    }
}

// Runs `seeds` in up to `jobs` worker processes, one seed at a time each; each seed is
// announced before it starts. A worker that dies or overruns timeout.wall costs only the
// seed it was running (reported with its class); the next seed gets a fresh worker.
std::vector<SeedResult> sweep(const ScenarioSpec& spec, const std::vector<uint64_t>& seeds,
                              const RunOptions& o, const char* announce) {
    struct Worker {
        pid_t pid = -1;
        int to = -1, from = -1;
        std::optional<uint64_t> seed;  // the one it runs
        std::string buf;
        std::chrono::steady_clock::time_point start;
    };
    std::deque<uint64_t> todo(seeds.begin(), seeds.end());
    std::vector<Worker> workers;
    std::vector<SeedResult> results;
    auto spawn = [&]() -> Worker {
        int down[2], up[2];
        if (pipe(down) != 0 || pipe(up) != 0) {
            std::perror("pipe");
            std::exit(exit_crash);
        }
        std::fflush(stdout);
        std::fflush(stderr);
        pid_t pid = fork();
        if (pid < 0) {
            std::perror("fork");
            std::exit(exit_crash);
        }
        if (pid == 0) {
            close(down[1]);
            close(up[0]);
            for (const Worker& w : workers) {  // the siblings' pipes are not this worker's
                close(w.to);
                close(w.from);
            }
            worker(down[0], up[1], spec, o);
        }
        close(down[0]);
        close(up[1]);
        Worker w;
        w.pid = pid;
        w.to = down[1];
        w.from = up[0];
        return w;
    };
    // Ends worker i; its seed, if any, gets `forced` or, if it died, a crash.
    auto retire = [&](size_t i, std::optional<SeedResult> forced) {
        Worker& w = workers[i];
        if (forced) kill(w.pid, SIGKILL);
        close(w.to);
        close(w.from);
        int status = 0;
        waitpid(w.pid, &status, 0);
        if (w.seed) {
            SeedResult r;
            if (forced) {
                r = *forced;
            } else {
                r.seed = *w.seed;
                r.verdict = Verdict::crash;
                r.messages.push_back(describe_status(status));
            }
            results.push_back(std::move(r));
        }
        workers.erase(workers.begin() + static_cast<ptrdiff_t>(i));
    };
    while (!todo.empty() || std::any_of(workers.begin(), workers.end(),
                                        [](const Worker& w) { return w.seed.has_value(); })) {
        // Hand out seeds: idle workers first, then new ones up to `jobs`.
        while (!todo.empty()) {
            auto idle = std::find_if(workers.begin(), workers.end(),
                                     [](const Worker& w) { return !w.seed; });
            if (idle == workers.end()) {
                if (workers.size() >= o.jobs) break;
                workers.push_back(spawn());
                idle = workers.end() - 1;
            }
            uint64_t seed = todo.front();
            todo.pop_front();
            std::printf("seed %llu: %s\n", static_cast<unsigned long long>(seed), announce);
            std::fflush(stdout);
            if (o.in_process) {
                // For a debugger or a profiler: no worker, no isolation.
                results.push_back(judge(seed, run_one(spec, seed, o.print_events)));
                continue;
            }
            idle->seed = seed;
            idle->start = std::chrono::steady_clock::now();
            if (write(idle->to, &seed, sizeof seed) != sizeof seed) {
                retire(static_cast<size_t>(idle - workers.begin()), std::nullopt);
                continue;
            }
        }
        if (workers.empty()) continue;
        std::vector<pollfd> pfds;
        for (const auto& w : workers) pfds.push_back(pollfd{w.from, POLLIN, 0});
        poll(pfds.data(), pfds.size(), 100);
        for (size_t i = workers.size(); i-- > 0;) {
            Worker& w = workers[i];
            if (pfds[i].revents) {
                char buf[65536];
                ssize_t n = read(w.from, buf, sizeof buf);
                if (n <= 0) {
                    retire(i, std::nullopt);
                    continue;
                }
                w.buf.append(buf, static_cast<size_t>(n));
                uint32_t len = 0;
                if (w.buf.size() >= sizeof len) {
                    std::memcpy(&len, w.buf.data(), sizeof len);
                    if (w.seed && w.buf.size() >= sizeof len + len) {
                        results.push_back(judge(*w.seed, w.buf.substr(sizeof len, len)));
                        w.buf.erase(0, sizeof len + len);
                        w.seed.reset();
                    }
                }
                continue;
            }
            auto ran = std::chrono::steady_clock::now() - w.start;
            if (w.seed && ran > std::chrono::milliseconds(spec.timeout_wall_ms)) {
                SeedResult r;
                r.seed = *w.seed;
                r.verdict = Verdict::timeout;
                r.messages.push_back("timeout: still running after timeout.wall = " +
                                     std::to_string(spec.timeout_wall_ms) + " ms");
                retire(i, r);
            }
        }
    }
    for (size_t i = workers.size(); i-- > 0;) retire(i, std::nullopt);
    std::sort(results.begin(), results.end(),
              [](const SeedResult& a, const SeedResult& b) { return a.seed < b.seed; });
    return results;
}

std::string shell_quote(const std::string& s) {
    if (s.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,") ==
        std::string::npos)
        return s;
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

std::string replay_command(const std::string& path, uint64_t seed,
                           const std::vector<std::string>& overrides) {
    std::string cmd = "warren-sim run " + shell_quote(path) + " --seed " + std::to_string(seed);
    for (const auto& o : overrides) cmd += " --set " + shell_quote(o);
    return cmd;
}

}  // namespace

std::string scenarios_dir() {
    if (const char* env = std::getenv("WARREN_SIM_SCENARIOS")) return env;
    return WARREN_SIM_SCENARIOS;
}

int run_file(const std::string& path, const RunOptions& o) {
    Loaded loaded = load_scenario(path, o.overrides);
    if (!loaded.errors.empty()) {
        for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.c_str());
        return exit_usage;
    }
    const ScenarioSpec& spec = loaded.spec;
    std::vector<uint64_t> seeds;
    if (o.seed) {
        seeds.push_back(*o.seed);
    } else {
        uint64_t first = o.first.value_or(spec.seed_first);
        uint64_t count = o.seeds.value_or(spec.seed_count);
        for (uint64_t s = first; s < first + count; ++s) seeds.push_back(s);
    }
    std::string list;
    for (const auto& c : checkers()) list += (list.empty() ? "" : ", ") + std::string(c.name);
    std::printf("scenario %s: %zu seed(s), %u job(s)\nsafety checkers: %s\n", spec.name.c_str(),
                seeds.size(), o.jobs, list.c_str());
    std::vector<SeedResult> results = sweep(spec, seeds, o, "start");

    std::map<Verdict, size_t> by_verdict;
    std::map<std::string, uint64_t> probes;
    for (const SeedResult& r : results) {
        ++by_verdict[r.verdict];
        for (const auto& [name, n] : r.probes) probes[name] += n;
        std::printf("seed %llu: %s%s%s%s%s\n", static_cast<unsigned long long>(r.seed),
                    r.verdict == Verdict::ok ? "ok" : "FAIL ",
                    r.verdict == Verdict::ok ? "" : verdict_name(r.verdict),
                    r.trace.empty() ? "" : (" trace=" + r.trace.substr(0, 16)).c_str(),
                    r.summary.empty() ? "" : " ", r.summary.c_str());
        if (o.print_metrics)
            for (const auto& [k, v] : r.metrics) std::printf("  %s = %g\n", k.c_str(), v);
        for (const auto& e : r.events) std::printf("  event %s\n", e.c_str());
        for (const auto& m : r.messages) std::printf("  %s\n", m.c_str());
        if (r.verdict != Verdict::ok)
            std::printf("  replay: %s\n", replay_command(path, r.seed, o.overrides).c_str());
    }

    // Across the sweep: `sometimes` probes and configured faults must have fired.
    std::vector<std::string> coverage;
    if (results.size() > 1) {
        for (const auto& e : spec.expects)
            if (e.kind == ExpectSpec::Kind::sometimes && !probes.contains(e.probe))
                coverage.push_back(e.id + ": probe " + e.probe + " never fired in " +
                                   std::to_string(results.size()) + " seeds");
        for (const auto& f : spec.faults) {
            std::string probe = "fault." + f.kind + ".fired";
            if (!probes.contains(probe))
                coverage.push_back("fault " + f.kind + " never fired in " +
                                   std::to_string(results.size()) + " seeds");
        }
        for (size_t i = 0; i < spec.chaos.size(); ++i) {
            std::string name(chaos_site_names[i]);
            if (spec.chaos[i] > 0 && !probes.contains("chaos." + name + ".fired"))
                coverage.push_back("chaos point " + name + " never fired in " +
                                   std::to_string(results.size()) + " seeds");
        }
    }
    for (const auto& [name, n] : probes)
        std::printf("probe %s fired %llu time(s)\n", name.c_str(),
                    static_cast<unsigned long long>(n));
    for (const auto& c : coverage) std::printf("coverage: %s\n", c.c_str());

    // Determinism: a share of the seeds again, in fresh workers; the traces must match.
    size_t nondeterministic = 0;
    if (o.determinism_pct > 0 && !results.empty()) {
        size_t n =
            std::max<size_t>(1, static_cast<size_t>(std::ceil(static_cast<double>(results.size()) *
                                                              o.determinism_pct / 100)));
        RunOptions again_options = o;
        again_options.abort_seed.reset();
        std::vector<uint64_t> again;
        for (size_t i = 0; i < n; ++i) again.push_back(results[i * results.size() / n].seed);
        for (const SeedResult& r : sweep(spec, again, again_options, "again (determinism)")) {
            auto first = std::find_if(results.begin(), results.end(),
                                      [&](const SeedResult& x) { return x.seed == r.seed; });
            if (first->trace != r.trace) {
                ++nondeterministic;
                std::printf("seed %llu: FAIL nondeterminism: trace %s, then %s\n  replay: %s\n",
                            static_cast<unsigned long long>(r.seed), first->trace.c_str(),
                            r.trace.c_str(), replay_command(path, r.seed, o.overrides).c_str());
            }
        }
        std::printf("determinism: %zu seed(s) re-run, %zu differed\n", again.size(),
                    nondeterministic);
    }

    std::printf("%zu seed(s): %zu ok", results.size(), by_verdict[Verdict::ok]);
    for (Verdict v : {Verdict::safety, Verdict::crash, Verdict::timeout, Verdict::liveness,
                      Verdict::expectation})
        if (by_verdict[v]) std::printf(", %zu %s", by_verdict[v], verdict_name(v));
    std::printf("\n");
    int code = by_verdict[Verdict::safety]        ? exit_safety
               : by_verdict[Verdict::crash]       ? exit_crash
               : by_verdict[Verdict::timeout]     ? exit_timeout
               : nondeterministic                 ? exit_nondeterminism
               : by_verdict[Verdict::liveness]    ? exit_liveness
               : by_verdict[Verdict::expectation] ? exit_expectation
               : !coverage.empty()                ? exit_coverage
                                                  : exit_ok;
    std::printf("exit %d\n", code);
    return code;
}

int check_files_cmd(const std::vector<std::string>& files, const std::vector<std::string>& sets) {
    int code = exit_ok;
    for (const auto& f : files) {
        Loaded l = load_scenario(f, sets);
        if (l.errors.empty()) {
            std::printf(
                "%s: ok (%zu population(s), %zu attacker(s), %zu fault(s), %zu "
                "operator action(s), %zu expectation(s))\n",
                f.c_str(), l.spec.populations.size(), l.spec.attackers.size(), l.spec.faults.size(),
                l.spec.operators.size(), l.spec.expects.size());
            continue;
        }
        for (const auto& e : l.errors) std::fprintf(stderr, "%s\n", e.c_str());
        code = exit_usage;
    }
    return code;
}

int list(const std::string& what) {
    auto keys = [](const std::vector<std::string_view>& ks) {
        std::string out;
        for (auto k : ks) out += (out.empty() ? "" : ", ") + std::string(k);
        return out;
    };
    if (what == "attackers") {
        for (const auto& k : attacker_kinds()) {
            auto reads = [&](std::string_view key) {
                return std::find(k.keys.begin(), k.keys.end(), key) != k.keys.end();
            };
            std::string defaults = "ip " + std::string(k.ip);
            if (reads("count")) defaults += ", count " + std::to_string(k.count);
            if (reads("attempts")) defaults += ", attempts " + std::to_string(k.attempts);
            if (reads("gap")) defaults += ", gap " + std::to_string(k.gap_ms) + "ms";
            std::printf("%-20s %s\n%-20s keys: start, %s%s; defaults: %s\n",
                        std::string(k.name).c_str(), std::string(k.summary).c_str(), "",
                        keys(k.keys).c_str(), reads("gap") ? " (or rate)" : "", defaults.c_str());
        }
    } else if (what == "faults") {
        for (const auto& k : fault_kinds())
            std::printf("%-18s %s\n%-18s keys: %s; probe: fault.%s.fired\n",
                        std::string(k.name).c_str(), std::string(k.summary).c_str(), "",
                        keys(k.keys).c_str(), std::string(k.name).c_str());
        static constexpr std::array<std::string_view, chaos_site_names.size()> chaos_about = {
            "a state change starts a new commit batch though the open one has room",
            "a HISTORY page the cache could answer is read from storage",
            "opening a conversation evicts the least recently used one first",
            "a connection holding over 4 KiB of unread output is closed as if its cap were 4 KiB",
            "a LOGIN or REGISTER finds the password hash queue full (UNAVAILABLE)",
            "the open batch goes to storage while others are in flight, though it is small"};
        std::printf(
            "\nchaos points inside the core, [chaos] NAME = probability (each time the "
            "core reaches the point):\n");
        for (size_t i = 0; i < chaos_site_names.size(); ++i)
            std::printf(
                "%-18s %s\n%-18s probe: chaos.%s.fired\n", std::string(chaos_site_names[i]).c_str(),
                std::string(chaos_about[i]).c_str(), "", std::string(chaos_site_names[i]).c_str());
    } else if (what == "checkers") {
        for (const auto& c : checkers())
            std::printf("%-32s %s\n", std::string(c.name).c_str(), std::string(c.summary).c_str());
    } else if (what == "metrics") {
        for (const auto& [name, about] : metric_families())
            std::printf("%-40s %s\n", name.c_str(), about.c_str());
    } else {
        std::vector<std::filesystem::path> files;
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(scenarios_dir(), ec))
            if (e.path().extension() == ".toml") files.push_back(e.path());
        if (ec) {
            std::fprintf(stderr, "%s: %s\n", scenarios_dir().c_str(), ec.message().c_str());
            return exit_usage;
        }
        std::sort(files.begin(), files.end());
        for (const auto& f : files) {
            Loaded l = load_scenario(f.string());
            std::printf(
                "%-24s %s\n", f.stem().string().c_str(),
                l.errors.empty() ? l.spec.summary.c_str() : "(does not load: warren-sim check)");
        }
    }
    return exit_ok;
}

}  // namespace warren::sim

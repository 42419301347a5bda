// The scenario engine and its files: named random streams, determinism, the loader's errors
// (FILE:LINE:COL, nothing runs) and warren-sim's exit codes and per-seed isolation. The shipped
// scenario files themselves run as ctest tests of their own (scenario.NAME, tests/CMakeLists.txt),
// each seed judged by the tool against the file's [[expect]] tables.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "sim/actors/population.h"
#include "sim/engine/world.h"
#include "sim/parsed_lines.h"
#include "sim/runner.h"
#include "sim/scenario_file.h"

namespace warren::sim {
namespace {

std::string shipped(const std::string& name) {
    return std::string(WARREN_SOURCE_DIR) + "/sim/scenarios/" + name + ".toml";
}

ScenarioSpec load_ok(const std::string& path, const std::vector<std::string>& sets = {}) {
    Loaded l = load_scenario(path, sets);
    EXPECT_TRUE(l.errors.empty()) << l.errors.front();
    return l.spec;
}

TEST(Scenario, SameSeedSameTrace) {
    ScenarioSpec s = load_ok(shipped("message_flood"));
    RunReport a = run_world(s, 3), b = run_world(s, 3);
    EXPECT_EQ(a.trace_hash, b.trace_hash);
    EXPECT_EQ(a.metrics, b.metrics);
    EXPECT_NE(run_world(s, 4).trace_hash, a.trace_hash);
}

// The core's chaos points fire as the [chaos] table says, from the world's own stream: every
// one reached fires at probability 1, none at 0; a run with them still replays from its seed,
// is another run than without them, and every checker still holds.
TEST(Chaos, PointsFireFromTheScenarioAndReplay) {
    std::vector<std::string> all;
    for (std::string_view n : chaos_site_names) all.push_back("chaos." + std::string(n) + "=0.3");
    all.push_back("scenario.duration=30s");
    ScenarioSpec s = load_ok(shipped("durability"), all);
    RunReport a = run_world(s, 5), b = run_world(s, 5);
    EXPECT_EQ(a.trace_hash, b.trace_hash);
    EXPECT_TRUE(a.violations.empty()) << a.violations.front();
    for (std::string_view n : chaos_site_names) {
        if (n == "shrink_outbound") continue;  // nobody here holds 4 KiB unread
        EXPECT_GT(a.probes["chaos." + std::string(n) + ".fired"], 0u) << n;
    }
    ScenarioSpec plain =
        load_ok(shipped("durability"), {"scenario.duration=30s", "chaos.send_early=0"});
    RunReport c = run_world(plain, 5);
    EXPECT_NE(c.trace_hash, a.trace_hash);
    for (const auto& [name, n] : c.probes) EXPECT_FALSE(name.starts_with("chaos.")) << name;
}

// The scenario world's clients read only a line's top-level fields, its error, message, session
// and invitation: the rest is checked as JSON but not kept; a line that is not JSON is still
// refused.
TEST(ParsedLines, KeepsWhatClientsReadAndFindsItsFactsOnce) {
    ParsedLines all;
    ParsedLines top(ParsedLines::Keep::top_level_error_and_message);
    const std::string line =
        R"({"re":7,"ok":false,"error":{"code":"RATE_LIMITED","retry_after_ms":900},)"
        R"("messages":[{"id":1,"text":"a"}],"room":{"id":3},"reason":"x",)"
        R"("message":{"id":5,"room":"r"},"invitation":{"room":"den","to":"bo"}})";
    auto full_line = all.get(line);
    const json& full = full_line->value;
    auto kept_line = top.get(line);
    const json& kept = kept_line->value;
    ASSERT_FALSE(full.is_discarded());
    // What nearly every client reads, found once: a reply's id and verdict, a message's
    // id and room.
    EXPECT_EQ(kept_line->re, 7);
    EXPECT_FALSE(kept_line->ok);
    EXPECT_EQ(kept_line->ev, "");
    EXPECT_EQ(kept_line->message_id, 5);
    EXPECT_EQ(kept_line->message_room, "r");
    auto event = top.get(R"({"ev":"MESSAGE","message":{"id":9,"room":"dev","text":"hi"}})");
    EXPECT_EQ(event->ev, "MESSAGE");
    EXPECT_FALSE(event->re.has_value());
    EXPECT_EQ(event->message_id, 9);
    EXPECT_EQ(event->message_room, "dev");
    ASSERT_FALSE(kept.is_discarded());
    EXPECT_EQ(full.size(), 8u);
    EXPECT_EQ(full["messages"][0]["text"], "a");
    EXPECT_EQ(kept.size(), 6u);
    EXPECT_EQ(kept["invitation"]["room"], "den");
    EXPECT_EQ(kept["message"]["id"], 5);
    EXPECT_EQ(kept["re"], 7);
    EXPECT_EQ(kept["ok"], false);
    EXPECT_EQ(kept["reason"], "x");
    EXPECT_EQ(kept["error"]["code"], "RATE_LIMITED");
    EXPECT_EQ(kept["error"]["retry_after_ms"], 900);
    EXPECT_FALSE(kept.contains("messages"));
    EXPECT_FALSE(kept.contains("room"));
    EXPECT_TRUE(top.get(R"({"re":7,"messages":[{"id":1,)")->is_discarded());
    EXPECT_TRUE(top.get("not json")->is_discarded());
}

// The delivery checker sees a receiver the core forgot: with one MESSAGE event in 300 lost on
// its way, the durability sweep's clients report the messages they never got.
TEST(Checkers, ALostMessageEventIsADeliveryViolation) {
    ScenarioSpec s = load_ok(shipped("durability"));
    EXPECT_TRUE(run_world(s, 2).violations.empty());
    s.lose_message_events_every = 300;
    RunReport r = run_world(s, 2);
    ASSERT_FALSE(r.violations.empty());
    for (const std::string& v : r.violations)
        EXPECT_TRUE(v.starts_with("delivery.complete: ")) << v;
}

// Each actor draws from its own stream: taking an attacker out changes no legitimate client's
// draws (their choices and think times) nor the other attacker's, though the run differs.
TEST(Streams, RemovingAnAttackerLeavesEveryOtherActorsDrawsAlone) {
    ScenarioSpec with = load_ok(shipped("message_flood"));
    with.attackers.push_back(AttackerSpec{.kind = "dm_spam", .start_ms = 12'000});
    ScenarioSpec without = with;
    without.attackers.erase(without.attackers.begin());
    RunReport a = run_world(with, 5), b = run_world(without, 5);
    EXPECT_NE(a.trace_hash, b.trace_hash);
    size_t compared = 0;
    for (const auto& [name, use] : a.streams) {
        if (!name.starts_with("client/") && !name.starts_with("attacker/dm_spam")) continue;
        ASSERT_TRUE(b.streams.contains(name)) << name;
        EXPECT_EQ(use.draws, b.streams.at(name).draws) << name;
        EXPECT_EQ(use.digest, b.streams.at(name).digest) << name;
        ++compared;
    }
    EXPECT_EQ(compared, 51u);  // 50 clients and the attacker that stayed
    EXPECT_TRUE(a.streams.contains("attacker/message_flood"));
    EXPECT_FALSE(b.streams.contains("attacker/message_flood"));
    // The shared streams (the store's latencies) differ: the attacker's traffic shifted them.
    EXPECT_NE(a.streams.at("store").draws, b.streams.at("store").draws);
}

// ---- the loader ------------------------------------------------------------------------------

class ScenarioFile : public ::testing::Test {
  protected:
    std::string write(const std::string& text) {
        path_ = std::filesystem::temp_directory_path() /
                ("warren-scenario-" + std::to_string(::getpid()) + "-" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".toml");
        std::ofstream(path_) << text;
        return path_.string();
    }
    void TearDown() override { std::filesystem::remove(path_); }
    // The errors of `body` after a valid header.
    std::vector<std::string> errors_of(const std::string& body) {
        return load_scenario(
                   write("schema = 1\n[scenario]\nname = \"t\"\nduration = \"60s\"\n" + body))
            .errors;
    }
    std::filesystem::path path_;
};

// Every error names the file, the line and the column of the offending value.
TEST_F(ScenarioFile, ErrorsNameFileLineAndColumn) {
    auto e = errors_of("[[population]]\nname = \"abc\"\ncount = -3\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0], path_.string() + ":7:9: count must be an integer from 0 to 5000");
    e = errors_of("[[attacker]]\nkind = \"message_flood\"\nstart = 30\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find(":7:9: start is a duration and needs a unit"), std::string::npos) << e[0];
    e = errors_of("[[fault]]\nkind = \"storage_outage\"\nfrom = \"10 parsecs\"\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find(":7:8: from: '10 parsecs' is not a duration"), std::string::npos) << e[0];
}

TEST_F(ScenarioFile, UnknownKeysKindsAndLaterStepsAreRefused) {
    auto e =
        errors_of("[network]\ndelay = { dist = \"uniform\", min = \"1ms\", maxx = \"2ms\" }\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find("unknown key 'maxx' in network.delay"), std::string::npos) << e[0];
    e = errors_of("[[attacker]]\nkind = \"teleport\"\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find(":6:8: unknown attacker kind 'teleport'"), std::string::npos) << e[0];
    e = errors_of("[[fault]]\nkind = \"disk_full\"\nprobability = 0.5\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find("unknown key 'probability' in [[fault]] disk_full"), std::string::npos)
        << e[0];
    // A power loss happens during a commit, a recovery, a prune or a backup; only a commit's may
    // come at a moment instead.
    e = errors_of("[[fault]]\nkind = \"power_loss\"\nduring = \"boot\"\nprobability = 1\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find("during is \"commit\", \"recovery\", \"prune\" or \"backup\""),
              std::string::npos)
        << e[0];
    e = errors_of("[[fault]]\nkind = \"power_loss\"\nduring = \"prune\"\nat = \"1s\"\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find("a power_loss during prune has a probability"), std::string::npos) << e[0];
    // A power loss says when: per commit, or at a moment; what it keeps adds up.
    e = errors_of("[[fault]]\nkind = \"power_loss\"\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find("a power_loss fault needs a probability"), std::string::npos) << e[0];
    e = errors_of("[[fault]]\nkind = \"power_loss\"\nat = \"1s\"\nkeep = 0.7\ntorn = 0.5\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find("keep + torn is over 1"), std::string::npos) << e[0];
    e = errors_of("[disk]\nsector_bytes = 1000\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find("sector_bytes is a power of two"), std::string::npos) << e[0];
    e = errors_of("[swarm]\nfault_enabled = 0.5\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find("'swarm' in the file is not supported yet"), std::string::npos) << e[0];
    // A key the attacker kind does not read.
    e = errors_of("[[attacker]]\nkind = \"slowloris\"\nroom = \"lobby\"\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find("'room' does not apply to slowloris"), std::string::npos) << e[0];
}

// The network faults: each names whose connections it cuts; the delay and reader paces are
// checked like every other value.
TEST_F(ScenarioFile, NetworkFaultsNeedWhoAndSaneValues) {
    const std::string pop = "[[population]]\nname = \"mobile\"\ncount = 2\n";
    EXPECT_TRUE(errors_of(pop + "[[fault]]\nkind = \"partition\"\nwho = \"mobile\"\n"
                                "from = \"10s\"\nto = \"20s\"\nmode = \"drop\"\n")
                    .empty());
    EXPECT_TRUE(
        errors_of("[[fault]]\nkind = \"reset\"\nwho = \"10.2.0.0/28\"\nprobability = 0.01\n")
            .empty());
    auto e = errors_of(pop + "[[fault]]\nkind = \"partition\"\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find("a partition fault needs who"), std::string::npos) << e[0];
    e = errors_of(pop + "[[fault]]\nkind = \"partition\"\nwho = \"nobody\"\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find(":10:7: who: no [[population]] named nobody"), std::string::npos) << e[0];
    e = errors_of(pop + "[[fault]]\nkind = \"partition\"\nwho = \"mobile\"\nmode = \"lose\"\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find("mode is \"hold\""), std::string::npos) << e[0];
    e = errors_of("[[fault]]\nkind = \"reset\"\nwho = \"10.2.0.0/33\"\nprobability = 0.1\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find("not an IPv4 address or CIDR"), std::string::npos) << e[0];
    e = errors_of("[[fault]]\nkind = \"reset\"\nwho = \"10.2.0.1\"\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find("a reset fault needs a probability"), std::string::npos) << e[0];
    e = errors_of("[network]\ndelay = { dist = \"exp\", min = \"1ms\", max = \"9ms\" }\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find("dist = \"exp\" needs a mean"), std::string::npos) << e[0];
    e = errors_of("[network]\nreaders = { min_bytes_per_s = 900, max_bytes_per_s = 100 }\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find("min_bytes_per_s is over max_bytes_per_s"), std::string::npos) << e[0];
    e = errors_of("[network]\nreaders = { min_bytes_per_s = 0, max_bytes_per_s = 100 }\n");
    EXPECT_FALSE(e.empty());
    // A crash per commit or at a moment, not both; a graceful restart at a moment.
    EXPECT_TRUE(errors_of("[[fault]]\nkind = \"crash\"\nat = \"10s\"\n").empty());
    e = errors_of("[[fault]]\nkind = \"crash\"\nat = \"10s\"\nprobability = 0.1\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find("a probability (per commit) or an at, not both"), std::string::npos);
    e = errors_of("[[fault]]\nkind = \"restart\"\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find("a restart fault needs an at"), std::string::npos) << e[0];
    e = errors_of("[[fault]]\nkind = \"restart\"\nat = \"2m\"\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find("at is past the scenario's duration"), std::string::npos) << e[0];
    for (const char* kind : {"half_open", "reconnect_storm"}) {
        EXPECT_TRUE(errors_of(pop + "[[fault]]\nkind = \"" + kind +
                              "\"\nwho = \"mobile\"\nfrom = \"5s\"\nto = \"9s\"\n")
                        .empty())
            << kind;
        e = errors_of(pop + "[[fault]]\nkind = \"" + kind + "\"\n");
        ASSERT_EQ(e.size(), 1u) << kind;
        EXPECT_NE(e[0].find(std::string("a ") + kind + " fault needs who"), std::string::npos)
            << e[0];
    }
}

TEST_F(ScenarioFile, RoamingPopulationsTakeANetwork) {
    EXPECT_TRUE(
        errors_of("[[population]]\nname = \"pop\"\nroam = \"2001:db8:0:7::/64\"\n").empty());
    EXPECT_TRUE(errors_of("[[population]]\nname = \"pop\"\nip = \"2001:db8::/48\"\n").empty());
    auto e = errors_of("[[population]]\nname = \"pop\"\nroam = \"100.64.0.1\"\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find(":7:8: roam must be an IPv4 or IPv6 CIDR"), std::string::npos) << e[0];
    e = errors_of("[[population]]\nname = \"pop\"\nip = \"10.0.0.0/8\"\nroam = \"10.0.0.0/8\"\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find("ip or roam, not both"), std::string::npos) << e[0];
    e = errors_of("[[population]]\nname = \"pop\"\nip = \"fe80::/129\"\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find("ip must be an IPv4 or IPv6 address or CIDR"), std::string::npos) << e[0];
}

TEST_F(ScenarioFile, ChaosNamesItsPointsAndTakesProbabilities) {
    EXPECT_TRUE(errors_of("[chaos]\nsplit_batch = 0.5\nhash_queue_full = 1\n").empty());
    auto e = errors_of("[chaos]\nsplit_batches = 0.5\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find("unknown key 'split_batches' in [chaos] (known: evict_now, "
                        "hash_queue_full, history_cache_miss, send_early, shrink_outbound, "
                        "split_batch)"),
              std::string::npos)
        << e[0];
    e = errors_of("[chaos]\nevict_now = 1.5\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find(":6:13: evict_now must be a number from 0 to 1"), std::string::npos)
        << e[0];
}

// Clock faults: a step needs a moment and a signed, non-zero amount; drift needs its rate.
TEST_F(ScenarioFile, ClockFaultsNeedTheirAmounts) {
    EXPECT_TRUE(
        errors_of("[[fault]]\nkind = \"clock_step\"\nat = \"10s\"\nby = \"-3h\"\n").empty());
    EXPECT_TRUE(
        errors_of("[[fault]]\nkind = \"clock_step\"\nat = \"10s\"\nby = \"+8d\"\n").empty());
    EXPECT_TRUE(errors_of("[[fault]]\nkind = \"clock_drift\"\nppm = -150\n").empty());
    auto e = errors_of("[[fault]]\nkind = \"clock_step\"\nat = \"10s\"\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find("a clock_step fault needs an at and a by"), std::string::npos) << e[0];
    for (const char* by : {"0s", "-", "3 hours", "-9999d"}) {
        e = errors_of("[[fault]]\nkind = \"clock_step\"\nat = \"10s\"\nby = \"" + std::string(by) +
                      "\"\n");
        ASSERT_EQ(e.size(), 1u) << by;
        EXPECT_NE(e[0].find(":8:6: by is a signed duration"), std::string::npos) << e[0];
    }
    e = errors_of("[[fault]]\nkind = \"clock_drift\"\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find("a clock_drift fault needs ppm"), std::string::npos) << e[0];
    e = errors_of("[[fault]]\nkind = \"clock_drift\"\nppm = 0\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find("ppm must not be 0"), std::string::npos) << e[0];
    e = errors_of("[[fault]]\nkind = \"clock_step\"\nat = \"10s\"\nby = \"1h\"\nppm = 5\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find("unknown key 'ppm'"), std::string::npos) << e[0];
}

// Whether IPv4 address `ip` is in `cidr` (an address alone: itself); nullopt if either is no
// IPv4 address or network.
std::optional<bool> in_cidr(const std::string& ip, const std::string& cidr) {
    std::optional<uint32_t> a = ipv4(ip);
    std::optional<Cidr> c = Cidr::parse(cidr);
    if (!a || !c) return std::nullopt;
    return c->contains(*a);
}

TEST(Addresses, Cidr) {
    EXPECT_EQ(in_cidr("10.2.0.5", "10.2.0.0/28"), true);
    EXPECT_EQ(in_cidr("10.2.0.16", "10.2.0.0/28"), false);
    EXPECT_EQ(in_cidr("100.64.0.1", "100.64.0.1"), true);
    EXPECT_EQ(in_cidr("100.64.0.2", "100.64.0.1"), false);
    EXPECT_EQ(in_cidr("1.2.3.4", "0.0.0.0/0"), true);
    EXPECT_FALSE(in_cidr("1.2.3.4", "10.0.0.0/40").has_value());
    EXPECT_FALSE(in_cidr("1.2.3.4", "mobile").has_value());
    EXPECT_FALSE(in_cidr("::1", "10.0.0.0/8").has_value());
}

// Where clients come from: hosts of an IPv4 or IPv6 network in order, an address shared, a
// /64 of its own for each host of a wider IPv6 network; roaming draws stay inside.
TEST(Addresses, RangesNumberTheirHostsIPv4AndIPv6) {
    EXPECT_EQ(address_in("10.2.0.0/16", 0), "10.2.0.1");
    EXPECT_EQ(address_in("10.2.0.0/16", 255), "10.2.1.0");
    EXPECT_EQ(address_in("10.2.0.0/30", 1), "10.2.0.2");
    EXPECT_EQ(address_in("10.2.0.0/30", 2), "");  // the broadcast address is no host's
    EXPECT_EQ(address_in("100.64.9.9", 7), "100.64.9.9");
    EXPECT_EQ(address_in("2001:db8:0:7::/64", 0), "2001:db8:0:7::1");
    EXPECT_EQ(address_in("2001:db8:0:7::/64", 0x1ff), "2001:db8:0:7::200");
    EXPECT_EQ(address_in("2001:db8:bee::/48", 0), "2001:db8:bee::1");
    EXPECT_EQ(address_in("2001:db8:bee::/48", 3), "2001:db8:bee:3::1");
    EXPECT_EQ(address_in("2001:db8:bee::/48", 0x10000), "");  // a /48 has 65,536 /64s
    EXPECT_EQ(address_in("2001:db8::9/128", 0), "2001:db8::9");
    EXPECT_EQ(address_in("not an address", 0), "");
    EXPECT_EQ(address_in("2001:db8::/129", 0), "");
    std::optional<AddressRange> v6 = AddressRange::parse("2001:db8:0:7:ffff::/64");
    ASSERT_TRUE(v6.has_value());
    EXPECT_EQ(v6->nth(0), "2001:db8:0:7::1");  // the network's own address, whatever was written
    Stream rng(7);
    std::set<std::string> seen;
    for (int i = 0; i < 50; ++i) {
        std::string a = v6->any(rng);
        EXPECT_TRUE(a.starts_with("2001:db8:0:7:")) << a;
        seen.insert(a);
        std::string b = AddressRange::parse("100.64.0.0/10")->any(rng);
        EXPECT_EQ(in_cidr(b, "100.64.0.0/10"), true) << b;
    }
    EXPECT_EQ(seen.size(), 50u);
}

TEST_F(ScenarioFile, ImpossibleValuesAreRefused) {
    EXPECT_FALSE(errors_of("[[attacker]]\nkind = \"message_flood\"\nrate = \"5000/s\"\n").empty());
    EXPECT_FALSE(errors_of("[[attacker]]\nkind = \"message_flood\"\nstart = \"2m\"\n").empty());
    EXPECT_FALSE(errors_of("[[fault]]\nkind = \"crash\"\nprobability = 1.5\n").empty());
    EXPECT_FALSE(
        errors_of("[[fault]]\nkind = \"slow_storage\"\nfrom = \"20s\"\nto = \"10s\"\n").empty());
    EXPECT_FALSE(
        errors_of("[[population]]\nname = \"abc\"\ncount = 300\nip = \"10.0.0.0/24\"\n").empty());
    // Users NAME0..: "a0" is shorter than a username may be.
    auto short_names = errors_of("[[population]]\nname = \"a\"\ncount = 5\n");
    ASSERT_EQ(short_names.size(), 1u);
    EXPECT_NE(short_names[0].find(":6:8: its users are named a0..aN, and a0 is not a username"),
              std::string::npos)
        << short_names[0];
    EXPECT_FALSE(
        errors_of("[[attacker]]\nkind = \"message_flood\"\nroom = \"no room!\"\n").empty());
    EXPECT_FALSE(
        errors_of("[[expect]]\nid = \"x\"\nmetric = \"legit.happiness\"\nmax = 1\n").empty());
    EXPECT_FALSE(
        errors_of("[[expect]]\nid = \"x\"\nmetric = \"attacker.ghost.attempts\"\nmax = 1\n")
            .empty());
    EXPECT_FALSE(errors_of("[[expect]]\nid = \"x\"\nmetric = \"server.peak_connections\"\n"
                           "during = { from = \"1s\" }\nmax = 1\n")
                     .empty());
    EXPECT_FALSE(errors_of("[liveness]\nheal_at = \"50s\"\nwithin = \"30s\"\n").empty());
    // Once, at the override (not again for the whole table, with the scratch text's position).
    auto set_errors = errors_of("[server.set]\n\"limits.outbound_bytes_max\" = 12\n");
    ASSERT_EQ(set_errors.size(), 1u) << set_errors.back();
    EXPECT_NE(set_errors[0].find(":6:31: server.set \"limits.outbound_bytes_max\": "),
              std::string::npos)
        << set_errors[0];
    EXPECT_FALSE(errors_of("[server.set]\n\"limits.no_such_key\" = 12\n").empty());
    EXPECT_FALSE(errors_of("[scenario.extra]\n").empty());
}

TEST_F(ScenarioFile, MalformedHugeAndHostileFilesAreErrorsNotCrashes) {
    EXPECT_FALSE(load_scenario(write("schema = 1\n[scenario\nname = \"x\"\n")).errors.empty());
    EXPECT_FALSE(load_scenario(write(std::string(2 << 20, '#'))).errors.empty());
    EXPECT_FALSE(load_scenario(write(std::string(5000, '[') + "\n")).errors.empty());
    EXPECT_FALSE(load_scenario(write("schema = 2\n[scenario]\nname = \"x\"\n")).errors.empty());
    EXPECT_FALSE(load_scenario(write("\xff\xfe\x00garbage")).errors.empty());
    EXPECT_FALSE(load_scenario("/nonexistent/scenario.toml").errors.empty());
    EXPECT_FALSE(load_scenario(write("schema = 1\nscenario = 3\n")).errors.empty());
}

TEST_F(ScenarioFile, ServerConfigIsTheWarrendFileWithOverrides) {
    ScenarioSpec s = load_ok(shipped("nat_flood_outage"));
    EXPECT_EQ(s.config.registrations_per_ip_max, 20u);
    EXPECT_EQ(s.config.rate_ip_per_min, 600u);
    std::string example = std::string(WARREN_SOURCE_DIR) + "/docs/warren.example.toml";
    auto e = errors_of(
        "[server]\nconfig = \"" + example +
        "\"\nabuse_limits = false\n[server.set]\n\"limits.outbound_bytes_max\" = 65536\n");
    EXPECT_TRUE(e.empty()) << e.front();
    Loaded l = load_scenario(path_.string());
    EXPECT_EQ(l.spec.config.outbound_bytes_max, 65536u);
    EXPECT_EQ(l.spec.config.points_bad_frame, 0u);  // abuse limits off
}

TEST_F(ScenarioFile, CommandLineOverridesReachEveryKey) {
    ScenarioSpec s = load_ok(shipped("login_storm_slow_storage"),
                             {"scenario.duration=130s", "population.night.count=5",
                              "attacker.0.count=20", "fault.crash.probability=0.5",
                              "server.set.rate.ip_burst=77", "expect.guesser_throttled.max=7"});
    EXPECT_EQ(s.duration_ms, 130'000);
    EXPECT_EQ(s.populations[1].count, 5);
    EXPECT_EQ(s.attackers[0].count, 20);
    EXPECT_EQ(s.faults[2].probability, 0.5);
    EXPECT_EQ(s.config.rate_ip_burst, 77u);
    EXPECT_EQ(*s.expects[3].max, 7);
    EXPECT_FALSE(
        load_scenario(shipped("message_flood"), {"population.nobody.count=1"}).errors.empty());
    EXPECT_FALSE(load_scenario(shipped("message_flood"), {"nonsense"}).errors.empty());
}

// Every shipped file loads.
TEST(ShippedScenarios, AllLoad) {
    size_t n = 0;
    for (const auto& f :
         std::filesystem::directory_iterator(std::string(WARREN_SOURCE_DIR) + "/sim/scenarios")) {
        Loaded l = load_scenario(f.path().string());
        EXPECT_TRUE(l.errors.empty()) << f.path() << ": " << l.errors.front();
        EXPECT_GE(l.spec.seed_count, 5u) << f.path();
        ++n;
    }
    EXPECT_GE(n, 16u);
}

// ---- the tool ---------------------------------------------------------------------------------

struct Ran {
    int code = -1;
    std::string out;
};

Ran warren_sim(const std::string& args) {
    Ran r;
    std::string cmd = std::string(WARREN_BIN_DIR) + "/warren-sim " + args + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::array<char, 4096> buf;
    while (size_t n = fread(buf.data(), 1, buf.size(), p)) r.out.append(buf.data(), n);
    int status = pclose(p);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

TEST_F(ScenarioFile, CheckReportsAndExitsWithTheUsageCode) {
    std::string bad = write("schema = 1\n[scenario]\nname = \"t\"\n[[attacker]]\nkind = \"x\"\n");
    Ran r = warren_sim("check " + bad);
    EXPECT_EQ(r.code, exit_usage);
    EXPECT_NE(r.out.find(bad + ":5:8: unknown attacker kind 'x'"), std::string::npos) << r.out;
    r = warren_sim("run " + bad);
    EXPECT_EQ(r.code, exit_usage);
    EXPECT_EQ(r.out.find("seed"), std::string::npos) << "nothing runs: " << r.out;
    EXPECT_EQ(warren_sim("check " + shipped("message_flood")).code, exit_ok);
}

// A bound that the run breaks: exit 3, and the exact replay command with every override.
TEST(Tool, AFailedExpectationExitsThreeWithTheReplayCommand) {
    Ran r = warren_sim(
        "run " + shipped("message_flood") +
        " --seeds 2 --set expect.throttled_within_31.max=5 --set 'scenario.summary=a b'");
    EXPECT_EQ(r.code, exit_expectation) << r.out;
    EXPECT_NE(r.out.find("expectation throttled_within_31: attacker.message_flood.throttled_at = "
                         "30, over max 5"),
              std::string::npos)
        << r.out;
    EXPECT_NE(
        r.out.find("replay: warren-sim run " + shipped("message_flood") +
                   " --seed 2 --set expect.throttled_within_31.max=5 --set 'scenario.summary=a b'"),
        std::string::npos)
        << r.out;
}

// Clients that can never be served after healing: exit 4.
TEST_F(ScenarioFile, LivenessThatDoesNotHoldExitsFour) {
    // Ten clients on one address and the default 5 registrations per address: five never log in.
    std::string f = write(
        "schema = 1\n[scenario]\nname = \"t\"\nduration = \"40s\"\nseeds = { count = 1 }\n"
        "[[population]]\nname = \"office\"\ncount = 10\nip = \"198.18.0.5\"\n"
        "[liveness]\nheal_at = \"5s\"\nwithin = \"30s\"\nrequire = [\"clients_served\"]\n");
    Ran r = warren_sim("run " + f);
    EXPECT_EQ(r.code, exit_liveness) << r.out;
    EXPECT_NE(r.out.find("liveness clients_served: office"), std::string::npos) << r.out;
}

// `--seed N` alone: seed N of the durability sweep's file, as `run` prints it.
TEST(Tool, SeedAloneRunsTheDurabilitySweepsSeed) {
    Ran r = warren_sim("--seed 5");
    EXPECT_EQ(r.code, exit_ok) << r.out;
    EXPECT_NE(r.out.find("scenario durability: 1 seed(s)"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("seed 5: ok"), std::string::npos) << r.out;
    EXPECT_EQ(warren_sim("").code, exit_usage);
}

// One seed's worker aborts: that seed is reported as a crash with its replay command, and the
// other seeds of the sweep still run and pass.
TEST(Tool, AnAbortingSeedIsReportedAndTheSweepGoesOn) {
    Ran r = warren_sim("run " + shipped("operator_suspend") + " --seeds 6 --jobs 2 --abort-seed 3");
    EXPECT_EQ(r.code, exit_crash) << r.out;
    EXPECT_NE(r.out.find("seed 3: FAIL crash"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("signal 6"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("replay: warren-sim run " + shipped("operator_suspend") + " --seed 3"),
              std::string::npos);
    for (int s : {1, 2, 4, 5, 6}) {
        EXPECT_NE(r.out.find("seed " + std::to_string(s) + ": start"), std::string::npos);
        EXPECT_NE(r.out.find("seed " + std::to_string(s) + ": ok"), std::string::npos) << r.out;
    }
}

TEST_F(ScenarioFile, ASeedPastItsWallTimeoutIsKilledAndReported) {
    std::string f = write(
        "schema = 1\n[scenario]\nname = \"t\"\nduration = \"2h\"\nseeds = { count = 2 }\n"
        "timeout = { wall = \"200ms\" }\n[[population]]\nname = \"many\"\ncount = 500\n");
    Ran r = warren_sim("run " + f + " --jobs 2");
    EXPECT_EQ(r.code, exit_timeout) << r.out;
    EXPECT_NE(r.out.find("seed 1: FAIL timeout"), std::string::npos) << r.out;
}

// A configured fault that never applied fails the sweep: a green run with a fault that never
// fired says nothing.
TEST_F(ScenarioFile, AFaultThatNeverFiredFailsTheSweepWithTheCoverageCode) {
    std::string f = write(
        "schema = 1\n[scenario]\nname = \"t\"\nduration = \"20s\"\nseeds = { count = 3 }\n"
        "[[population]]\nname = \"few\"\ncount = 3\n"
        "[[fault]]\nkind = \"commit_transient\"\nprobability = 0.0\n");
    Ran r = warren_sim("run " + f);
    EXPECT_EQ(r.code, exit_coverage) << r.out;
    EXPECT_NE(r.out.find("coverage: fault commit_transient never fired in 3 seeds"),
              std::string::npos)
        << r.out;
    // The same fault firing: the sweep passes.
    EXPECT_EQ(warren_sim("run " + f + " --set fault.0.probability=0.5").code, exit_ok);
}

TEST(Tool, ListsComeFromTheCodesTables) {
    Ran r = warren_sim("list attackers");
    EXPECT_EQ(r.code, 0);
    for (const char* k : {"brute_force", "credential_stuffing", "connection_flood", "message_flood",
                          "slowloris", "bad_frames", "invitation_spam", "dm_spam", "pipeline"})
        EXPECT_NE(r.out.find(k), std::string::npos) << k;
    EXPECT_NE(warren_sim("list checkers").out.find("durability.acked_stored"), std::string::npos);
    EXPECT_NE(warren_sim("list faults").out.find("storage_outage"), std::string::npos);
    EXPECT_NE(warren_sim("list metrics").out.find("legit.reply_ms.p99"), std::string::npos);
    EXPECT_NE(warren_sim("list scenarios").out.find("nat_flood_outage"), std::string::npos);
    EXPECT_EQ(warren_sim("list nothing").code, exit_usage);
}

}  // namespace
}  // namespace warren::sim

namespace warren::sim {
namespace {

// Hostile files: the shipped ones with bytes flipped, lines dropped, duplicated and swapped,
// and numbers replaced by extremes. The loader answers each with errors or a spec, never a
// crash or a hang (under ASan in CI). Replay a failure with its printed seed.
TEST_F(ScenarioFile, MutatedFilesNeverCrashTheLoader) {
    std::vector<std::string> originals;
    for (const auto& f :
         std::filesystem::directory_iterator(std::string(WARREN_SOURCE_DIR) + "/sim/scenarios")) {
        std::ifstream in(f.path());
        originals.emplace_back(std::istreambuf_iterator<char>(in),
                               std::istreambuf_iterator<char>());
    }
    ASSERT_FALSE(originals.empty());
    uint64_t seed = 20261207;
    std::printf("mutation seed %llu\n", static_cast<unsigned long long>(seed));
    Stream rng(seed);
    static const char* extremes[] = {
        "-1",      "0",        "99999999999999999999", "1e308", "nan", "-inf",
        "\"\"",    "\"-5s\"",  "\"9999999h\"",         "[]",    "{}",  "true",
        "\"0ms\"", "\"1/0s\"", "\"\\u0000\""};
    size_t loaded = 0, refused = 0;
    for (int i = 0; i < 400; ++i) {
        std::string text = originals[rng.below(originals.size())];
        std::vector<std::string> lines;
        std::stringstream ss(text);
        for (std::string l; std::getline(ss, l);) lines.push_back(l);
        for (int m = 0, n = static_cast<int>(rng.between(1, 4)); m < n && !lines.empty(); ++m) {
            size_t at = rng.below(lines.size());
            switch (rng.below(5)) {
                case 0:
                    lines.erase(lines.begin() + static_cast<ptrdiff_t>(at));
                    break;
                case 1:
                    lines.insert(lines.begin() + static_cast<ptrdiff_t>(at), lines[at]);
                    break;
                case 2:
                    std::swap(lines[at], lines[rng.below(lines.size())]);
                    break;
                case 3:
                    if (size_t eq = lines[at].find('='); eq != std::string::npos)
                        lines[at] = lines[at].substr(0, eq + 1) + " " + extremes[rng.below(15)];
                    break;
                default:
                    if (!lines[at].empty())
                        lines[at][rng.below(lines[at].size())] = static_cast<char>(rng.below(256));
            }
        }
        std::string out;
        for (const auto& l : lines) out += l + "\n";
        Loaded l = load_scenario(write(out));
        (l.errors.empty() ? loaded : refused)++;
        for (const auto& e : l.errors)
            ASSERT_NE(e.find(path_.string()), std::string::npos)
                << "an error without its file: " << e;
    }
    EXPECT_GT(refused, 100u);
    EXPECT_GT(loaded, 10u);
}

}  // namespace
}  // namespace warren::sim

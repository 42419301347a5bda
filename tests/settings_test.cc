// The settings loader with real TOML files: every integer key is range-checked at load and a
// refusal names the key and its place (file:line:col); nothing that loads can crash later.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "app/settings.h"

namespace warren::test {
namespace {

std::string write_file(const std::string& name, const std::string& text) {
    auto p = std::filesystem::temp_directory_path() /
             ("warren-settings-" + name + "-" + std::to_string(::getpid()) + ".toml");
    std::ofstream(p) << text;
    return p.string();
}

std::string refusal(const std::string& name, const std::string& text) {
    Settings s;
    auto bad = load_settings_file(write_file(name, text), s);
    return bad.value_or("");
}

// M21: values that used to load and then abort or wrap are refused at load, naming the key
// and its line.
TEST(Settings, OutOfRangeValuesAreRefusedWithKeyAndLine) {
    std::string zero_ttl = refusal("ttl", "[limits]\n# comment\ninvitation_ttl_ms = 0\n");
    EXPECT_NE(zero_ttl.find(":3:"), std::string::npos) << zero_ttl;
    EXPECT_NE(zero_ttl.find("limits.invitation_ttl_ms"), std::string::npos) << zero_ttl;
    std::string wrap = refusal("wrap", "[rate]\nuser_per_min = 4294967296\n");
    EXPECT_NE(wrap.find("rate.user_per_min"), std::string::npos) << wrap;
    EXPECT_NE(wrap.find(":2:"), std::string::npos) << wrap;
    EXPECT_NE(refusal("neg", "[connections]\nmax = -1\n").find("connections.max"),
              std::string::npos);
    EXPECT_NE(refusal("huge", "[limits]\nsession_ttl_ms = 9223372036854775807\n")
                  .find("limits.session_ttl_ms"),
              std::string::npos);
    EXPECT_NE(refusal("float", "[limits]\ntext_max_bytes = 4000.5\n").find("text_max_bytes"),
              std::string::npos);
    EXPECT_NE(refusal("unknown", "[rate]\nuser_per_minute = 5\n").find("unknown key"),
              std::string::npos);
    EXPECT_NE(refusal("ladder", "[security]\nblock_ladder_ms = [0]\n").find("block_ladder_ms"),
              std::string::npos);
    EXPECT_NE(refusal("syntax", "[rate\n").find(":1:"), std::string::npos);
}

TEST(Settings, ValuesInRangeLoad) {
    Settings s;
    auto bad = load_settings_file(write_file("ok",
                                             "[rate]\nuser_per_min = 120\n"
                                             "[security]\nipv6_prefix_bits = 56\n"
                                             "[limits]\ninvitation_ttl_ms = 86400000\n"
                                             "[hashing]\nthreads = 4\n"),
                                  s);
    ASSERT_FALSE(bad) << *bad;
    EXPECT_EQ(s.core.rate_user_per_min, 120u);
    EXPECT_EQ(s.core.ipv6_prefix_bits, 56u);
    EXPECT_EQ(s.core.invitation_ttl_ms, 86'400'000);
    EXPECT_EQ(s.driver.hash_threads, 4);
}

TEST(Settings, TlsKeysLoadAndEveryTlsListenerNeedsACertificate) {
    Settings s;
    auto bad = load_settings_file(write_file("tls",
                                             "[server]\ntls_listen = \"127.0.0.1:7443\"\n"
                                             "[irc]\ntls_listen = \"[::1]:6697\"\n"
                                             "sts_duration_s = 3600\n"
                                             "[tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n"
                                             "handshake_timeout_ms = 2000\nmin_version = \"1.3\"\n"
                                             "client_certificates = false\n"),
                                  s);
    ASSERT_FALSE(bad) << *bad;
    EXPECT_FALSE(finish_settings(s));
    EXPECT_TRUE(s.driver.tls_enabled);
    EXPECT_EQ(s.driver.tls_port, 7443);
    EXPECT_EQ(s.driver.irc_tls_host, "::1");
    EXPECT_EQ(s.driver.tls.handshake_timeout_ms, 2000);
    EXPECT_EQ(s.driver.tls.min_version, "1.3");
    EXPECT_FALSE(s.driver.tls.client_certificates);
    EXPECT_EQ(s.core.irc_sts_port, 6697);  // from irc.tls_listen
    EXPECT_NE(describe_settings(s).find("sts_duration_s = 3600"), std::string::npos);

    std::string version = refusal("tlsv", "[tls]\nmin_version = \"1.0\"\n");
    EXPECT_NE(version.find(":2:"), std::string::npos) << version;
    EXPECT_NE(version.find("tls.min_version"), std::string::npos) << version;
    EXPECT_NE(refusal("tlsk", "[tls]\ncert = \"x\"\n").find("unknown key 'cert' in [tls]"),
              std::string::npos);

    Settings no_cert;
    ASSERT_FALSE(load_settings_file(write_file("nocert", "[admin]\ntls = true\n"), no_cert));
    auto missing = finish_settings(no_cert);
    ASSERT_TRUE(missing);
    EXPECT_NE(missing->find("tls.cert_file"), std::string::npos) << *missing;

    Settings sts_alone;
    ASSERT_FALSE(load_settings_file(write_file("sts", "[irc]\nsts_duration_s = 60\n"), sts_alone));
    auto sts = finish_settings(sts_alone);
    ASSERT_TRUE(sts);
    EXPECT_NE(sts->find("irc.tls_listen"), std::string::npos) << *sts;
}

TEST(Settings, TheExampleFileLoads) {
    Settings s;
    auto bad = load_settings_file(WARREN_SOURCE_DIR "/docs/warren.example.toml", s);
    EXPECT_FALSE(bad) << *bad;
}

}  // namespace
}  // namespace warren::test

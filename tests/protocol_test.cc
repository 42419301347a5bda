// Unit tests of the codec pieces: line framing, JSON writing, request decoding, name rules.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/protocol/framer.h"
#include "core/protocol/json_writer.h"
#include "core/protocol/request.h"
#include "core/validate/rules.h"

namespace warren {
namespace {

std::vector<std::string> lines_of(LineFramer& f, std::string_view bytes,
                                  LineFramer::Status* last = nullptr) {
    f.feed(bytes);
    std::vector<std::string> out;
    std::string_view line;
    LineFramer::Status st;
    while ((st = f.next(line)) == LineFramer::Status::line) out.emplace_back(line);
    if (last) *last = st;
    return out;
}

TEST(Framer, SplitsLinesDropsCarriageReturnAndEmptyLines) {
    LineFramer f(100);
    EXPECT_EQ(lines_of(f, "a\r\n\n\r\nbc\nd"), (std::vector<std::string>{"a", "bc"}));
    EXPECT_EQ(lines_of(f, "ef\n"), (std::vector<std::string>{"def"}));
    EXPECT_EQ(f.buffered_bytes(), 0u);
}

TEST(Framer, LineOfExactlyMaxIsAcceptedWithCrLf) {
    LineFramer f(8);
    LineFramer::Status st;
    EXPECT_TRUE(lines_of(f, "12345678\r", &st).empty());
    EXPECT_EQ(st, LineFramer::Status::need_more);
    EXPECT_EQ(lines_of(f, "\n"), (std::vector<std::string>{"12345678"}));
}

TEST(Framer, OversizedLineIsRefusedBeforeItEnds) {
    LineFramer f(8);
    LineFramer::Status st;
    lines_of(f, "123456789", &st);
    EXPECT_EQ(st, LineFramer::Status::too_large);
    EXPECT_LE(f.buffered_bytes(), 9u);
}

TEST(Framer, OversizedCompleteLineIsRefused) {
    LineFramer f(4);
    LineFramer::Status st;
    auto got = lines_of(f, "ok\n12345\n", &st);
    EXPECT_EQ(got, (std::vector<std::string>{"ok"}));
    EXPECT_EQ(st, LineFramer::Status::too_large);
}

TEST(JsonWriter, EscapesOnlyWhatJsonRequires) {
    JsonWriter w;
    std::string text = "a\"b\\c\n\t\x01 <script> \xC3\xA9";
    w.begin_object().key("t").value(text).key("n").value(int64_t{-5});
    w.key("z").null().key("b").value(true).key("a").begin_array().value("x").end_array();
    w.end_object();
    std::string line = w.take_line();
    EXPECT_EQ(line.back(), '\n');
    auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["t"].get<std::string>(), text);
    EXPECT_EQ(j["n"], -5);
    EXPECT_TRUE(j["z"].is_null());
    EXPECT_EQ(j["a"][0], "x");
    EXPECT_NE(line.find("\\u0001"), std::string::npos);
    EXPECT_NE(line.find("\xC3\xA9"), std::string::npos);  // UTF-8 kept as is
}

TEST(RequestDecoder, ClassifiesFrameIdAndOp) {
    RequestDecoder d;
    EXPECT_EQ(d.decode("nope").kind, DecodedRequest::Kind::bad_frame);
    EXPECT_EQ(d.decode("[1,2]").kind, DecodedRequest::Kind::bad_frame);
    EXPECT_EQ(d.decode("{\"a\":\"\xC3\x28\"}").kind, DecodedRequest::Kind::bad_frame);
    EXPECT_EQ(d.decode(R"({"op":"PING"})").kind, DecodedRequest::Kind::bad_id);
    EXPECT_EQ(d.decode(R"({"id":"1","op":"PING"})").kind, DecodedRequest::Kind::bad_id);
    EXPECT_EQ(d.decode(R"({"id":1.5,"op":"PING"})").kind, DecodedRequest::Kind::bad_id);
    EXPECT_EQ(d.decode(R"({"id":-1,"op":"PING"})").kind, DecodedRequest::Kind::bad_id);
    EXPECT_EQ(d.decode(R"({"id":9007199254740992,"op":"PING"})").kind,
              DecodedRequest::Kind::bad_id);
    auto ok = d.decode(R"({"id":9007199254740991,"op":"PING"})");
    EXPECT_EQ(ok.kind, DecodedRequest::Kind::ok);
    EXPECT_EQ(ok.id, 9007199254740991);
    EXPECT_EQ(ok.op, "PING");
    EXPECT_EQ(d.decode(R"({"id":1})").kind, DecodedRequest::Kind::bad_op);
    EXPECT_EQ(d.decode(R"({"id":1,"op":7})").kind, DecodedRequest::Kind::bad_op);
}

TEST(RequestDecoder, ArgsReportTheOffendingField) {
    RequestDecoder d;
    auto r = d.decode(R"({"id":1,"op":"X","room":5,"limit":"3","text":null})");
    Args a(r.args);
    std::string_view s;
    EXPECT_FALSE(a.req_string("room", s));
    EXPECT_EQ(a.error().field, "room");
    std::optional<int64_t> n;
    EXPECT_FALSE(a.opt_int("limit", n));
    EXPECT_EQ(a.error().field, "limit");
    std::optional<std::string_view> t;
    EXPECT_TRUE(a.opt_string("text", t));
    EXPECT_FALSE(t.has_value());
    EXPECT_FALSE(a.req_string("missing", s));
    EXPECT_EQ(a.error().field, "missing");
}

TEST(Rules, NamesPasswordsTextAndTopics) {
    Config c;
    EXPECT_FALSE(check_username("alice_1-x", c));
    EXPECT_TRUE(check_username("al", c));
    EXPECT_TRUE(check_username(std::string(33, 'a'), c));
    EXPECT_TRUE(check_username("al ice", c));
    EXPECT_TRUE(check_username("../etc", c));
    EXPECT_FALSE(check_room_name("g", c));
    EXPECT_TRUE(check_room_name("", c));
    EXPECT_TRUE(check_room_name(std::string(51, 'r'), c));
    EXPECT_FALSE(check_password("12345678", c));
    EXPECT_TRUE(check_password("1234567", c));
    EXPECT_TRUE(check_password(std::string(129, 'p'), c));
    EXPECT_FALSE(check_text("DROP TABLE users; <script>\n\t", c));
    EXPECT_TRUE(check_text("", c));
    EXPECT_TRUE(check_text(std::string("a\0b", 3), c));
    EXPECT_TRUE(check_text("bell\x07", c));
    EXPECT_TRUE(check_text("\xC0\xAF", c));           // overlong '/'
    EXPECT_TRUE(check_text("\xED\xA0\x80", c));       // surrogate
    EXPECT_FALSE(check_text("\xF0\x9F\x91\x8D", c));  // thumbs up
    EXPECT_TRUE(check_text(std::string(4001, 'x'), c));
    EXPECT_FALSE(check_topic("", c));
    EXPECT_TRUE(check_topic(std::string(201, 't'), c));
    EXPECT_EQ(name_key("AlIcE"), "alice");
}

}  // namespace
}  // namespace warren

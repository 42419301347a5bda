// libFuzzer target: the codec. Arbitrary bytes, split into chunks at points chosen by the
// input itself, go through LineFramer and RequestDecoder, and every argument accessor is
// exercised. Checks: framing never buffers more than max_frame_bytes + 1 of an unfinished
// line; decoding never crashes; accepted ids are within 0..2^53-1; every string argument
// handed out is valid UTF-8 (simdjson validated the line).
#include <cstddef>
#include <cstdint>

#include "core/base.h"
#include "core/protocol/framer.h"
#include "core/protocol/request.h"
#include "core/validate/rules.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    constexpr size_t max_frame = 512;
    size_t chunk = 1 + data[0] % 64;
    std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
    warren::LineFramer framer(max_frame);
    static warren::RequestDecoder decoder;
    for (size_t pos = 0; pos < bytes.size(); pos += chunk) {
        framer.feed(bytes.substr(pos, chunk));
        std::string_view line;
        for (;;) {
            auto st = framer.next(line);
            if (st == warren::LineFramer::Status::too_large) return 0;
            if (st == warren::LineFramer::Status::need_more) break;
            WARREN_CHECK(line.size() <= max_frame && !line.empty());
            auto d = decoder.decode(line);
            if (d.kind != warren::DecodedRequest::Kind::ok) continue;
            WARREN_CHECK(d.id >= 0 && d.id <= warren::request_id_max);
            warren::Args a(d.args);
            for (const char* key : {"username", "password", "token", "room", "text", "topic",
                                    "visibility", "cursor"}) {
                std::optional<std::string_view> s;
                if (a.opt_string(key, s) && s) WARREN_CHECK(warren::is_valid_utf8(*s));
            }
            for (const char* key : {"limit", "before", "after", "reply_to", "message_id"}) {
                std::optional<int64_t> n;
                (void)a.opt_int(key, n);
            }
        }
        WARREN_CHECK(framer.buffered_bytes() <= max_frame + 1);
    }
    return 0;
}

// libFuzzer target: the whole core. A registered, logged-in connection in a room sends the
// fuzz input as its byte stream (split at input-chosen points) while a second member
// listens; commits succeed or fail as the input says. Checks: the core never crashes or
// trips a WARREN_CHECK, every output line is a JSON object ending in '\n', and the
// connection's memory stays bounded (framer and reply queue limits).
#include <cstddef>
#include <cstdint>

#include "fuzz/core_driver.h"

namespace {

warren::Config fuzz_config() {
    warren::Config cfg;
    cfg.max_frame_bytes = 2048;
    cfg.text_max_bytes = 1024;
    cfg.room_cache_messages_max = 128;
    // Abuse limits off: a block after a few bad frames would hide the chat logic from the
    // fuzzer. Validation stays on, with its always-on checks in core/chat.
    return warren::without_abuse_limits(cfg);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    warren::fuzz::CoreDriver d(fuzz_config());
    d.core->connect(1, "127.0.0.1", d.now);
    d.core->connect(2, "127.0.0.2", d.now);
    d.run();
    d.say(1,
          "{\"id\":1,\"op\":\"REGISTER\",\"username\":\"fuzz\",\"password\":\"password\"}\n"
          "{\"id\":2,\"op\":\"CREATE_ROOM\",\"room\":\"r\"}\n");
    d.say(2,
          "{\"id\":1,\"op\":\"REGISTER\",\"username\":\"peer\",\"password\":\"password\"}\n"
          "{\"id\":2,\"op\":\"JOIN_ROOM\",\"room\":\"r\"}\n");
    size_t chunk = 1 + data[0] % 128;
    d.fail_commits = data[1] % 8 == 0;
    std::string_view bytes(reinterpret_cast<const char*>(data + 2), size - 2);
    for (size_t pos = 0; pos < bytes.size(); pos += chunk) {
        d.now.mono_us += 7'000;
        d.now.wall_ms += 7;
        d.say(1, bytes.substr(pos, chunk));
    }
    d.core->tick(d.now);
    d.run();
    return 0;
}

// libFuzzer target: the whole core. A registered, logged-in connection in a room sends the
// fuzz input as its byte stream (split at input-chosen points) while a second member
// listens; commits succeed or fail as the input says. Checks: the core never crashes or
// trips a WARREN_CHECK, every output line is a JSON object ending in '\n', and the
// connection's memory stays bounded (framer and reply queue limits).
#include <cstddef>
#include <cstdint>

#include "fuzz/core_driver.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    warren::fuzz::CoreDriver d(warren::fuzz::session_config());
    d.core->connect(1, "127.0.0.1", d.now);
    d.core->connect(2, "127.0.0.2", d.now);
    d.run();
    d.say(1,
          "{\"id\":1,\"op\":\"REGISTER\",\"username\":\"fuzz\",\"password\":\"password\"}\n"
          "{\"id\":2,\"op\":\"CREATE_ROOM\",\"room\":\"r\"}\n");
    d.say(2,
          "{\"id\":1,\"op\":\"REGISTER\",\"username\":\"peer\",\"password\":\"password\"}\n"
          "{\"id\":2,\"op\":\"JOIN_ROOM\",\"room\":\"r\"}\n");
    d.play(1, data, size);
    return 0;
}

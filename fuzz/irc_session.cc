// libFuzzer target: the IRC front door through the whole core. An IRC connection logged in
// with PASS sends the fuzz input as its byte stream (split at input-chosen points); a second
// IRC connection (every capability, joined to the room) and a JSON member listen. Checks: the
// core never crashes or trips a WARREN_CHECK; every IRC output is whole "\r\n" lines with no
// CR, LF or NUL inside (no line injection from any input, on either listener's clients);
// every JSON line is an object (fuzz/core_driver.h).
#include <cstddef>
#include <cstdint>

#include "fuzz/core_driver.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    warren::fuzz::CoreDriver d(warren::fuzz::session_config());
    d.core->connect(2, "127.0.0.2", d.now);
    d.run();
    d.say(2,
          "{\"id\":1,\"op\":\"REGISTER\",\"username\":\"peer\",\"password\":\"password\"}\n"
          "{\"id\":2,\"op\":\"CREATE_ROOM\",\"room\":\"r\"}\n"
          "{\"id\":3,\"op\":\"REGISTER\",\"username\":\"fuzz\",\"password\":\"password\"}\n");
    d.connect_irc(3, "127.0.0.3");
    d.say(3,
          "CAP LS 302\r\nPASS peer:password\r\nNICK peer\r\nUSER p 0 * :p\r\n"
          "CAP REQ :message-tags server-time echo-message account-tag standard-replies\r\n"
          "CAP END\r\nJOIN #r\r\n");
    d.connect_irc(1, "127.0.0.1");
    d.say(1, "PASS fuzz:password\r\nNICK fuzz\r\nUSER f 0 * :f\r\nJOIN #r\r\n");
    d.play(1, data, size);
    return 0;
}

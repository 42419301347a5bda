// libFuzzer target: typed request decoding, op by op. The first byte picks the op; the rest
// is the body of the request object (the fuzzer mutates JSON), which gets the op's name and
// an id put in front. A line the decoder accepts goes through decode_request() for that op,
// which must give a Validated request or a Rejection naming a field, never crash, assert or
// read past a string. Checks: a rejection has a message; a validated request is of the op
// asked for.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/base.h"
#include "core/config.h"
#include "core/ops/ops.h"
#include "core/protocol/request.h"
#include "core/validate/requests.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    static const warren::Config config;
    static warren::RequestDecoder decoder;
    auto op = static_cast<warren::Op>(data[0] % warren::op_count);
    std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
    std::string line = "{\"id\":1,\"op\":\"" + std::string(warren::op_table[data[0] % warren::op_count].name) +
                       "\"";
    if (!body.empty() && body.front() == '{') body.remove_prefix(1);
    if (!body.empty() && body.front() != '}') line += ",";
    line += body;
    auto d = decoder.decode(line);
    if (d.kind != warren::DecodedRequest::Kind::ok) return 0;
    warren::Args args(d.args);
    auto out = warren::decode_request(op, args, config);
    if (auto* bad = std::get_if<warren::Rejection>(&out)) {
        WARREN_CHECK(!bad->message.empty());
    } else {
        WARREN_CHECK(std::get<warren::Validated>(out).op() == op);
    }
    return 0;
}

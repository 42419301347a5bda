// The JSON-lines encoding of typed replies and events (PROTOCOL.md): one compact JSON object
// per line, ending in '\n'. Field order is fixed, so equal values give equal bytes. Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/ops/events.h"
#include "core/ops/replies.h"

namespace warren {

// `re` is the request id answered; nullopt renders "re":null (a frame that had no usable id).
std::string encode_json_reply(std::optional<int64_t> re, const ReplyBody& body);
std::string encode_json_event(const Event& event);

}  // namespace warren

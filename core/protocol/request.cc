#include "core/protocol/request.h"

namespace warren {

std::string quoted_key(std::string_view key, std::string_view what) {
    std::string s;
    s.reserve(key.size() + what.size() + 3);
    s += '\'';
    s += key;
    s += "' ";
    s += what;
    return s;
}

bool Args::fail(std::string_view key, std::string message) {
    error_.field = std::string(key);
    error_.message = std::move(message);
    return false;
}

bool Args::opt_string(std::string_view key, std::optional<std::string_view>& out) {
    out.reset();
    simdjson::dom::element el;
    if (obj_.at_key(key).get(el) != simdjson::SUCCESS || el.is_null()) return true;
    std::string_view s;
    if (el.get_string().get(s) != simdjson::SUCCESS)
        return fail(key, quoted_key(key, "must be a string"));
    out = s;
    return true;
}

std::optional<std::string_view> Args::string_of(std::string_view key) const {
    simdjson::dom::element el;
    std::string_view s;
    if (obj_.at_key(key).get(el) != simdjson::SUCCESS || el.get_string().get(s)) return {};
    return s;
}

bool Args::req_string(std::string_view key, std::string_view& out) {
    std::optional<std::string_view> v;
    if (!opt_string(key, v)) return false;
    if (!v) return fail(key, quoted_key(key, "is required"));
    out = *v;
    return true;
}

bool Args::opt_int(std::string_view key, std::optional<int64_t>& out) {
    out.reset();
    simdjson::dom::element el;
    if (obj_.at_key(key).get(el) != simdjson::SUCCESS || el.is_null()) return true;
    int64_t n = 0;
    if (el.get_int64().get(n) != simdjson::SUCCESS)
        return fail(key, quoted_key(key, "must be an integer"));
    out = n;
    return true;
}

bool Args::opt_bool(std::string_view key, std::optional<bool>& out) {
    out.reset();
    simdjson::dom::element el;
    if (obj_.at_key(key).get(el) != simdjson::SUCCESS || el.is_null()) return true;
    bool b = false;
    if (el.get_bool().get(b) != simdjson::SUCCESS)
        return fail(key, quoted_key(key, "must be true or false"));
    out = b;
    return true;
}

bool Args::req_int(std::string_view key, int64_t& out) {
    std::optional<int64_t> v;
    if (!opt_int(key, v)) return false;
    if (!v) return fail(key, quoted_key(key, "is required"));
    out = *v;
    return true;
}

DecodedRequest RequestDecoder::decode(std::string_view line) {
    DecodedRequest r;
    simdjson::dom::element root;
    // simdjson validates UTF-8 for the whole document, strings and all.
    if (auto err = parser_.parse(line.data(), line.size(), true).get(root); err) {
        r.detail = std::string("not a JSON object: ") + simdjson::error_message(err);
        return r;
    }
    if (root.get_object().get(r.args) != simdjson::SUCCESS) {
        r.detail = "not a JSON object";
        return r;
    }
    simdjson::dom::element id;
    r.kind = DecodedRequest::Kind::bad_id;
    if (r.args.at_key("id").get(id) != simdjson::SUCCESS) {
        r.detail = "'id' is required";
        return r;
    }
    // get_int64 accepts only integral JSON numbers (1.0 and "1" are refused).
    if (id.get_int64().get(r.id) != simdjson::SUCCESS || r.id < 0 || r.id > request_id_max) {
        r.detail = "'id' must be an integer from 0 to 2^53-1";
        return r;
    }
    r.kind = DecodedRequest::Kind::bad_op;
    simdjson::dom::element op;
    if (r.args.at_key("op").get(op) != simdjson::SUCCESS) {
        r.detail = "'op' is required";
        return r;
    }
    if (op.get_string().get(r.op) != simdjson::SUCCESS) {
        r.detail = "'op' must be a string";
        return r;
    }
    r.kind = DecodedRequest::Kind::ok;
    return r;
}

}  // namespace warren

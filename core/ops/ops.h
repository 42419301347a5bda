// Ops: the enum and the per-op facts of the op table (ops.def), derived, never written twice.
//
// `Op` values are in table order, which is also the order of the Request variant's
// alternatives (requests.h checks it), so `static_cast<Op>(request.index())` names a
// request's op. op_info() is constexpr; op_from_name() returns nullopt for unknown names.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace warren {

enum class Op : uint8_t {
#define WARREN_OP(id, ...) id,
#include "core/ops/ops.def"
#undef WARREN_OP
};

inline constexpr size_t op_count = 0
#define WARREN_OP(...) +1  // NOLINT(bugprone-macro-parentheses): a count
#include "core/ops/ops.def"
#undef WARREN_OP
    ;

struct OpInfo {
    std::string_view name;  // on the wire
    uint32_t weight = 1;    // rate-limit tokens
    bool needs_session = true;
    bool writes = true;
};

namespace op_table_detail {
enum Access { guest, member };
enum Effect { reads, writes };
}  // namespace op_table_detail

inline constexpr std::array<OpInfo, op_count> op_table = {{
#define WARREN_OP(id, wire, type, weight, access, effect, handler)     \
    {wire, weight, op_table_detail::access == op_table_detail::member, \
     op_table_detail::effect == op_table_detail::writes},
#include "core/ops/ops.def"
#undef WARREN_OP
}};

constexpr const OpInfo& op_info(Op op) {
    return op_table[static_cast<size_t>(op)];
}
constexpr std::string_view op_name(Op op) {
    return op_info(op).name;
}
constexpr bool op_needs_session(Op op) {
    return op_info(op).needs_session;
}
// The IRC front door's own ops (a guest's nick, SASL EXTERNAL) have no JSON wire name.
constexpr bool on_json_wire(Op op) {
    return op != Op::guest_login && op != Op::certificate_login;
}
std::optional<Op> op_from_name(std::string_view name);

static_assert(op_info(Op::ping).name == "PING" && !op_info(Op::ping).needs_session);
static_assert(op_info(Op::register_).weight == 5 && op_info(Op::register_).writes);

}  // namespace warren

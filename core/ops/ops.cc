#include "core/ops/ops.h"

namespace warren {

std::optional<Op> op_from_name(std::string_view name) {
    for (size_t i = 0; i < op_count; ++i)
        if (op_table[i].name == name && on_json_wire(static_cast<Op>(i)))
            return static_cast<Op>(i);
    return std::nullopt;
}

}  // namespace warren

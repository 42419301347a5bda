#include "core/ops/codes.h"

namespace warren {

std::optional<ErrorCode> error_code_from_name(std::string_view name) {
    for (size_t i = 0; i < error_code_count; ++i)
        if (error_code_names[i] == name) return static_cast<ErrorCode>(i);
    return std::nullopt;
}

}  // namespace warren

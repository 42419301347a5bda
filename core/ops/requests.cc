#include "core/ops/requests.h"

namespace warren {

Request empty_request(Op op) {
    switch (op) {
#define WARREN_OP(id, wire, type, ...) \
    case Op::id:                       \
        return Request(std::in_place_type<type>);
#include "core/ops/ops.def"
#undef WARREN_OP
    }
    return Request(std::in_place_type<Ping>);
}

}  // namespace warren

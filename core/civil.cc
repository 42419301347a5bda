#include "core/civil.h"

namespace warren {

// Days since 1970-01-01 to a date by eras of 400 years (Howard Hinnant's algorithm); times
// before the epoch round down, so -1 ms is 1969-12-31T23:59:59.999.
CivilTime civil_utc(int64_t wall_ms) {
    int64_t secs = wall_ms >= 0 ? wall_ms / 1000 : (wall_ms - 999) / 1000;
    int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    int64_t sod = secs - days * 86400;
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    CivilTime t;
    t.day = doy - (153 * mp + 2) / 5 + 1;
    t.month = mp < 10 ? mp + 3 : mp - 9;
    t.year = yoe + era * 400 + (t.month <= 2 ? 1 : 0);
    t.hour = sod / 3600;
    t.minute = sod / 60 % 60;
    t.second = sod % 60;
    t.ms = wall_ms - secs * 1000;
    return t;
}

}  // namespace warren

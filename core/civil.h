// Civil (proleptic Gregorian) UTC date and time of a wall-clock millisecond count: for the
// stamps users see (IRC server-time, backup file names). Pure arithmetic; no clock.
#pragma once

#include <cstdint>

namespace warren {

struct CivilTime {
    int64_t year = 1970, month = 1, day = 1;
    int64_t hour = 0, minute = 0, second = 0, ms = 0;
};

CivilTime civil_utc(int64_t wall_ms);

}  // namespace warren

// Online backup: a consistent copy of a live database, taken while the server writes to it.
// The copy is read from one snapshot (a read transaction held for the whole copy, which WAL
// lets writers continue past), a bounded number of pages at a time with a pause between
// steps so that the copy never takes the disk from the commits, written to OUT.partial,
// checked (PRAGMA quick_check), synced, and only then renamed to OUT. Restoring is copying
// OUT to DATA_DIR/warren.db while warrend is stopped (docs/OPERATIONS.md).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "core/base.h"

namespace warren {

struct BackupPacing {
    int pages_per_step = 256;  // 1 MiB at SQLite's 4 KiB pages
    std::chrono::milliseconds pause{5};
};

struct BackupStats {
    uint64_t bytes = 0;
    uint64_t pages = 0;
    std::chrono::milliseconds took{0};
};

// Copies the database at `db_path` into `out`, which must not exist yet. `stop`, when set,
// abandons the copy (the partial file is removed).
Result<BackupStats> backup_database(const std::string& db_path, const std::string& out,
                                    BackupPacing pacing = {},
                                    const std::atomic<bool>* stop = nullptr);

}  // namespace warren

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
#include <functional>
#include <memory>
#include <string>

#include "core/base.h"

struct sqlite3;
struct sqlite3_backup;

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

// What a backup does to files besides SQLite's own I/O, which goes through `vfs`: the POSIX
// calls in warrend (posix_backup_files), the simulated disk's in the simulator.
struct BackupFiles {
    const char* vfs = nullptr;  // SQLite's VFS for the database and the copy (null: default)
    std::function<bool(const std::string&)> exists;
    std::function<void(const std::string&)> remove;
    std::function<Status(const std::string&)> sync;  // the file's data onto the disk
    // `from` becomes `to`, and the directory's change is on the disk when it returns.
    std::function<Status(const std::string& from, const std::string& to)> rename;
    std::function<uint64_t(const std::string&)> size;
};
BackupFiles posix_backup_files();

// One backup, a step at a time: start() opens the database, begins the read that is the copy's
// snapshot and creates OUT.partial; step() copies pages; finish() checks, syncs and renames.
// Dropped before finish() returns, it abandons the copy and removes the partial file.
class OnlineBackup {
  public:
    static Result<std::unique_ptr<OnlineBackup>> start(const std::string& db_path,
                                                       const std::string& out, BackupFiles files);
    ~OnlineBackup();
    OnlineBackup(const OnlineBackup&) = delete;
    OnlineBackup& operator=(const OnlineBackup&) = delete;
    // Copies up to `pages` more; true once every page is copied.
    Result<bool> step(int pages);
    // The copy checked (PRAGMA quick_check), synced, renamed to OUT, the directory synced.
    Result<BackupStats> finish();

  private:
    OnlineBackup() = default;
    BackupFiles files_;
    std::string out_;
    std::string partial_;  // removed unless it became the backup
    sqlite3* src_ = nullptr;
    sqlite3* dst_ = nullptr;
    sqlite3_backup* copy_ = nullptr;
    uint64_t pages_ = 0;
    std::chrono::steady_clock::time_point started_;
};

// Copies the database at `db_path` into `out`, which must not exist yet, pausing between
// steps. `stop`, when set, abandons the copy (the partial file is removed).
Result<BackupStats> backup_database(const std::string& db_path, const std::string& out,
                                    BackupPacing pacing = {},
                                    const std::atomic<bool>* stop = nullptr);

}  // namespace warren

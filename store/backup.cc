#include "store/backup.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <thread>

namespace warren {

namespace {

// Closes what it holds on every path out of backup_database().
struct Handles {
    sqlite3* src = nullptr;
    sqlite3* dst = nullptr;
    sqlite3_backup* copy = nullptr;
    std::string partial;  // removed unless it became the backup
    ~Handles() {
        if (copy) sqlite3_backup_finish(copy);
        if (src) sqlite3_close(src);
        if (dst) sqlite3_close(dst);
        if (!partial.empty()) std::remove(partial.c_str());
    }
};

Status fsync_path(const std::string& path, int flags) {
    int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0) return Status::failed("cannot open " + path + " to sync it");
    int rc = ::fsync(fd);
    ::close(fd);
    return rc == 0 ? Status::ok() : Status::failed("fsync " + path + " failed");
}

std::string first_column(sqlite3* db, const char* sql) {
    sqlite3_stmt* s = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        if (const unsigned char* t = sqlite3_column_text(s, 0)) out = reinterpret_cast<const char*>(t);
    sqlite3_finalize(s);
    return out;
}

}  // namespace

Result<BackupStats> backup_database(const std::string& db_path, const std::string& out,
                                    BackupPacing pacing, const std::atomic<bool>* stop) {
    namespace fs = std::filesystem;
    auto started = std::chrono::steady_clock::now();
    std::error_code ec;
    if (fs::exists(out, ec)) return Status::failed(out + " exists already");
    if (!fs::exists(db_path, ec)) return Status::failed("no database at " + db_path);
    Handles h;
    // Read-write without create: the copy only reads, but a connection that may write can
    // make the WAL index when no server has the database open.
    if (sqlite3_open_v2(db_path.c_str(), &h.src, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK)
        return Status::failed("cannot open " + db_path + ": " + sqlite3_errmsg(h.src));
    sqlite3_busy_timeout(h.src, 5000);
    // One snapshot for the whole copy: writers go on appending to the WAL past it, and no
    // step ever sees a later commit, so the copy is the database as of this moment.
    if (sqlite3_exec(h.src, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK ||
        first_column(h.src, "SELECT count(*) FROM sqlite_schema").empty())
        return Status::failed("cannot start a read of " + db_path + ": " + sqlite3_errmsg(h.src));
    h.partial = out + ".partial";
    std::remove(h.partial.c_str());
    if (sqlite3_open_v2(h.partial.c_str(), &h.dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                        nullptr) != SQLITE_OK)
        return Status::failed("cannot create " + h.partial + ": " + sqlite3_errmsg(h.dst));
    h.copy = sqlite3_backup_init(h.dst, "main", h.src, "main");
    if (!h.copy) return Status::failed(std::string("backup: ") + sqlite3_errmsg(h.dst));
    for (;;) {
        int rc = sqlite3_backup_step(h.copy, pacing.pages_per_step);
        if (rc == SQLITE_DONE) break;
        if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
            return Status::failed(std::string("backup: ") + sqlite3_errstr(rc));
        if (stop && stop->load()) return Status::failed("backup stopped: the server is stopping");
        std::this_thread::sleep_for(pacing.pause);
    }
    BackupStats stats;
    stats.pages = static_cast<uint64_t>(sqlite3_backup_pagecount(h.copy));
    int rc = sqlite3_backup_finish(h.copy);
    h.copy = nullptr;
    if (rc != SQLITE_OK) return Status::failed(std::string("backup: ") + sqlite3_errstr(rc));
    sqlite3_exec(h.src, "COMMIT", nullptr, nullptr, nullptr);
    if (std::string check = first_column(h.dst, "PRAGMA quick_check"); check != "ok")
        return Status::failed("the copy failed its check: " + check);
    sqlite3_close(h.dst);
    h.dst = nullptr;
    if (Status st = fsync_path(h.partial, O_RDONLY); !st.is_ok()) return st;
    fs::rename(h.partial, out, ec);
    if (ec) return Status::failed("cannot rename " + h.partial + ": " + ec.message());
    h.partial.clear();
    fs::path dir = fs::path(out).parent_path();
    if (Status st = fsync_path(dir.empty() ? "." : dir.string(), O_RDONLY | O_DIRECTORY);
        !st.is_ok())
        return st;
    stats.bytes = fs::file_size(out, ec);
    stats.took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    return stats;
}

}  // namespace warren

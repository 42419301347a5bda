#include "store/backup.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <thread>

namespace warren {

namespace {

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
        if (const unsigned char* t = sqlite3_column_text(s, 0))
            out = reinterpret_cast<const char*>(t);
    sqlite3_finalize(s);
    return out;
}

}  // namespace

BackupFiles posix_backup_files() {
    namespace fs = std::filesystem;
    BackupFiles f;
    f.exists = [](const std::string& p) {
        std::error_code ec;
        return fs::exists(p, ec);
    };
    f.remove = [](const std::string& p) { std::remove(p.c_str()); };
    f.sync = [](const std::string& p) { return fsync_path(p, O_RDONLY); };
    f.rename = [](const std::string& from, const std::string& to) {
        std::error_code ec;
        fs::rename(from, to, ec);
        if (ec) return Status::failed("cannot rename " + from + ": " + ec.message());
        fs::path dir = fs::path(to).parent_path();
        return fsync_path(dir.empty() ? "." : dir.string(), O_RDONLY | O_DIRECTORY);
    };
    f.size = [](const std::string& p) {
        std::error_code ec;
        auto n = fs::file_size(p, ec);
        return ec ? uint64_t{0} : static_cast<uint64_t>(n);
    };
    return f;
}

Result<std::unique_ptr<OnlineBackup>> OnlineBackup::start(const std::string& db_path,
                                                          const std::string& out,
                                                          BackupFiles files) {
    std::unique_ptr<OnlineBackup> b(new OnlineBackup());
    b->files_ = std::move(files);
    b->out_ = out;
    b->started_ = std::chrono::steady_clock::now();
    const BackupFiles& f = b->files_;
    if (f.exists(out)) return Status::failed(out + " exists already");
    if (!f.exists(db_path)) return Status::failed("no database at " + db_path);
    // Read-write without create: the copy only reads, but a connection that may write can
    // make the WAL index when no server has the database open.
    if (sqlite3_open_v2(db_path.c_str(), &b->src_, SQLITE_OPEN_READWRITE, f.vfs) != SQLITE_OK)
        return Status::failed("cannot open " + db_path + ": " + sqlite3_errmsg(b->src_));
    sqlite3_busy_timeout(b->src_, 5000);
    // One snapshot for the whole copy: writers go on appending to the WAL past it, and no
    // step ever sees a later commit, so the copy is the database as of this moment.
    if (sqlite3_exec(b->src_, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK ||
        first_column(b->src_, "SELECT count(*) FROM sqlite_schema").empty())
        return Status::failed("cannot start a read of " + db_path + ": " + sqlite3_errmsg(b->src_));
    b->partial_ = out + ".partial";
    f.remove(b->partial_);  // what an interrupted backup left
    if (sqlite3_open_v2(b->partial_.c_str(), &b->dst_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                        f.vfs) != SQLITE_OK)
        return Status::failed("cannot create " + b->partial_ + ": " + sqlite3_errmsg(b->dst_));
    b->copy_ = sqlite3_backup_init(b->dst_, "main", b->src_, "main");
    if (!b->copy_) return Status::failed(std::string("backup: ") + sqlite3_errmsg(b->dst_));
    return b;
}

OnlineBackup::~OnlineBackup() {
    if (copy_) sqlite3_backup_finish(copy_);
    if (src_) sqlite3_close(src_);
    if (dst_) sqlite3_close(dst_);
    if (!partial_.empty()) files_.remove(partial_);
}

Result<bool> OnlineBackup::step(int pages) {
    int rc = sqlite3_backup_step(copy_, pages);
    if (rc == SQLITE_DONE) return true;
    if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
        return Status::failed(std::string("backup: ") + sqlite3_errstr(rc));
    return false;
}

Result<BackupStats> OnlineBackup::finish() {
    BackupStats stats;
    stats.pages = static_cast<uint64_t>(sqlite3_backup_pagecount(copy_));
    int rc = sqlite3_backup_finish(copy_);
    copy_ = nullptr;
    if (rc != SQLITE_OK) return Status::failed(std::string("backup: ") + sqlite3_errstr(rc));
    sqlite3_exec(src_, "COMMIT", nullptr, nullptr, nullptr);
    if (std::string check = first_column(dst_, "PRAGMA quick_check"); check != "ok")
        return Status::failed("the copy failed its check: " + check);
    sqlite3_close(dst_);
    dst_ = nullptr;
    if (Status st = files_.sync(partial_); !st.is_ok()) return st;
    if (Status st = files_.rename(partial_, out_); !st.is_ok()) return st;
    partial_.clear();
    stats.bytes = files_.size(out_);
    stats.took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started_);
    return stats;
}

Result<BackupStats> backup_database(const std::string& db_path, const std::string& out,
                                    BackupPacing pacing, const std::atomic<bool>* stop) {
    auto b = OnlineBackup::start(db_path, out, posix_backup_files());
    if (!b.is_ok()) return b.status();
    for (;;) {
        Result<bool> done = b.value()->step(pacing.pages_per_step);
        if (!done.is_ok()) return done.status();
        if (done.value()) break;
        if (stop && stop->load()) return Status::failed("backup stopped: the server is stopping");
        std::this_thread::sleep_for(pacing.pause);
    }
    return b.value()->finish();
}

}  // namespace warren

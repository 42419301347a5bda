// The simulator's disk: a SQLite VFS whose files live in memory, so the real store runs
// unchanged (WAL, its own syncs and checkpoints) on a disk the simulator can fail.
//
// Each file has two copies. The cache is what the operating system holds: every read sees it,
// every write lands in it at once. The platter is what survives a loss of power: a write
// reaches it only when xSync on that file returns. So:
//   - a process crash (halt(), then boot()) loses nothing the process wrote: the OS keeps its
//     cache; only the process's open files, its locks and the shared memory (-shm) go;
//   - a power loss (halt(), power_loss(), boot()) rebuilds each file from its platter: of
//     every sector written since the file's last sync, each is kept, lost, or torn (its first
//     half written, the rest as before) with the probabilities given. A truncation since the
//     last sync is kept or lost the same way. Files are created and deleted at once (the
//     directory is journaled).
// A failed sync (the fault hook says so) drops the file's unsynced writes from the platter's
// future: the OS marks the pages clean though they never reached it, as Linux does after an
// fsync error, so only a later write of the same bytes and a sync that succeeds put them there.
//
// Files opened before a halt() are dead for good: every operation on them fails with an I/O
// error and changes nothing, so closing the dead process's connection cannot write, truncate
// or delete. Between halt() and boot() the VFS opens and deletes nothing.
//
// Only the simulator links this (sim/, never production). Everything is deterministic: no
// clock, no randomness but the seed and the streams the caller passes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace warren::sim {

class Stream;

class SimDisk {
  public:
    enum class Op { read, write, sync, truncate };
    // Asked before each read, write, sync and truncation of a live file ("warren.db",
    // "warren.db-wal", ...): 0 lets it proceed, else the SQLite error code it fails with
    // (SQLITE_IOERR_FSYNC, SQLITE_IOERR_READ, ...), and it changes nothing.
    using FaultHook = std::function<int(Op, const std::string& path)>;

    // `seed` feeds the VFS's xRandomness (WAL salts). Registers a VFS of a name unique to
    // this disk; the destructor unregisters it (close every connection on it first).
    explicit SimDisk(uint64_t seed, uint32_t sector_size = 512);
    ~SimDisk();
    SimDisk(const SimDisk&) = delete;
    SimDisk& operator=(const SimDisk&) = delete;

    // The name to give sqlite3_open_v2 (Store::open's `vfs`).
    const char* vfs_name() const;
    // Bytes the files may hold in all (0: no limit); a write or extension past it fails with
    // SQLITE_FULL and writes nothing.
    void set_capacity(uint64_t bytes);
    void set_fault_hook(FaultHook h);
    // Told after each sync that succeeded, with the file's name.
    void set_sync_listener(std::function<void(const std::string& path)> f);

    // The process stops: every file open now is dead, and nothing opens until boot().
    void halt();
    struct PowerLoss {
        double keep = 0.4;  // each unsynced sector reaches the platter
        double torn = 0.2;  // or half of it does (the rest is lost)
    };
    struct PowerLossReport {
        uint64_t kept = 0, torn = 0, lost = 0;  // unsynced sectors
    };
    // The host loses power (only while halted): every file becomes what its platter holds.
    PowerLossReport power_loss(Stream& rng, PowerLoss p);
    // A new process may open files again; the shared memory of the old one is gone.
    void boot();
    // The power goes in the middle of what the process is doing: `ops` more writes, syncs and
    // truncations succeed, the next one fails with an I/O error and the disk halts (the caller
    // then calls power_loss() and boot()). -1: not armed.
    void cut_power_after(int64_t ops);
    bool halted() const;

    // PRAGMA integrity_check of a database on this disk, on a connection of its own: "ok",
    // or what SQLite found.
    std::string integrity_check(const std::string& path);

    // What an online backup does besides SQLite's own I/O (store/backup.h BackupFiles): a
    // file by name, its size, its removal, a sync of it (as xSync: a write or sync toward
    // cut_power_after, the fault hook asked), and a rename (at once and for good, the
    // directory being journaled; counted as a write). Each fails while the disk is halted.
    bool exists(const std::string& path) const;
    uint64_t size(const std::string& path) const;
    int remove(const std::string& path);     // SQLITE_OK or an SQLite error code
    int sync_file(const std::string& path);  // likewise
    int rename(const std::string& from, const std::string& to);

    uint64_t used_bytes() const;
    uint64_t syncs() const;
    uint64_t full_refusals() const;  // writes and extensions refused with SQLITE_FULL
    // A file's bytes as the OS has them / as the platter has them (nullopt: no such file).
    std::optional<std::string> cached(const std::string& path) const;
    std::optional<std::string> platter(const std::string& path) const;

    struct Impl;

  private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace warren::sim

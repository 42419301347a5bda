#include "sim/engine/disk.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <vector>

#include "sim/engine/streams.h"
#include "sim/rng.h"

namespace warren::sim {

namespace {

// One file: the OS's copy and the platter's, and which sectors differ since the last sync.
struct Node {
    std::string cache;
    std::string platter;
    std::vector<uint8_t> dirty;      // per sector of the cache: written since the last sync
    std::vector<size_t> dirty_list;  // the same sectors, in the order first written
    bool resized = false;            // truncated or extended since the last sync
    // The -shm wal-index: regions of shared memory, gone with the process that used them, and
    // its eight lock slots (SQLITE_SHM_NLOCK): how many handles hold each shared, and which
    // holds it exclusively.
    struct Shm {
        std::vector<std::unique_ptr<char[]>> regions;
        std::array<int, SQLITE_SHM_NLOCK> shared{};
        std::array<const void*, SQLITE_SHM_NLOCK> exclusive{};
    };
    std::shared_ptr<Shm> shm;
    std::vector<struct Handle*> handles;  // open on it, live or dead (for file locks)
};

// An open file: SQLite's sqlite3_file header first, as the VFS contract requires.
struct Handle {
    sqlite3_file base;
    SimDisk::Impl* disk;
    std::shared_ptr<Node> node;
    std::string path;
    uint64_t generation;
    bool delete_on_close;
    std::shared_ptr<Node::Shm> shm;  // mapped by this handle (kept alive while it is)
    int lock = SQLITE_LOCK_NONE;     // the file lock it holds (a dead handle's counts no more)
    uint32_t shm_shared = 0, shm_exclusive = 0;  // the shm lock slots it holds, as bits
};

}  // namespace

struct SimDisk::Impl {
    sqlite3_vfs vfs{};
    std::string name;
    uint32_t sector;
    Rng random;  // xRandomness
    std::map<std::string, std::shared_ptr<Node>> files;
    uint64_t generation = 0;  // handles of an older one are dead
    bool halted = false;
    uint64_t capacity = 0;
    uint64_t used = 0;  // bytes in every cache, of live and deleted-but-open files
    uint64_t syncs = 0;
    uint64_t full_refusals = 0;
    uint64_t temp_files = 0;
    FaultHook fault;
    std::function<void(const std::string&)> synced;

    Impl(uint64_t seed, uint32_t sector_size) : sector(sector_size), random(seed) {}

    static Impl* of(sqlite3_vfs* v) { return static_cast<Impl*>(v->pAppData); }
    static Handle* of(sqlite3_file* f) { return reinterpret_cast<Handle*>(f); }
    bool dead(const Handle* h) const { return halted || h->generation != generation; }
    int64_t cut_after = -1;  // cut_power_after: writes, syncs and truncations left (-1: none)
    int fault_for(Op op, Handle* h) { return fault_for(op, h->path); }
    int fault_for(Op op, const std::string& path) {
        if (op != Op::read && cut_after >= 0 && cut_after-- == 0) {
            cut_after = -1;
            halted = true;
            ++generation;
            return op == Op::sync ? SQLITE_IOERR_FSYNC : SQLITE_IOERR_WRITE;
        }
        return fault ? fault(op, path) : 0;
    }
    // A file leaves the directory; its bytes go once no handle holds them.
    void unlist(std::map<std::string, std::shared_ptr<Node>>::iterator it) {
        if (it->second.use_count() == 1) used -= it->second->cache.size();
        files.erase(it);
    }

    void mark(Node& n, uint64_t from, uint64_t to) {
        if (to <= from) return;
        size_t first = from / sector, last = (to - 1) / sector;
        if (n.dirty.size() <= last) n.dirty.resize(last + 1, 0);
        for (size_t s = first; s <= last; ++s)
            if (!n.dirty[s]) {
                n.dirty[s] = 1;
                n.dirty_list.push_back(s);
            }
    }
    // The cache's size changes: the capacity is checked first.
    int resize(Node& n, uint64_t size) {
        if (size > n.cache.size()) {
            uint64_t more = size - n.cache.size();
            if (capacity > 0 && used + more > capacity) {
                ++full_refusals;
                return SQLITE_FULL;
            }
            used += more;
        } else {
            used -= n.cache.size() - size;
        }
        n.cache.resize(size, '\0');
        n.resized = true;
        return SQLITE_OK;
    }
    // What a sync does: the platter takes the cache's unsynced sectors and size.
    void sync(Node& n) {
        n.platter.resize(n.cache.size(), '\0');
        for (size_t s : n.dirty_list) {
            size_t at = s * sector;
            if (at >= n.cache.size()) continue;
            size_t len = std::min<size_t>(sector, n.cache.size() - at);
            std::memcpy(n.platter.data() + at, n.cache.data() + at, len);
        }
        forget_dirty(n);
    }
    static void forget_dirty(Node& n) {
        for (size_t s : n.dirty_list) n.dirty[s] = 0;
        n.dirty_list.clear();
        n.resized = false;
    }
};

namespace {

using Impl = SimDisk::Impl;

void release_shm_locks(Handle* h) {
    if (!h->shm) return;
    for (size_t i = 0; i < SQLITE_SHM_NLOCK; ++i) {
        uint32_t bit = 1u << i;
        if (h->shm_shared & bit) --h->shm->shared[i];
        if (h->shm_exclusive & bit) h->shm->exclusive[i] = nullptr;
    }
    h->shm_shared = h->shm_exclusive = 0;
}

int x_close(sqlite3_file* f) {
    Handle* h = Impl::of(f);
    Impl* d = h->disk;
    auto it = d->files.find(h->path);
    bool listed = it != d->files.end() && it->second == h->node;
    // Temporary files go with their handle, also a dead process's (the OS removes them).
    if (h->delete_on_close && listed) {
        d->files.erase(it);
        listed = false;
    }
    // A file nobody can reach any more gives its bytes back.
    if (!listed && h->node.use_count() == 1) d->used -= h->node->cache.size();
    std::erase(h->node->handles, h);
    release_shm_locks(h);
    h->~Handle();
    return SQLITE_OK;
}

int x_read(sqlite3_file* f, void* out, int amount, sqlite3_int64 offset) {
    Handle* h = Impl::of(f);
    Impl* d = h->disk;
    if (d->dead(h)) return SQLITE_IOERR_READ;
    if (int rc = d->fault_for(SimDisk::Op::read, h)) return rc;
    const std::string& c = h->node->cache;
    auto off = static_cast<uint64_t>(offset), n = static_cast<uint64_t>(amount);
    uint64_t have = off < c.size() ? std::min<uint64_t>(n, c.size() - off) : 0;
    if (have > 0) std::memcpy(out, c.data() + off, have);
    if (have < n) {
        // SQLite's contract: a short read fills the rest with zeros.
        std::memset(static_cast<char*>(out) + have, 0, n - have);
        return SQLITE_IOERR_SHORT_READ;
    }
    return SQLITE_OK;
}

int x_write(sqlite3_file* f, const void* in, int amount, sqlite3_int64 offset) {
    Handle* h = Impl::of(f);
    Impl* d = h->disk;
    if (d->dead(h)) return SQLITE_IOERR_WRITE;
    if (int rc = d->fault_for(SimDisk::Op::write, h)) return rc;
    Node& n = *h->node;
    auto off = static_cast<uint64_t>(offset), len = static_cast<uint64_t>(amount);
    if (off + len > n.cache.size())
        if (int rc = d->resize(n, off + len)) return rc;
    std::memcpy(n.cache.data() + off, in, len);
    d->mark(n, off, off + len);
    return SQLITE_OK;
}

int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
    Handle* h = Impl::of(f);
    Impl* d = h->disk;
    if (d->dead(h)) return SQLITE_IOERR_TRUNCATE;
    if (int rc = d->fault_for(SimDisk::Op::truncate, h)) return rc;
    return d->resize(*h->node, static_cast<uint64_t>(size));
}

int x_sync(sqlite3_file* f, int) {
    Handle* h = Impl::of(f);
    Impl* d = h->disk;
    if (d->dead(h)) return SQLITE_IOERR_FSYNC;
    if (int rc = d->fault_for(SimDisk::Op::sync, h)) {
        // The pages are marked clean without reaching the platter (see disk.h).
        Impl::forget_dirty(*h->node);
        return rc;
    }
    d->sync(*h->node);
    ++d->syncs;
    if (d->synced) d->synced(h->path);
    return SQLITE_OK;
}

int x_file_size(sqlite3_file* f, sqlite3_int64* size) {
    Handle* h = Impl::of(f);
    if (h->disk->dead(h)) return SQLITE_IOERR_FSTAT;
    *size = static_cast<sqlite3_int64>(h->node->cache.size());
    return SQLITE_OK;
}

// File locks between the connections of the live process, as SQLite's locking protocol
// needs them: a closing connection checkpoints and deletes the WAL only if it gets an
// EXCLUSIVE lock, which a connection still open (holding SHARED, as WAL connections always
// do) refuses. A dead process's locks are released with it.
int strongest_other(const Handle* h) {
    int most = SQLITE_LOCK_NONE;
    for (const Handle* o : h->node->handles)
        if (o != h && !h->disk->dead(o)) most = std::max(most, o->lock);
    return most;
}
int x_lock(sqlite3_file* f, int level) {
    Handle* h = Impl::of(f);
    if (h->disk->dead(h)) return SQLITE_IOERR_LOCK;
    if (h->lock >= level) return SQLITE_OK;
    int other = strongest_other(h);
    bool ok = level == SQLITE_LOCK_SHARED      ? other < SQLITE_LOCK_PENDING
              : level == SQLITE_LOCK_RESERVED  ? other < SQLITE_LOCK_RESERVED
              : level == SQLITE_LOCK_EXCLUSIVE ? other < SQLITE_LOCK_SHARED
                                               : other < SQLITE_LOCK_RESERVED;
    if (!ok) return SQLITE_BUSY;
    h->lock = level;
    return SQLITE_OK;
}
int x_unlock(sqlite3_file* f, int level) {
    Handle* h = Impl::of(f);
    h->lock = std::min(h->lock, level);
    return SQLITE_OK;
}
int x_check_reserved(sqlite3_file* f, int* out) {
    Handle* h = Impl::of(f);
    *out = strongest_other(h) >= SQLITE_LOCK_RESERVED;
    return SQLITE_OK;
}
int x_file_control(sqlite3_file*, int, void*) {
    return SQLITE_NOTFOUND;
}
int x_sector_size(sqlite3_file* f) {
    return static_cast<int>(Impl::of(f)->disk->sector);
}
// As the unix VFS says by default: a write changes no byte outside its range, even when power
// is lost (the power-loss model keeps to that: a torn sector's other bytes are as before).
int x_device(sqlite3_file*) {
    return SQLITE_IOCAP_POWERSAFE_OVERWRITE;
}

int x_shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
    Handle* h = Impl::of(f);
    *out = nullptr;
    if (h->disk->dead(h)) return SQLITE_IOERR_SHMMAP;
    if (!h->shm) {
        if (!h->node->shm) h->node->shm = std::make_shared<Node::Shm>();
        h->shm = h->node->shm;
    }
    auto& regions = h->shm->regions;
    auto i = static_cast<size_t>(region);
    if (i >= regions.size()) {
        if (!extend) return SQLITE_OK;
        while (regions.size() <= i) {
            auto r = std::make_unique<char[]>(static_cast<size_t>(size));
            std::memset(r.get(), 0, static_cast<size_t>(size));
            regions.push_back(std::move(r));
        }
    }
    *out = regions[i].get();
    return SQLITE_OK;
}
// The wal-index's lock slots: readers, the writer and checkpointers of the live process's
// connections exclude each other through them.
int x_shm_lock(sqlite3_file* f, int first, int n, int flags) {
    Handle* h = Impl::of(f);
    if (h->disk->dead(h)) return SQLITE_IOERR_SHMLOCK;
    if (!h->shm) return SQLITE_IOERR_SHMLOCK;
    Node::Shm& m = *h->shm;
    uint32_t bits = ((1u << n) - 1) << first;
    if (flags & SQLITE_SHM_UNLOCK) {
        for (int i = first; i < first + n; ++i) {
            uint32_t bit = 1u << i;
            if (h->shm_shared & bit) --m.shared[static_cast<size_t>(i)];
            if (h->shm_exclusive & bit) m.exclusive[static_cast<size_t>(i)] = nullptr;
        }
        h->shm_shared &= ~bits;
        h->shm_exclusive &= ~bits;
        return SQLITE_OK;
    }
    bool exclusive = (flags & SQLITE_SHM_EXCLUSIVE) != 0;
    for (int i = first; i < first + n; ++i) {
        auto k = static_cast<size_t>(i);
        if (m.exclusive[k] && m.exclusive[k] != h) return SQLITE_BUSY;
        int others = m.shared[k] - ((h->shm_shared >> i) & 1 ? 1 : 0);
        if (exclusive && others > 0) return SQLITE_BUSY;
    }
    for (int i = first; i < first + n; ++i) {
        auto k = static_cast<size_t>(i);
        uint32_t bit = 1u << i;
        if (exclusive) {
            m.exclusive[k] = h;
        } else if (!(h->shm_shared & bit)) {
            ++m.shared[k];
        }
    }
    (exclusive ? h->shm_exclusive : h->shm_shared) |= bits;
    return SQLITE_OK;
}
void x_shm_barrier(sqlite3_file*) {}
int x_shm_unmap(sqlite3_file* f, int delete_flag) {
    Handle* h = Impl::of(f);
    release_shm_locks(h);
    if (delete_flag && !h->disk->dead(h) && h->node->shm == h->shm) h->node->shm.reset();
    h->shm.reset();
    return SQLITE_OK;
}

const sqlite3_io_methods io_methods = {
    2,  // with shared memory (WAL), without memory-mapped I/O
    x_close,   x_read,     x_write,          x_truncate,     x_sync,        x_file_size,
    x_lock,    x_unlock,   x_check_reserved, x_file_control, x_sector_size, x_device,
    x_shm_map, x_shm_lock, x_shm_barrier,    x_shm_unmap,    nullptr,       nullptr,
};

int x_open(sqlite3_vfs* v, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
    Impl* d = Impl::of(v);
    f->pMethods = nullptr;  // until it is open: SQLite then never calls xClose
    if (d->halted) return SQLITE_CANTOPEN;
    std::string path = name ? std::string(name) : "temp#" + std::to_string(++d->temp_files);
    auto it = d->files.find(path);
    if (it == d->files.end()) {
        if (!(flags & SQLITE_OPEN_CREATE)) return SQLITE_CANTOPEN;
        it = d->files.emplace(path, std::make_shared<Node>()).first;
    } else if ((flags & SQLITE_OPEN_EXCLUSIVE) && (flags & SQLITE_OPEN_CREATE)) {
        return SQLITE_CANTOPEN;
    }
    auto* h = new (f) Handle{{&io_methods}, d,
                             it->second,    path,
                             d->generation, (flags & SQLITE_OPEN_DELETEONCLOSE) != 0 || !name,
                             nullptr};
    it->second->handles.push_back(h);
    if (out_flags) *out_flags = flags;
    return SQLITE_OK;
}

int x_delete(sqlite3_vfs* v, const char* name, int) {
    Impl* d = Impl::of(v);
    if (d->halted) return SQLITE_IOERR_DELETE;
    auto it = d->files.find(name);
    if (it == d->files.end()) return SQLITE_IOERR_DELETE_NOENT;
    d->unlist(it);
    return SQLITE_OK;
}

int x_access(sqlite3_vfs* v, const char* name, int, int* out) {
    Impl* d = Impl::of(v);
    auto it = d->files.find(name);
    // As the unix VFS: an empty file counts as absent (a WAL of nothing is no WAL).
    *out = it != d->files.end() && !it->second->cache.empty();
    return SQLITE_OK;
}

int x_full_pathname(sqlite3_vfs*, const char* name, int n, char* out) {
    size_t len = std::strlen(name);
    if (len + 1 > static_cast<size_t>(n)) return SQLITE_CANTOPEN;
    std::memcpy(out, name, len + 1);
    return SQLITE_OK;
}

int x_randomness(sqlite3_vfs* v, int n, char* out) {
    Impl* d = Impl::of(v);
    for (int i = 0; i < n; ++i) out[i] = static_cast<char>(d->random.next());
    return n;
}

int x_sleep(sqlite3_vfs*, int us) {
    return us;
}  // nobody else could make progress meanwhile

// SQLite asks the time only for SQL's date functions, which the store does not use: a fixed
// moment keeps runs reproducible.
int x_current_time_int64(sqlite3_vfs*, sqlite3_int64* out) {
    *out = 210866760000000LL + 1764000000000LL;  // Julian-day milliseconds of 2025-11-24
    return SQLITE_OK;
}
int x_current_time(sqlite3_vfs* v, double* out) {
    sqlite3_int64 ms = 0;
    x_current_time_int64(v, &ms);
    *out = static_cast<double>(ms) / 86400000.0;
    return SQLITE_OK;
}
int x_last_error(sqlite3_vfs*, int, char*) {
    return 0;
}

}  // namespace

SimDisk::SimDisk(uint64_t seed, uint32_t sector_size)
    : impl_(std::make_unique<Impl>(seed, sector_size)) {
    Impl& d = *impl_;
    d.name = "warren-sim-disk-" + std::to_string(reinterpret_cast<uintptr_t>(&d));
    d.vfs.iVersion = 2;
    d.vfs.szOsFile = sizeof(Handle);
    d.vfs.mxPathname = 512;
    d.vfs.zName = d.name.c_str();
    d.vfs.pAppData = &d;
    d.vfs.xOpen = x_open;
    d.vfs.xDelete = x_delete;
    d.vfs.xAccess = x_access;
    d.vfs.xFullPathname = x_full_pathname;
    d.vfs.xRandomness = x_randomness;
    d.vfs.xSleep = x_sleep;
    d.vfs.xCurrentTime = x_current_time;
    d.vfs.xGetLastError = x_last_error;
    d.vfs.xCurrentTimeInt64 = x_current_time_int64;
    sqlite3_vfs_register(&d.vfs, 0);
}

SimDisk::~SimDisk() {
    sqlite3_vfs_unregister(&impl_->vfs);
}

const char* SimDisk::vfs_name() const {
    return impl_->name.c_str();
}
void SimDisk::set_capacity(uint64_t bytes) {
    impl_->capacity = bytes;
}
void SimDisk::set_fault_hook(FaultHook h) {
    impl_->fault = std::move(h);
}
void SimDisk::set_sync_listener(std::function<void(const std::string&)> f) {
    impl_->synced = std::move(f);
}

void SimDisk::halt() {
    impl_->halted = true;
    ++impl_->generation;
}

SimDisk::PowerLossReport SimDisk::power_loss(Stream& rng, PowerLoss p) {
    PowerLossReport r;
    Impl& d = *impl_;
    if (!d.halted) return r;
    for (auto& [path, node] : d.files) {
        Node& n = *node;
        std::string disk = n.platter;
        // A truncation (or extension) since the last sync reaches the platter or not.
        if (n.resized && n.cache.size() < disk.size() && rng.chance(p.keep))
            disk.resize(n.cache.size());
        for (size_t s : n.dirty_list) {
            size_t at = s * d.sector;
            if (at >= n.cache.size()) continue;  // truncated away since
            size_t len = std::min<size_t>(d.sector, n.cache.size() - at);
            double u = rng.unit();
            size_t take = 0;
            if (u < p.keep) {
                take = len;
                ++r.kept;
            } else if (u < p.keep + p.torn) {
                take = std::max<size_t>(1, len / 2);
                ++r.torn;
            } else {
                ++r.lost;
                continue;
            }
            if (disk.size() < at + take) disk.resize(at + take, '\0');
            std::memcpy(disk.data() + at, n.cache.data() + at, take);
        }
        d.used -= n.cache.size();
        d.used += disk.size();
        n.cache = disk;
        n.platter = std::move(disk);
        Impl::forget_dirty(n);
        n.dirty.clear();
    }
    return r;
}

void SimDisk::boot() {
    Impl& d = *impl_;
    d.halted = false;
    for (auto& [path, node] : d.files) node->shm.reset();
}

std::string SimDisk::integrity_check(const std::string& path) {
    sqlite3* db = nullptr;
    std::string out;
    int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, vfs_name());
    sqlite3_stmt* st = nullptr;
    if (rc == SQLITE_OK) rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr);
    while (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        if (!out.empty()) out += "; ";
        const unsigned char* t = sqlite3_column_text(st, 0);
        out += t ? reinterpret_cast<const char*>(t) : "";
    }
    if (rc != SQLITE_OK) out = std::string("cannot check: ") + (db ? sqlite3_errmsg(db) : "");
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

bool SimDisk::exists(const std::string& path) const {
    return impl_->files.contains(path);
}

uint64_t SimDisk::size(const std::string& path) const {
    auto it = impl_->files.find(path);
    return it == impl_->files.end() ? 0 : it->second->cache.size();
}

int SimDisk::remove(const std::string& path) {
    Impl& d = *impl_;
    if (d.halted) return SQLITE_IOERR_DELETE;
    auto it = d.files.find(path);
    if (it == d.files.end()) return SQLITE_IOERR_DELETE_NOENT;
    d.unlist(it);
    return SQLITE_OK;
}

int SimDisk::sync_file(const std::string& path) {
    Impl& d = *impl_;
    if (d.halted) return SQLITE_IOERR_FSYNC;
    auto it = d.files.find(path);
    if (it == d.files.end()) return SQLITE_IOERR_FSYNC;
    std::shared_ptr<Node> node = it->second;
    if (int rc = d.fault_for(Op::sync, path)) {
        Impl::forget_dirty(*node);
        return rc;
    }
    d.sync(*node);
    ++d.syncs;
    if (d.synced) d.synced(path);
    return SQLITE_OK;
}

// A directory entry changes at once and for good (the directory is journaled); it counts as a
// write toward cut_power_after and the fault hook.
int SimDisk::rename(const std::string& from, const std::string& to) {
    Impl& d = *impl_;
    if (d.halted) return SQLITE_IOERR_WRITE;
    auto it = d.files.find(from);
    if (it == d.files.end()) return SQLITE_IOERR_WRITE;
    if (int rc = d.fault_for(Op::write, to)) return rc;
    std::shared_ptr<Node> node = it->second;
    d.files.erase(it);
    if (auto old = d.files.find(to); old != d.files.end()) d.unlist(old);
    d.files.emplace(to, std::move(node));
    return SQLITE_OK;
}

void SimDisk::cut_power_after(int64_t ops) {
    impl_->cut_after = ops;
}
bool SimDisk::halted() const {
    return impl_->halted;
}

uint64_t SimDisk::used_bytes() const {
    return impl_->used;
}
uint64_t SimDisk::syncs() const {
    return impl_->syncs;
}
uint64_t SimDisk::full_refusals() const {
    return impl_->full_refusals;
}

std::optional<std::string> SimDisk::cached(const std::string& path) const {
    auto it = impl_->files.find(path);
    if (it == impl_->files.end()) return std::nullopt;
    return it->second->cache;
}

std::optional<std::string> SimDisk::platter(const std::string& path) const {
    auto it = impl_->files.find(path);
    if (it == impl_->files.end()) return std::nullopt;
    return it->second->platter;
}

}  // namespace warren::sim

// The simulator's disk (sim/engine/disk.h): bytes reach the platter only through a sync; a
// power loss keeps, loses or tears each unsynced sector; a crash keeps the OS's cache; a failed
// sync, a full disk and dead handles — first on raw files, then under the real store.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <memory>

#include "sim/engine/disk.h"
#include "sim/engine/streams.h"
#include "store/store.h"

namespace warren::sim {
namespace {

// A file opened through the disk's VFS, as SQLite would.
class RawFile {
  public:
    RawFile(SimDisk& d, const char* name) {
        vfs_ = sqlite3_vfs_find(d.vfs_name());
        mem_.reset(new char[static_cast<size_t>(vfs_->szOsFile)]);
        f_ = reinterpret_cast<sqlite3_file*>(mem_.get());
        int out = 0;
        rc_ = vfs_->xOpen(vfs_, name, f_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &out);
    }
    ~RawFile() {
        if (f_->pMethods) f_->pMethods->xClose(f_);
    }
    int open_rc() const { return rc_; }
    int write(const std::string& s, int64_t at) {
        return f_->pMethods->xWrite(f_, s.data(), static_cast<int>(s.size()), at);
    }
    int sync() { return f_->pMethods->xSync(f_, SQLITE_SYNC_NORMAL); }
    int read(std::string& out, int64_t at) {
        return f_->pMethods->xRead(f_, out.data(), static_cast<int>(out.size()), at);
    }

  private:
    sqlite3_vfs* vfs_;
    std::unique_ptr<char[]> mem_;
    sqlite3_file* f_;
    int rc_;
};

std::string sectors(char a, char b) {
    return std::string(512, a) + std::string(512, b);
}

// What an online backup does besides SQLite's I/O: a sync by name puts the file on the
// platter, a rename is at once and for good, a removal too; a halted disk does none of them,
// and a sync by name counts toward a power cut like xSync.
TEST(SimDisk, FilesAreSyncedRenamedAndRemovedByName) {
    SimDisk d(1);
    Streams streams(7);
    {
        RawFile f(d, "b.partial");
        ASSERT_EQ(f.write(sectors('a', 'b'), 0), SQLITE_OK);
    }
    EXPECT_EQ(*d.platter("b.partial"), "");
    ASSERT_EQ(d.sync_file("b.partial"), SQLITE_OK);
    EXPECT_EQ(*d.platter("b.partial"), sectors('a', 'b'));
    ASSERT_EQ(d.rename("b.partial", "b"), SQLITE_OK);
    EXPECT_FALSE(d.exists("b.partial"));
    ASSERT_TRUE(d.exists("b"));
    EXPECT_EQ(d.size("b"), 1024u);
    EXPECT_NE(d.rename("nothing", "x"), SQLITE_OK);
    // The power goes: the renamed, synced file is whole.
    d.halt();
    EXPECT_NE(d.remove("b"), SQLITE_OK);
    EXPECT_NE(d.rename("b", "c"), SQLITE_OK);
    EXPECT_NE(d.sync_file("b"), SQLITE_OK);
    d.power_loss(streams["p"], {0, 0});
    d.boot();
    EXPECT_EQ(*d.cached("b"), sectors('a', 'b'));
    // A cut after no more operations falls on the next sync by name.
    d.cut_power_after(0);
    EXPECT_EQ(d.sync_file("b"), SQLITE_IOERR_FSYNC);
    EXPECT_TRUE(d.halted());
    d.boot();
    ASSERT_EQ(d.remove("b"), SQLITE_OK);
    EXPECT_FALSE(d.exists("b"));
    EXPECT_EQ(d.used_bytes(), 0u);
}

TEST(SimDisk, WritesReachThePlatterOnlyThroughASync) {
    SimDisk d(1);
    RawFile f(d, "f");
    ASSERT_EQ(f.open_rc(), SQLITE_OK);
    ASSERT_EQ(f.write(sectors('a', 'b'), 0), SQLITE_OK);
    EXPECT_EQ(*d.cached("f"), sectors('a', 'b'));
    EXPECT_EQ(*d.platter("f"), "");
    ASSERT_EQ(f.sync(), SQLITE_OK);
    EXPECT_EQ(*d.platter("f"), sectors('a', 'b'));
    ASSERT_EQ(f.write("c", 600), SQLITE_OK);
    EXPECT_EQ(d.platter("f")->at(600), 'b');
    EXPECT_EQ(d.cached("f")->at(600), 'c');
}

// Of every unsynced sector, a power loss keeps all, none, or the first half, as drawn.
TEST(SimDisk, APowerLossKeepsLosesOrTearsEachUnsyncedSector) {
    for (auto [keep, torn, expect] : std::vector<std::tuple<double, double, std::string>>{
             {1.0, 0.0, sectors('x', 'y')},
             {0.0, 0.0, sectors('a', 'b')},
             {0.0, 1.0,
              std::string(256, 'x') + std::string(256, 'a') + std::string(256, 'y') +
                  std::string(256, 'b')}}) {
        SimDisk d(1);
        {
            RawFile f(d, "f");
            ASSERT_EQ(f.write(sectors('a', 'b'), 0), SQLITE_OK);
            ASSERT_EQ(f.sync(), SQLITE_OK);
            ASSERT_EQ(f.write(sectors('x', 'y'), 0), SQLITE_OK);
            d.halt();
            Stream rng(7);
            auto r = d.power_loss(rng, {keep, torn});
            EXPECT_EQ(r.kept + r.torn + r.lost, 2u);
            d.boot();
        }
        EXPECT_EQ(*d.cached("f"), expect) << "keep " << keep << " torn " << torn;
        EXPECT_EQ(*d.platter("f"), expect);
    }
}

TEST(SimDisk, AnExtensionNeverSyncedIsLostWithThePower) {
    SimDisk d(1);
    {
        RawFile f(d, "f");
        ASSERT_EQ(f.write(sectors('a', 'b'), 0), SQLITE_OK);
        d.halt();
        Stream rng(7);
        d.power_loss(rng, {0.0, 0.0});
        d.boot();
    }
    EXPECT_EQ(*d.cached("f"), "");
}

// A crash loses the process, not the OS: nothing written is lost; the dead process's files
// change nothing any more, and nothing opens until the disk boots.
TEST(SimDisk, ACrashKeepsTheCacheAndKillsOpenFiles) {
    SimDisk d(1);
    RawFile f(d, "f");
    ASSERT_EQ(f.write(sectors('a', 'b'), 0), SQLITE_OK);
    d.halt();
    EXPECT_NE(f.write("z", 0), SQLITE_OK);
    EXPECT_NE(f.sync(), SQLITE_OK);
    EXPECT_NE(RawFile(d, "g").open_rc(), SQLITE_OK);
    d.boot();
    EXPECT_NE(f.write("z", 0), SQLITE_OK) << "a handle of the dead process came back";
    EXPECT_EQ(*d.cached("f"), sectors('a', 'b'));
    RawFile again(d, "f");
    std::string back(1024, '\0');
    ASSERT_EQ(again.read(back, 0), SQLITE_OK);
    EXPECT_EQ(back, sectors('a', 'b'));
}

// After a failed sync the pages count as clean though they never reached the platter (as
// Linux after an fsync error): a later successful sync does not write them either.
TEST(SimDisk, AFailedSyncLeavesItsWritesOffThePlatterForGood) {
    SimDisk d(1);
    bool fail = true;
    d.set_fault_hook([&](SimDisk::Op op, const std::string&) {
        return op == SimDisk::Op::sync && fail ? SQLITE_IOERR_FSYNC : 0;
    });
    RawFile f(d, "f");
    ASSERT_EQ(f.write(sectors('a', 'b'), 0), SQLITE_OK);
    EXPECT_EQ(f.sync(), SQLITE_IOERR_FSYNC);
    fail = false;
    ASSERT_EQ(f.sync(), SQLITE_OK);
    EXPECT_EQ(*d.platter("f"), std::string(1024, '\0'));
    ASSERT_EQ(f.write("c", 0), SQLITE_OK);
    ASSERT_EQ(f.sync(), SQLITE_OK);
    EXPECT_EQ(d.platter("f")->substr(0, 2), "ca");
}

TEST(SimDisk, AFullDiskRefusesTheWriteWhole) {
    SimDisk d(1);
    d.set_capacity(1000);
    RawFile f(d, "f");
    EXPECT_EQ(f.write(sectors('a', 'b'), 0), SQLITE_FULL);
    EXPECT_EQ(*d.cached("f"), "");
    EXPECT_EQ(f.write(std::string(1000, 'a'), 0), SQLITE_OK);
    EXPECT_EQ(d.used_bytes(), 1000u);
}

// ---- the real store on the disk -------------------------------------------------------------

const std::string hash64(64, 'a');

std::unique_ptr<Store> open_store(SimDisk& d, Synchronous sync) {
    auto r = Store::open("warren.db", sync, Access::read_write, d.vfs_name());
    EXPECT_TRUE(r.is_ok()) << (r.is_ok() ? "" : r.status().message());
    return r.is_ok() ? std::move(r.value()) : nullptr;
}

// The store on the disk with a user, a room and its membership: messages can be added.
std::unique_ptr<Store> seeded_store(SimDisk& d, Synchronous sync) {
    auto s = open_store(d, sync);
    if (s && !s->apply({UserRow{1, "Alice", "$phc", 10}, RoomRow{1, "Gen", "t", false, 1, 11},
                        MemberRow{1, 1, 12}})
                  .is_ok())
        s.reset();
    return s;
}

Status add_message(Store& s, MessageId id) {
    return s.apply({MessageRow{id, 1, 1, "m" + std::to_string(id), 20 + id, 0}});
}

size_t messages(Store& s, MessageId upto) {
    size_t n = 0;
    for (MessageId id = 1; id <= upto; ++id) n += s.message(id).has_value();
    return n;
}

bool integrity_ok(SimDisk& d) {
    sqlite3* db = nullptr;
    sqlite3_open_v2("warren.db", &db, SQLITE_OPEN_READWRITE, d.vfs_name());
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr);
    bool ok = sqlite3_step(st) == SQLITE_ROW &&
              std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))) == "ok";
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ok;
}

// The store runs in WAL mode on the disk; a power loss right after 300 acknowledged commits
// loses none of them with synchronous = full, whatever happens to the unsynced sectors.
TEST(SimDiskStore, SynchronousFullLosesNothingAcknowledgedToAPowerLoss) {
    for (uint64_t seed = 1; seed <= 5; ++seed) {
        SimDisk d(seed);
        auto s = seeded_store(d, Synchronous::full);
        ASSERT_TRUE(s);
        for (MessageId id = 1; id <= 300; ++id) ASSERT_TRUE(add_message(*s, id).is_ok());
        d.halt();
        s.reset();
        Stream rng(seed);
        d.power_loss(rng, {});
        d.boot();
        s = open_store(d, Synchronous::full);
        ASSERT_TRUE(s);
        EXPECT_EQ(messages(*s, 300), 300u) << "seed " << seed;
        s.reset();
        EXPECT_TRUE(integrity_ok(d)) << "seed " << seed;
    }
}

// With synchronous = normal a power loss may take the commits since the last checkpoint,
// a suffix of them, never one before it; a crash of the process alone takes nothing.
TEST(SimDiskStore, SynchronousNormalLosesOnlyASuffixAfterTheLastCheckpoint) {
    bool lost_some = false;
    for (uint64_t seed = 1; seed <= 5; ++seed) {
        SimDisk d(seed);
        MessageId applied = 0, checkpointed = 0;
        d.set_sync_listener([&](const std::string& path) {
            if (path == "warren.db") checkpointed = applied;
        });
        auto s = seeded_store(d, Synchronous::normal);
        ASSERT_TRUE(s);
        // Enough for the WAL to pass its checkpoint size a few times (1000 pages).
        for (MessageId id = 1; id <= 3000; ++id) {
            applied = id;
            ASSERT_TRUE(add_message(*s, id).is_ok());
        }
        ASSERT_GT(checkpointed, 0) << "no checkpoint ran";
        d.halt();
        s.reset();
        d.boot();
        s = open_store(d, Synchronous::normal);
        ASSERT_EQ(messages(*s, 3000), 3000u) << "a process crash lost commits, seed " << seed;
        d.halt();
        s.reset();
        Stream rng(seed);
        d.power_loss(rng, {0.5, 0.2});
        d.boot();
        s = open_store(d, Synchronous::normal);
        ASSERT_TRUE(s);
        size_t n = messages(*s, 3000);
        EXPECT_GE(n, static_cast<size_t>(checkpointed)) << "seed " << seed;
        EXPECT_EQ(messages(*s, static_cast<MessageId>(n)), n) << "not a prefix, seed " << seed;
        lost_some |= n < 3000;
        s.reset();
        EXPECT_TRUE(integrity_ok(d)) << "seed " << seed;
    }
    EXPECT_TRUE(lost_some) << "no power loss took anything: the window is not exercised";
}

// Commits on a full disk fail and change nothing; after space is freed they succeed.
TEST(SimDiskStore, AFullDiskFailsTheCommitAndKeepsTheDatabase) {
    SimDisk d(1);
    auto s = seeded_store(d, Synchronous::full);
    ASSERT_TRUE(s);
    d.set_capacity(d.used_bytes());
    Status st = s->apply({MessageRow{1, 1, 1, std::string(3000, 'x'), 21, 0}});
    EXPECT_FALSE(st.is_ok());
    EXPECT_FALSE(s->message(1).has_value());
    d.set_capacity(0);
    EXPECT_TRUE(add_message(*s, 1).is_ok());
    EXPECT_TRUE(s->message(1).has_value());
}

}  // namespace
}  // namespace warren::sim

namespace warren::sim {
namespace {

// Power lost again and again, at times in the middle of a commit's own writes and syncs: with
// synchronous = full, every commit that returned survives all of them.
TEST(SimDiskStore, RepeatedPowerLossesInsideCommitsLoseNothingThatReturned) {
    for (uint64_t seed = 1; seed <= 20; ++seed) {
        SimDisk d(seed);
        Stream rng(seed);
        auto s = seeded_store(d, Synchronous::full);
        ASSERT_TRUE(s);
        MessageId next = 1, returned = 0;
        for (int round = 0; round < 6; ++round) {
            int n = static_cast<int>(rng.between(1, 400));
            for (int i = 0; i < n; ++i, ++next)
                if (add_message(*s, next).is_ok()) returned = next;
            d.cut_power_after(rng.between(0, 24));
            if (add_message(*s, next).is_ok()) returned = next;
            ++next;
            d.cut_power_after(-1);
            d.halt();
            s.reset();
            d.power_loss(rng, {0.3, 0.4});
            d.boot();
            s = open_store(d, Synchronous::full);
            ASSERT_TRUE(s) << "seed " << seed << " round " << round;
            for (MessageId id = 1; id <= returned; ++id)
                ASSERT_TRUE(s->message(id).has_value())
                    << "seed " << seed << " round " << round << ": message " << id
                    << " returned and is lost";
            // The next process goes on after what survived.
            while (s->message(next - 1).has_value() == false && next - 1 > returned) --next;
        }
        s.reset();
        EXPECT_TRUE(integrity_ok(d)) << "seed " << seed;
    }
}

}  // namespace
}  // namespace warren::sim

namespace warren::sim {
namespace {

// A second connection that closes while the store's is open must not take the WAL with it:
// it would, were it to get the EXCLUSIVE lock that tells a closing connection it is the last
// (and the store's later commits would go to a file no longer on the disk).
TEST(SimDiskStore, AConnectionClosingBesideTheStoreLeavesItsWal) {
    SimDisk d(1);
    auto s = seeded_store(d, Synchronous::full);
    ASSERT_TRUE(s);
    EXPECT_EQ(d.integrity_check("warren.db"), "ok");
    ASSERT_TRUE(add_message(*s, 1).is_ok());
    EXPECT_TRUE(d.cached("warren.db-wal").has_value()) << "the WAL was deleted under the store";
    d.halt();
    s.reset();
    Stream rng(1);
    d.power_loss(rng, {0.0, 0.0});
    d.boot();
    s = open_store(d, Synchronous::full);
    ASSERT_TRUE(s);
    EXPECT_TRUE(s->message(1).has_value());
}

}  // namespace
}  // namespace warren::sim

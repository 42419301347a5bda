// CommitChain: kept where commits are carried out (the driver's storage thread, the
// simulator, the test harness), which applies them one after another in the order the core
// sent them. A commit names the one it builds on (Commit::after): if that one did not land
// (it failed, or was itself not tried), applying this one could store a change whose cause is
// missing, so it is not tried and is reported Status::aborted. The core sends it again after
// the one it builds on, or rolls both back.
#pragma once

#include "core/base.h"
#include "core/outputs.h"

namespace warren {

class CommitChain {
  public:
    // Whether `c` may be applied now (its predecessor landed, or it has none pending).
    bool admits(const Commit& c) const { return c.after == 0 || (c.after == last_ && last_ok_); }
    // What happened to the commit carried out last.
    void landed(BatchId batch, bool ok) {
        last_ = batch;
        last_ok_ = ok;
    }
    // Applies `c` with `apply` if the chain admits it; records and returns the outcome.
    template <class Apply>
    Status carry_out(const Commit& c, Apply&& apply) {
        Status st = admits(c) ? apply() : Status::aborted("a commit it builds on did not land");
        landed(c.batch, st.is_ok());
        return st;
    }

  private:
    BatchId last_ = 0;
    bool last_ok_ = true;
};

}  // namespace warren

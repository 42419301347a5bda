#include "core/chat/records.h"

namespace warren {

namespace {
std::optional<std::string> bad(const char* what) {
    return std::string(what);
}

struct Checker {
    std::optional<std::string> operator()(const UserRow& r) const {
        if (r.id <= 0 || r.name.empty() || r.phc.empty() != r.guest || (r.retired && !r.guest))
            return bad("user row incomplete");
        return std::nullopt;
    }
    std::optional<std::string> operator()(const CertificateRow& r) const {
        if (r.fingerprint.size() != 64 || r.user <= 0) return bad("certificate row malformed");
        return std::nullopt;
    }
    std::optional<std::string> operator()(const CertificateDelete& r) const {
        if (r.fingerprint.size() != 64) return bad("certificate delete malformed");
        return std::nullopt;
    }
    std::optional<std::string> operator()(const GuestRetire& r) const {
        if (r.user <= 0) return bad("guest retire of no user");
        return std::nullopt;
    }
    std::optional<std::string> operator()(const SessionRow& r) const {
        if (r.token_hash.size() != 64 || r.user <= 0) return bad("session row malformed");
        return std::nullopt;
    }
    std::optional<std::string> operator()(const SessionDelete& r) const {
        if (r.token_hash.size() != 64) return bad("session delete malformed");
        return std::nullopt;
    }
    std::optional<std::string> operator()(const RoomRow& r) const {
        if (r.id <= 0 || r.name.empty() || r.owner <= 0) return bad("room row incomplete");
        return std::nullopt;
    }
    std::optional<std::string> operator()(const MemberRow& r) const {
        if (r.room <= 0 || r.user <= 0) return bad("member row incomplete");
        return std::nullopt;
    }
    std::optional<std::string> operator()(const MemberDelete& r) const {
        if (r.room <= 0 || r.user <= 0) return bad("member delete incomplete");
        return std::nullopt;
    }
    std::optional<std::string> operator()(const MessageRow& r) const {
        if (r.id <= 0 || r.author <= 0 || (r.text.empty() != r.deleted) || r.reply_to < 0 ||
            r.reply_to >= r.id || (r.room > 0) == (r.to > 0) || r.room < 0 || r.to < 0)
            return bad("message row malformed");
        return std::nullopt;
    }
    std::optional<std::string> operator()(const MessageEdit& r) const {
        if (r.id <= 0 || r.text.empty() || r.edited_ms <= 0) return bad("edit malformed");
        return std::nullopt;
    }
    std::optional<std::string> operator()(const MessageDelete& r) const {
        if (r.id <= 0) return bad("delete malformed");
        return std::nullopt;
    }
    std::optional<std::string> operator()(const ReactionAdd& r) const {
        if (r.message <= 0 || r.user <= 0 || r.emoji.empty()) return bad("reaction malformed");
        return std::nullopt;
    }
    std::optional<std::string> operator()(const ReactionRemove& r) const {
        if (r.message <= 0 || r.user <= 0 || r.emoji.empty()) return bad("reaction malformed");
        return std::nullopt;
    }
    std::optional<std::string> operator()(const RoomTopic& r) const {
        if (r.room <= 0) return bad("topic of no room");
        return std::nullopt;
    }
    std::optional<std::string> operator()(const InvitationRow& r) const {
        if (r.id <= 0 || r.room <= 0 || r.from <= 0 || r.to <= 0 || r.expires_ms <= r.ts_ms)
            return bad("invitation malformed");
        return std::nullopt;
    }
    std::optional<std::string> operator()(const InvitationClose& r) const {
        if (r.id <= 0) return bad("invitation close malformed");
        return std::nullopt;
    }
    std::optional<std::string> operator()(const BlockRow& r) const {
        if (r.ip.empty() || r.since_ms <= 0 || (r.until_ms != 0 && r.until_ms < r.since_ms))
            return bad("block row malformed");
        return std::nullopt;
    }
    std::optional<std::string> operator()(const SuspensionRow& r) const {
        if (r.user <= 0 || r.since_ms <= 0 || (r.until_ms != 0 && r.until_ms < r.since_ms))
            return bad("suspension row malformed");
        return std::nullopt;
    }
    std::optional<std::string> operator()(const AuditRow& r) const {
        if (r.id <= 0 || r.ts_ms <= 0 || r.actor.empty() || r.action.empty())
            return bad("audit row malformed");
        return std::nullopt;
    }
    std::optional<std::string> operator()(const AuditPrune& r) const {
        if (r.keep_rows <= 0) return bad("audit prune keeps nothing");
        return std::nullopt;
    }
    std::optional<std::string> operator()(const SessionPrune& r) const {
        if (r.before_ms <= 0) return bad("session prune of nothing");
        return std::nullopt;
    }
    std::optional<std::string> operator()(const ReadMarkerRow& r) const {
        if (r.user <= 0 || r.message <= 0 || (r.room > 0) == (r.peer > 0))
            return bad("read marker malformed");
        return std::nullopt;
    }
};
}  // namespace

std::optional<std::string> check_record(const Mutation& m) {
    return std::visit(Checker{}, m);
}

}  // namespace warren

// Legitimate clients: a host that registers first and creates every room the populations
// name, then each [[population]]'s clients, who register (or log back in after a crash or a
// refusal: with their session token, as real clients do), join their rooms and then, after
// each think time, do what the population's mix says: send, read history, ping, list rooms,
// react, edit or delete their own messages, message a friend directly, search, mark read,
// leave and rejoin, log out and in, invite friends to a private room of their own (and
// answer the invitations they get), read threads and member lists, set a topic. Each client
// draws from its own stream ("client/<population>/<i>"). What they are told feeds the safety
// checkers: acknowledged messages and their changes, refused and in-doubt texts, the order of
// their replies, every MESSAGE event (its room and id) they receive and the messages they
// are owed (delivery.complete).
#pragma once

#include <array>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "sim/engine/world.h"

namespace warren::sim {

// An IPv4 or IPv6 address or network, parsed once: where clients and attackers come from.
struct AddressRange {
    std::array<uint8_t, 16> net{};  // the network's address (IPv4: the first 4 bytes)
    int bits = 32;                  // its prefix length (an address alone: all of them)
    bool v6 = false;
    static std::optional<AddressRange> parse(const std::string& ip_or_cidr);
    // How many host addresses it has (IPv4 networks: without their own and broadcast
    // addresses; IPv6: without the all-zero one; an IPv6 network wider than a /64: how many
    // /64s, each host having one of its own), at most 2^62.
    uint64_t hosts() const;
    // Its first host address plus `i`, as text; "" if `i` is not below hosts().
    std::string nth(uint64_t i) const;
    // One of its host addresses, drawn from `rng`.
    std::string any(Stream& rng) const { return nth(rng.below(hosts())); }
};

struct Legit;
// For each room, the clients with a view of it and the view's index in their `asked`: who
// may be owed an acknowledged message, without a look at every client's views.
using Audiences = std::unordered_map<std::string, std::vector<std::pair<Legit*, size_t>>>;

struct Legit {
    std::string population;
    int index = 0;  // -1: the host
    std::string name, password, ip;
    std::optional<AddressRange> roam;  // PopulationSpec::roam, parsed
    std::vector<std::string> rooms;
    const PopulationSpec* spec = nullptr;
    Stream* rng = nullptr;  // "client/<population>/<index>"
    ConnId conn = 0;
    int64_t next_id = 1;
    struct Pending {
        int64_t sent_ms = 0;
        std::string op;
        std::string text;        // SEND_MESSAGE, DIRECT_MESSAGE, EDIT_MESSAGE
        std::string room;        // JOIN_ROOM, CREATE_ROOM, LEAVE_ROOM
        int64_t message_id = 0;  // EDIT_MESSAGE, DELETE_MESSAGE: the message
        size_t change = 0;       // EDIT_MESSAGE, DELETE_MESSAGE, REACT: its index in the
                                 // message's changes or reactions (REACT: +1, 0 untracked)
        // ACCEPT_INVITATION: when the invitation expires (its expires_ts), and the least wall
        // time the core can have had when it was asked (time.invitations_expire).
        int64_t expires_ms = 0, wall_floor_ms = 0;
    };
    std::map<int64_t, Pending> pending;
    bool register_sent = false;
    std::string token;  // the session to resume after a reconnect
    bool ready = false;
    bool looping = false;
    size_t joined = 0;  // rooms joined on this connection
    // Rooms it ever asked to join, create or enter by an invitation: their messages may reach
    // it. A few each, looked up for every message it receives.
    struct RoomView {
        std::string room;
        int64_t last = 0;  // the last MESSAGE id received on this connection
        // Since when this connection must receive every message of the room: its join was
        // acknowledged, no LEAVE or LOGOUT was sent since (-1: not now). A message its author
        // sent after this and was told is stored is owed to this connection.
        int64_t flowing_ms = -1;
        bool in = false;  // joined on this connection and not left since (events may wait
                          // for a LOGIN)
        std::deque<int64_t> recent;  // the latest ids received here, ascending (a window)
        std::vector<int64_t> owed;   // acknowledged to their authors, not received yet
    };
    std::vector<RoomView> asked;
    Audiences* audiences = nullptr;  // the world's, shared by every client
    bool logged_out = false;         // between a LOGOUT and the LOGIN that follows it
    uint64_t owed_total = 0;         // messages owed to it (delivery.complete), received or not
    bool den = false;                // created its own private room, "<name>-den" (mix key invite)
    std::vector<int64_t> own;        // its latest acknowledged messages not deleted (at most 32)
};

// The client drops its connection and dials again at `at_ms`, resuming its session: with a
// FIN the server sees, or (`silently`) vanishing without one, so that the server notices only
// through its own timeouts (a half-open connection).
void redial(World& w, Legit& c, int64_t at_ms, bool silently);

// Adds the host and every population's clients to `legit` and schedules their arrivals.
void start_populations(World& w, std::vector<std::unique_ptr<Legit>>& legit);

// An IPv4 address, host order; nullopt if `ip` is not one.
std::optional<uint32_t> ipv4(const std::string& ip);

// An IPv4 network written as an address or a CIDR, parsed once.
struct Cidr {
    uint32_t net = 0, mask = 0;  // host order
    int bits = 32;
    static std::optional<Cidr> parse(const std::string& ip_or_cidr);
    bool contains(uint32_t ip) const { return (ip & mask) == net; }
};

// The first address of a CIDR's hosts plus `i`, or the address itself if it is no CIDR
// (IPv4 or IPv6). Empty if `i` does not fit or `ip_or_cidr` is no address.
std::string address_in(const std::string& ip_or_cidr, int64_t i);

}  // namespace warren::sim

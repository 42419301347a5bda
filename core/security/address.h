// Addresses: parsing IPv4/IPv6 text, the key security state is tracked under, and CIDR
// allowlists. Pure functions; no sockets.
//
// The key of an IPv4 address is the address itself ("203.0.113.7"); an IPv4-mapped IPv6
// address counts as its IPv4 address; any other IPv6 address is keyed by its /64
// ("2001:db8:0:1::/64"), since one host usually owns a whole /64.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace warren {

struct IpAddress {
    std::array<uint8_t, 16> bytes{};  // IPv4 in the first 4 bytes
    bool v4 = false;
};

std::optional<IpAddress> parse_ip(std::string_view text);

// The security key of a peer address; text that is not an address is its own key.
std::string address_key(std::string_view peer_ip);
// The key of the /`bits` network holding an IPv6 address or /64 key ("2001:db8:1::/48" for
// bits = 48); "" for IPv4 and for text that is not an address. bits is 16 to 64.
std::string prefix_key(std::string_view ip_or_key, uint32_t bits);

// A set of CIDR ranges ("10.0.0.0/8", "::1/128", or a bare address).
class Cidrs {
  public:
    // Returns false (adding nothing) when `cidr` is malformed.
    bool add(std::string_view cidr);
    // `ip` is an address or an address key (address_key(): an IPv6 key stands for its /64).
    bool contains(std::string_view ip) const;
    bool empty() const { return ranges_.empty(); }

  private:
    struct Range {
        IpAddress base;
        uint32_t prefix = 0;
    };
    std::vector<Range> ranges_;
};

}  // namespace warren

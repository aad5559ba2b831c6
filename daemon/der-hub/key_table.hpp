#pragma once
/// CURVE on the agent endpoint (docs/security.md): which agent key may speak
/// for which asset, the answers of the hub's ZAP handler, and the check every
/// agent message passes. Pure logic, no sockets: hub.cpp owns the ZAP socket.
/// Owned by the event loop thread (the ZAP socket is polled by the loop).

#include "der/assets_config.hpp"
#include "der/util/uuid.hpp"

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace der::hub {

/// The ZAP domain of the agent ROUTER; requests for other domains (the NULL
/// sockets: control, stream) are not the table's business.
inline constexpr std::string_view k_zap_domain = "der-agents";
/// The ZAP metadata property carrying the Z85 key a connection authenticated with.
inline constexpr const char* k_key_property = "X-Agent-Key";

class KeyTable {
public:
    /// Every asset's agent_public_key (Z85) -> its asset id.
    void rebuild(const config::Fleet& fleet);
    [[nodiscard]] std::optional<Uuid> asset_of(std::string_view z85_key) const;
    [[nodiscard]] std::size_t size() const { return m_by_key.size(); }

private:
    /// Looked up with a string_view on every agent message: no allocation.
    struct KeyHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view key) const noexcept { return std::hash<std::string_view>{}(key); }
    };
    std::unordered_map<std::string, Uuid, KeyHash, std::equal_to<>> m_by_key;
};

/// A ZAP reply (RFC 27) for the frames of one request, after the REP envelope.
struct ZapReply {
    std::string request_id;
    std::string status_code;  ///< "200" admitted, "400" refused, "500" bad request
    std::string status_text;
    std::string user_id;   ///< the asset id (canonical text) when admitted
    std::string metadata;  ///< ZMTP metadata: X-Agent-Key = the Z85 key
    std::string z85_key;   ///< the client's key in Z85, for logs (empty if none)
};

/// Answers one ZAP request. CURVE on the agents domain: 200 with user id =
/// asset id for a key of the table, 400 otherwise. Any other domain is
/// admitted as is (200, no user id): the NULL sockets are not the agents'.
/// Malformed requests get 500.
ZapReply answer_zap(const KeyTable& keys, const std::vector<std::string>& frames);

/// The ZMTP metadata encoding of one property (name length byte, name,
/// 4-byte big-endian value length, value).
std::string zap_metadata(std::string_view name, std::string_view value);

enum class PeerCheck {
    ok,
    no_identity,  ///< no User-Id or key on the message (not a CURVE connection of ours)
    key_removed,  ///< its key no longer belongs to that asset (SIGHUP)
    wrong_asset,  ///< the message speaks for another asset than its key's
};
std::string_view to_string(PeerCheck check) noexcept;

/// The check every agent message passes when CURVE is on: `user_id` and
/// `key` are the message's "User-Id" and X-Agent-Key (nullptr when absent),
/// `speaks_for` the asset the message names (nil for an ack: it names none).
PeerCheck check_peer(const KeyTable& keys, const char* user_id, const char* key,
                     const std::optional<Uuid>& speaks_for);

}  // namespace der::hub

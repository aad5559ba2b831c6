// The hub's ZAP answers and per-message identity check.
//
// Implementation details
// - ZAP request (RFC 27, after the REP envelope): [version "1.0"][request id]
//   [domain][address][routing id][mechanism][credentials...]; for CURVE one
//   credential frame, the client's 32-byte public key.
// - ZAP reply: [version][request id][status code][status text][user id]
//   [metadata]. libzmq attaches the user id ("User-Id") and the metadata
//   properties to every message of the connection (zmq_msg_gets).
// - libzmq authenticates once, at the handshake; a key removed from
//   assets.yaml later is caught by check_peer on each message, which looks
//   the connection's key up in the current table.
#include "key_table.hpp"

#include <zmq.h>

#include <array>

namespace der::hub {

void KeyTable::rebuild(const config::Fleet& fleet) {
    m_by_key.clear();
    for (const auto& site : fleet.sites)
        for (const auto& asset : site.assets)
            if (!asset.agent_public_key.empty()) m_by_key.emplace(asset.agent_public_key, asset.id);
}

std::optional<Uuid> KeyTable::asset_of(std::string_view z85_key) const {
    const auto it = m_by_key.find(z85_key);
    if (it == m_by_key.end()) return std::nullopt;
    return it->second;
}

std::string zap_metadata(std::string_view name, std::string_view value) {
    std::string out;
    out.push_back(static_cast<char>(name.size()));
    out += name;
    const auto n = static_cast<std::uint32_t>(value.size());
    for (const int shift : {24, 16, 8, 0}) out.push_back(static_cast<char>((n >> shift) & 0xff));
    out += value;
    return out;
}

ZapReply answer_zap(const KeyTable& keys, const std::vector<std::string>& frames) {
    ZapReply reply;
    if (frames.size() >= 2) reply.request_id = frames[1];
    if (frames.size() < 6 || frames[0] != "1.0") {
        reply.status_code = "500";
        reply.status_text = "malformed ZAP request";
        return reply;
    }
    const std::string& domain = frames[2];
    const std::string& mechanism = frames[5];
    if (domain != k_zap_domain) {
        reply.status_code = "200";
        reply.status_text = "OK";
        return reply;
    }
    if (mechanism != "CURVE" || frames.size() != 7 || frames[6].size() != 32) {
        reply.status_code = "400";
        reply.status_text = "the agent endpoint takes CURVE only";
        return reply;
    }
    std::array<char, 41> z85{};
    if (zmq_z85_encode(z85.data(), reinterpret_cast<const std::uint8_t*>(frames[6].data()), 32) == nullptr) {
        reply.status_code = "500";
        reply.status_text = "cannot encode the key";
        return reply;
    }
    reply.z85_key = z85.data();
    const auto asset = keys.asset_of(reply.z85_key);
    if (!asset) {
        reply.status_code = "400";
        reply.status_text = "unknown agent key";
        return reply;
    }
    reply.status_code = "200";
    reply.status_text = "OK";
    reply.user_id = asset->to_string();
    reply.metadata = zap_metadata(k_key_property, reply.z85_key);
    return reply;
}

std::string_view to_string(PeerCheck check) noexcept {
    switch (check) {
    case PeerCheck::ok: return "ok";
    case PeerCheck::no_identity: return "no CURVE identity on the connection";
    case PeerCheck::key_removed: return "its key is no longer in the configuration";
    case PeerCheck::wrong_asset: return "it speaks for another asset than its key's";
    }
    return "?";
}

PeerCheck check_peer(const KeyTable& keys, const char* user_id, const char* key,
                     const std::optional<Uuid>& speaks_for) {
    if (user_id == nullptr || key == nullptr || *user_id == '\0') return PeerCheck::no_identity;
    const auto authenticated = Uuid::parse(user_id);
    if (!authenticated) return PeerCheck::no_identity;
    const auto current = keys.asset_of(key);
    if (!current || *current != *authenticated) return PeerCheck::key_removed;
    if (speaks_for && *speaks_for != *authenticated) return PeerCheck::wrong_asset;
    return PeerCheck::ok;
}

}  // namespace der::hub

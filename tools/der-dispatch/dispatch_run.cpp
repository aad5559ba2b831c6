#include "dispatch_run.hpp"

#include "cli.hpp"
#include "control_client.hpp"
#include "output.hpp"

#include "der/util/log.hpp"
#include "der/util/time.hpp"
#include "der/wire_codec.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>
#include <map>

namespace der::dispatch {

namespace {

using Json = nlohmann::ordered_json;  // result fields in the documented order

struct Pending {
    const cli::ScheduledDispatch* item = nullptr;
    std::int64_t sent_mono_ms = 0;
    std::optional<Uuid> dispatch_id;
    std::optional<DispatchState> state;
};

/// Whether a dispatch that ended in `state` counts as done (exit 0).
bool succeeded(DispatchState state, Wait wait) {
    if (wait == Wait::yes) return state == DispatchState::applied;
    switch (state) {
    case DispatchState::scheduled:
    case DispatchState::queued:
    case DispatchState::sent:
    case DispatchState::applied: return true;
    default: return false;
    }
}

class Runner {
public:
    Runner(const RunSettings& settings, const std::atomic<bool>& stop)
        : m_settings(settings), m_stop(stop), m_client(settings.control, &stop) {
        m_client.set_token(settings.token);
    }

    int run(const std::vector<cli::ScheduledDispatch>& dispatches) {
        std::size_t next = 0;
        while (true) {
            if (m_stop.load()) return cli::interrupted;
            // Send every line that is due, in input order.
            while (next < dispatches.size() && (m_settings.timing == Timing::hub || !dispatches[next].at_ms ||
                                                *dispatches[next].at_ms <= now_ms())) {
                send(dispatches[next++]);
            }
            if (next == dispatches.size() && m_pending.empty()) return m_status;

            // Sleep until the next line is due or the earliest deadline passes.
            std::int64_t wait_ms = std::numeric_limits<std::int64_t>::max();
            if (next < dispatches.size()) wait_ms = *dispatches[next].at_ms - now_ms();
            for (const auto& [id, p] : m_pending)
                wait_ms = std::min(wait_ms, p.sent_mono_ms + m_settings.timeout_ms - mono_ms());
            if (auto reply = m_client.receive(std::max<std::int64_t>(wait_ms, 0))) handle(*reply);

            if (const int status = expire(); status != cli::ok) return status;
        }
    }

private:
    void send(const cli::ScheduledDispatch& item) {
        wire::DispatchRequest request;
        request.request_id = cli::new_request_id();
        request.asset = item.asset;
        request.site = item.site;
        request.mw = item.mw;
        request.duration_s = item.duration_s;
        request.wait = m_settings.wait == Wait::yes;
        request.reason = item.reason;
        request.requested_by = m_settings.requested_by;
        if (m_settings.timing == Timing::hub && item.at_ms && *item.at_ms > now_ms()) request.start_at = item.at_ms;
        log::debug("line {}: dispatch {}{} {} MW (request {})", item.line, item.site.empty() ? "" : "site ",
                   item.site.empty() ? item.asset : item.site, item.mw, request.request_id);
        m_pending[request.request_id] = Pending{&item, mono_ms(), std::nullopt, std::nullopt};
        m_client.send(request);
    }

    void handle(const wire::ControlMessage& reply) {
        const auto it = m_pending.find(cli::request_id_of(reply));
        if (it == m_pending.end()) return;  // not ours (or already answered)
        Pending& p = it->second;
        if (const auto* error = std::get_if<wire::ErrorReply>(&reply)) {
            finish(p, fmt::format("{}: {}", error->code, error->message), cli::refused);
            m_pending.erase(it);
            return;
        }
        const auto* result = std::get_if<wire::DispatchResult>(&reply);
        if (result == nullptr) {
            log::warn("line {}: unexpected '{}' reply to a dispatch", p.item->line, wire::type_name(reply));
            return;
        }
        if (result->dispatch_id) p.dispatch_id = result->dispatch_id;
        if (result->state) p.state = result->state;
        if (!result->final) return;
        const bool ok = result->error.empty() && p.state && succeeded(*p.state, m_settings.wait);
        std::string error = result->error;
        if (!ok && error.empty())
            error = p.state ? fmt::format("dispatch ended {}", to_string(*p.state)) : "no state in the reply";
        finish(p, error, ok ? cli::ok : cli::refused);
        m_pending.erase(it);
    }

    /// Ends the run when a pending dispatch passed its deadline: 69 or 75.
    int expire() {
        const std::int64_t now = mono_ms();
        const bool due = std::any_of(m_pending.begin(), m_pending.end(), [&](const auto& entry) {
            return now >= entry.second.sent_mono_ms + m_settings.timeout_ms;
        });
        if (!due) return cli::ok;
        std::vector<Pending*> order;
        for (auto& [id, p] : m_pending) order.push_back(&p);
        std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->item->line < b->item->line; });
        // A dispatch the hub answered (queued, scheduled, sent) is live there:
        // say so, so that a script does not send it again.
        const bool unanswered = std::any_of(order.begin(), order.end(), [](auto* p) { return !p->state; });
        const Error error = unanswered ? m_client.no_answer("dispatch")
                                       : Error{Errc::timeout, "a dispatch reached no final state within --timeout; "
                                                              "it stays active at the hub"};
        for (auto* p : order) finish(*p, p->state ? still_active(*p) : error.message, cli::ok);
        log::error("{}", error.message);
        return exit_code(error.code);
    }

    /// The error of a dispatch the hub took but that was not final in time.
    std::string still_active(const Pending& p) const {
        const std::string id = p.dispatch_id ? p.dispatch_id->to_string() : std::string("ID");
        return fmt::format("still {} after --timeout {} s: the dispatch stays active at the hub "
                           "(der-dispatch --cancel {} to withdraw it)",
                           to_string(*p.state), static_cast<double>(m_settings.timeout_ms) / 1000.0, id);
    }

    void finish(const Pending& p, const std::string& error, int status) {
        if (status != cli::ok) m_status = status;
        Json line = Json::object();
        if (m_settings.line_numbers == LineNumbers::yes) line["line"] = p.item->line;
        if (p.item->site.empty()) {
            line["asset"] = p.item->asset;
        } else {
            line["asset"] = nullptr;
            line["site"] = p.item->site;
        }
        line["dispatch_id"] = p.dispatch_id ? Json(p.dispatch_id->to_string()) : Json(nullptr);
        line["state"] = p.state ? Json(std::string(to_string(*p.state))) : Json(nullptr);
        line["latency_ms"] = mono_ms() - p.sent_mono_ms;
        line["error"] = error.empty() ? Json(nullptr) : Json(error);
        // The dispatches matter more than their report: a closed stdout does not stop the run.
        if (!m_stdout_closed && cli::write_line(line.dump()) == cli::Written::closed) m_stdout_closed = true;
    }

    const RunSettings& m_settings;
    const std::atomic<bool>& m_stop;
    cli::ControlClient m_client;
    std::map<std::string, Pending> m_pending;  ///< by request_id
    int m_status = cli::ok;
    bool m_stdout_closed = false;
};

}  // namespace

int run_dispatches(const std::vector<cli::ScheduledDispatch>& dispatches, const RunSettings& settings,
                   const std::atomic<bool>& stop) {
    Runner runner(settings, stop);
    return runner.run(dispatches);
}

namespace {

/// Prints `line` (a closed stdout is not an error: the action was taken).
void print(const Json& line) { (void)cli::write_line(line.dump()); }

/// Sends `request` (with a fresh request_id and the audit fields) and
/// returns its reply of type Reply, setting `line`'s latency_ms. On failure
/// prints `line` with the error and throws ExitError with the matching status.
template <class Reply, class Request>
Reply ask(const RunSettings& settings, const std::atomic<bool>& stop, Request request, const std::string& reason,
          Json& line) {
    request.request_id = cli::new_request_id();
    request.reason = reason;
    request.requested_by = settings.requested_by;
    const std::int64_t started = mono_ms();
    cli::ControlClient client(settings.control, &stop);
    client.set_token(settings.token);
    auto reply = client.request(request, settings.timeout_ms);
    if (!reply) {
        if (stop.load()) throw cli::ExitError(cli::interrupted, "interrupted");
        line["latency_ms"] = mono_ms() - started;  // as a dispatch's line: to the answer, or to giving up
        line["error"] = reply.error().message;
        print(line);
        throw cli::ExitError(exit_code(reply.error().code), reply.error().message);
    }
    line["latency_ms"] = mono_ms() - started;
    const auto* result = std::get_if<Reply>(&*reply);
    if (result == nullptr)
        throw cli::ExitError(cli::software, fmt::format("unexpected '{}' reply", wire::type_name(*reply)));
    return *result;
}

}  // namespace

int cancel_dispatch(const Uuid& dispatch_id, const std::string& reason, const RunSettings& settings,
                    const std::atomic<bool>& stop) {
    Json line = {{"dispatch_id", dispatch_id.to_string()}, {"state", nullptr}, {"latency_ms", nullptr},
                 {"error", nullptr}};
    wire::CancelRequest request;
    request.dispatch_id = dispatch_id;
    const auto result = ask<wire::DispatchResult>(settings, stop, request, reason, line);
    if (result.state) line["state"] = std::string(to_string(*result.state));
    const bool cancelled = result.state == DispatchState::cancelled;
    // On success the reply's error is the dispatch's stored reason ("cancelled
    // by ..."): not an error, and `error` is null on success.
    if (!cancelled) {
        line["error"] = result.error.empty() ? fmt::format("dispatch is {}, not cancelled",
                                                           result.state ? to_string(*result.state) : "unknown")
                                             : result.error;
    }
    print(line);
    return cancelled ? cli::ok : cli::refused;
}

int stop_assets(const std::string& site, const std::string& reason, const RunSettings& settings,
                const std::atomic<bool>& stop) {
    Json line = {{"site", site.empty() ? Json(nullptr) : Json(site)},
                 {"assets", nullptr},
                 {"cancelled", nullptr},
                 {"latency_ms", nullptr},
                 {"error", nullptr}};
    wire::StopRequest request;
    request.site = site;
    const auto result = ask<wire::StopResult>(settings, stop, request, reason, line);
    line["assets"] = result.assets;
    line["cancelled"] = result.cancelled;
    print(line);
    return cli::ok;
}

}  // namespace der::dispatch

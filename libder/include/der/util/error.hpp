#pragma once
/// Expected failures of libder: every fallible operation on outside input
/// (bytes off a socket, a YAML file, a query string, a database that is down)
/// returns `der::Result<T>`; it never throws on hostile input.

#include <expected>
#include <string>
#include <string_view>

namespace der {

/// Broad classes of failure; each maps to one sysexits code at a process edge.
enum class Errc {
    invalid_argument,  ///< bad user input (flag, query, body field)      -> 64/65
    decode,            ///< a frame or document that does not decode     -> 65
    config,            ///< a configuration file that does not validate  -> 78
    not_found,         ///< unknown asset, dispatch, file                -> 66/404
    unavailable,       ///< peer or database unreachable                 -> 69
    timeout,           ///< reached but no answer in time                -> 75
    io,                ///< read/write failure                           -> 74
    refused,           ///< a well-formed request the other side refused -> 1
    internal,          ///< a bug                                        -> 70
};

std::string_view to_string(Errc code) noexcept;

struct Error {
    Errc code = Errc::internal;
    std::string message;

    friend bool operator==(const Error&, const Error&) = default;
};

template <class T>
using Result = std::expected<T, Error>;

/// `return der::fail(Errc::decode, "missing field 'seq'");`
inline std::unexpected<Error> fail(Errc code, std::string message) {
    return std::unexpected<Error>(Error{code, std::move(message)});
}

/// The sysexits code a program exits with when this error ends it.
int exit_code(Errc code) noexcept;

}  // namespace der

#pragma once
/// The agent's view of its device: the libder adapter interface
/// (der/adapters/adapter.hpp, docs/adapters.md). Kept so agent code and
/// tests can say der::agent::Adapter.

#include "der/adapters/adapter.hpp"
#include "der/adapters/sim_adapter.hpp"

namespace der::agent {

using adapters::Adapter;
using adapters::ApplyResult;
using adapters::DeviceState;
using adapters::SimAdapter;

}  // namespace der::agent

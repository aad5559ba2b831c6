#include "mailbox.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <system_error>

namespace der::hub {

Mailbox::Mailbox() {
    m_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (m_fd < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

Mailbox::~Mailbox() {
    if (m_fd >= 0) ::close(m_fd);
}

bool Mailbox::post(std::function<void()> task) {
    {
        const std::lock_guard lock(m_mutex);
        if (m_closed) return false;
        m_tasks.push_back(std::move(task));
    }
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(m_fd, &one, sizeof one);  // EAGAIN: counter saturated, still readable
    return true;
}

std::size_t Mailbox::run_pending() {
    std::uint64_t counter = 0;
    [[maybe_unused]] const auto n = ::read(m_fd, &counter, sizeof counter);
    std::deque<std::function<void()>> tasks;
    {
        const std::lock_guard lock(m_mutex);
        tasks.swap(m_tasks);
    }
    for (auto& task : tasks) task();
    return tasks.size();
}

void Mailbox::close() {
    std::deque<std::function<void()>> dropped;
    const std::lock_guard lock(m_mutex);
    m_closed = true;
    dropped.swap(m_tasks);
}

}  // namespace der::hub

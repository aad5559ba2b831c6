#pragma once
/// Work handed to the event loop by other threads (REST workers): a queue of
/// closures plus an eventfd the loop polls. The loop runs each closure on its
/// own thread, so fleet state is never touched elsewhere (the actor habit).

#include <deque>
#include <functional>
#include <mutex>

namespace der::hub {

class Mailbox {
public:
    Mailbox();
    ~Mailbox();
    Mailbox(const Mailbox&) = delete;
    Mailbox& operator=(const Mailbox&) = delete;

    /// Any thread. Returns false once the mailbox is closed.
    bool post(std::function<void()> task);
    /// Loop thread: runs every queued task; returns how many ran.
    std::size_t run_pending();
    /// Loop thread, at shutdown: refuse further posts and drop what is queued.
    void close();
    /// The fd to poll for readability.
    [[nodiscard]] int fd() const { return m_fd; }

private:
    int m_fd = -1;
    std::mutex m_mutex;
    std::deque<std::function<void()>> m_tasks;
    bool m_closed = false;
};

}  // namespace der::hub

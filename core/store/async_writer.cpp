// AsyncWriter: bounded producer/consumer queue in front of a Writer owned by one thread. See
// async_writer.h.
#include "core/store/async_writer.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <variant>

namespace attnscope::store {

std::size_t PromptRecord::nbytes() const {
    std::size_t n = 0;
    for (const auto& h : hooks) n += h.data.nbytes();
    for (const auto& m : metrics) n += m.data.nbytes();
    return n;
}

namespace {

using Task = std::variant<PromptRecord, MetricArray>;

std::size_t task_bytes(const Task& t) {
    if (const auto* r = std::get_if<PromptRecord>(&t)) return r->nbytes();
    return std::get<MetricArray>(t).data.nbytes();
}

}  // namespace

struct AsyncWriter::State {
    AsyncOptions limits;
    std::mutex mutex;
    std::condition_variable cv_producer;  // space freed, or the writer failed / finished
    std::condition_variable cv_consumer;  // work queued, or close / abandon requested
    std::deque<Task> queue;
    std::size_t queued_bytes = 0;
    bool closing = false;      // drain, then close cleanly
    bool abandoning = false;   // drop the queue, then abandon
    bool finished = false;     // the thread left its loop
    std::exception_ptr error;  // first error of the writer thread
    std::atomic<bool> failed{false};
    std::atomic<std::int64_t> done{0};
    std::thread thread;
    bool joined = false;

    void run(std::unique_ptr<Writer> writer);
    void fail(std::exception_ptr e);
    void join() {
        if (thread.joinable()) thread.join();
        joined = true;
    }
};

void AsyncWriter::State::fail(std::exception_ptr e) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!error) error = e;
    failed = true;
    queue.clear();
    queued_bytes = 0;
    cv_producer.notify_all();
}

void AsyncWriter::State::run(std::unique_ptr<Writer> writer) {
    bool prompt_open = false;
    std::int64_t open_id = -1;
    try {
        while (true) {
            std::optional<Task> task;
            {
                std::unique_lock<std::mutex> lock(mutex);
                cv_consumer.wait(lock, [&] { return !queue.empty() || closing || abandoning; });
                if (abandoning) break;
                if (queue.empty()) {  // closing and drained
                    lock.unlock();
                    if (prompt_open)
                        throw std::logic_error("store::AsyncWriter::close: prompt " +
                                               std::to_string(open_id) +
                                               " was pushed with last_part = false and never "
                                               "finished");
                    writer->close();
                    break;
                }
                task = std::move(queue.front());
                queue.pop_front();
            }
            const std::size_t bytes = task_bytes(*task);
            if (auto* rec = std::get_if<PromptRecord>(&*task)) {
                if (!prompt_open) {
                    writer->begin_prompt(rec->prompt);
                    prompt_open = true;
                    open_id = rec->prompt.id;
                } else if (rec->prompt.id != open_id) {
                    throw std::logic_error("store::AsyncWriter: record for prompt " +
                                           std::to_string(rec->prompt.id) + " while prompt " +
                                           std::to_string(open_id) +
                                           " is unfinished (last_part = false)");
                }
                for (const auto& h : rec->hooks)
                    writer->write_hook(h.hook, h.data.ref(), h.options);
                for (const auto& m : rec->metrics)
                    writer->write_metric(m.name, m.data.ref(), m.info);
                if (rec->last_part) {
                    writer->end_prompt();
                    prompt_open = false;
                    done = writer->prompts_done();
                }
            } else {
                const auto& m = std::get<MetricArray>(*task);
                if (prompt_open)
                    throw std::logic_error(
                        "store::AsyncWriter: run metric pushed inside a "
                        "prompt split over records");
                writer->write_run_metric(m.name, m.data.ref(), m.info);
            }
            {
                std::lock_guard<std::mutex> lock(mutex);
                queued_bytes -= std::min(queued_bytes, bytes);
            }
            cv_producer.notify_all();
        }
    } catch (...) {
        fail(std::current_exception());
    }
    writer->abandon();  // no-op after a clean close
    writer.reset();     // HDF5 objects are released on this thread
    std::lock_guard<std::mutex> lock(mutex);
    finished = true;
    cv_producer.notify_all();
}

AsyncWriter::AsyncWriter(const std::filesystem::path& path, const ModelInfo& model,
                         const RunInfo& run, const WriterOptions& options,
                         const AsyncOptions& async)
    : state_(std::make_shared<State>()) {
    state_->limits = async;
    if (state_->limits.max_records == 0) state_->limits.max_records = 1;
    std::promise<void> opened;
    std::future<void> opened_future = opened.get_future();
    State* s = state_.get();
    s->thread = std::thread([s, path, model, run, options, opened = std::move(opened)]() mutable {
        std::unique_ptr<Writer> writer;
        try {
            writer = std::make_unique<Writer>(path, model, run, options);
        } catch (...) {
            opened.set_exception(std::current_exception());
            return;
        }
        opened.set_value();
        s->run(std::move(writer));
    });
    try {
        opened_future.get();
    } catch (...) {
        s->join();
        throw;
    }
}

AsyncWriter::~AsyncWriter() noexcept { abandon(); }

void AsyncWriter::push(PromptRecord record) {
    State& s = *state_;
    const std::size_t bytes = record.nbytes();
    std::unique_lock<std::mutex> lock(s.mutex);
    if (s.closing || s.abandoning || s.joined)
        throw std::logic_error("store::AsyncWriter::push after close or abandon");
    s.cv_producer.wait(lock, [&] {
        if (s.error || s.finished) return true;
        if (s.queue.empty()) return true;
        return s.queue.size() < s.limits.max_records &&
               s.queued_bytes + bytes <= s.limits.max_bytes;
    });
    if (s.error) std::rethrow_exception(s.error);
    if (s.finished) throw std::logic_error("store::AsyncWriter::push: the writer has stopped");
    s.queued_bytes += bytes;
    s.queue.emplace_back(std::move(record));
    s.cv_consumer.notify_one();
}

void AsyncWriter::push_run_metric(MetricArray metric) {
    State& s = *state_;
    const std::size_t bytes = metric.data.nbytes();
    std::unique_lock<std::mutex> lock(s.mutex);
    if (s.closing || s.abandoning || s.joined)
        throw std::logic_error("store::AsyncWriter::push_run_metric after close or abandon");
    s.cv_producer.wait(lock, [&] {
        return s.error || s.finished || s.queue.empty() ||
               (s.queue.size() < s.limits.max_records &&
                s.queued_bytes + bytes <= s.limits.max_bytes);
    });
    if (s.error) std::rethrow_exception(s.error);
    if (s.finished) throw std::logic_error("store::AsyncWriter: the writer has stopped");
    s.queued_bytes += bytes;
    s.queue.emplace_back(std::move(metric));
    s.cv_consumer.notify_one();
}

void AsyncWriter::close() {
    State& s = *state_;
    {
        std::lock_guard<std::mutex> lock(s.mutex);
        if (s.joined) {
            if (s.error) std::rethrow_exception(s.error);
            return;
        }
        s.closing = true;
    }
    s.cv_consumer.notify_all();
    s.join();
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.error) std::rethrow_exception(s.error);
}

void AsyncWriter::abandon() noexcept {
    if (!state_) return;
    State& s = *state_;
    {
        std::lock_guard<std::mutex> lock(s.mutex);
        if (s.joined) return;
        s.abandoning = true;
        s.queue.clear();
        s.queued_bytes = 0;
    }
    s.cv_consumer.notify_all();
    s.join();
}

std::int64_t AsyncWriter::prompts_done() const noexcept { return state_->done.load(); }
bool AsyncWriter::failed() const noexcept { return state_->failed.load(); }

}  // namespace attnscope::store

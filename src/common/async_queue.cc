#include "common/async_queue.h"

#include <thread>

namespace lbkit {

namespace {

using Done = std::function<void(bool)>;

class Queue {
 public:
  Queue() {
    std::thread([this] {
      void* tag;
      bool ok;
      while (cq_.Next(&tag, &ok)) {
        auto* done = static_cast<Done*>(tag);
        (*done)(ok);
        delete done;
      }
    }).detach();
  }
  grpc::CompletionQueue* cq() { return &cq_; }

 private:
  grpc::CompletionQueue cq_;
};

}  // namespace

grpc::CompletionQueue* AsyncQueue() {
  static Queue* queue = new Queue();  // never destroyed: see the header
  return queue->cq();
}

void* OnDone(std::function<void(bool ok)> done) { return new Done(std::move(done)); }

}  // namespace lbkit

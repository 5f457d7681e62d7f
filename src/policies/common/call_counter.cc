#include "policies/common/call_counter.h"

#include <cstddef>
#include <new>

namespace lbkit::policies::counting {

namespace {

// Empties this thread's free lists when it exits.
struct FreeListsExit {
  ~FreeListsExit() {
    FreeLists& lists = free_lists;
    lists.destroyed = true;
    for (size_t c = 0; c < FreeLists::kClasses; ++c) {
      while (lists.head[c] != nullptr) {
        FreeLists::Node* n = lists.head[c];
        lists.head[c] = n->next;
        ::operator delete(n);
      }
      lists.size[c] = 0;
    }
  }
};

}  // namespace

void RegisterFreeListsExit() {
  static thread_local FreeListsExit exit_hook;
  (void)exit_hook;  // constructing it registers its destructor
  free_lists.registered = true;
}

}  // namespace lbkit::policies::counting
